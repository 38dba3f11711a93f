package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hilfarm/hilfarm/farm"
	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/fixtures"
	"github.com/hilfarm/hilfarm/rack"
	"github.com/hilfarm/hilfarm/specs"
	"github.com/hilfarm/hilfarm/ui"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"
)

func init() {
	register(command{name: "serve", summary: "run the farm controller and its HTTP API", run: runServe})
}

// storeFile is the database's name inside the data dir.
const storeFile = "hilfarm.db"

// listFlags collects a repeatable string flag.
type listFlags []string

func (l *listFlags) String() string { return strings.Join(*l, ",") }

func (l *listFlags) Set(s string) error {
	*l = append(*l, s)
	return nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "hilfarm serve --farm FILE [--data DIR] [--listen ADDR]",
		"Run the farm: open the store, drive every board to its safe state, record every\n"+
			"console, schedule jobs, and serve the API (docs/api.md), the websockets,\n"+
			"/metrics and /healthz. SIGINT or SIGTERM stops it cleanly: running jobs end as\n"+
			"error \"controller shutting down\" and the boards go to their safe state.", stderr)
	farmPath := fs.String("farm", "farm.hcl", "farm `file`")
	dataDir := fs.String("data", "", "data `dir` (default: the farm's data_dir)")
	listen := fs.String("listen", "", "listen `address` (default: the farm's listen)")
	baseURL := fs.String("base-url", "", "the farm's external `URL`, for webhook links (default http://<listen>)")
	var origins listFlags
	fs.Var(&origins, "allow-origin", "also accept websockets from pages of this `origin` (scheme://host:port); repeatable")
	logf := addLogFlags(fs, "info")
	pprofAddr := fs.String("pprof", "", "serve Go's profiling endpoints (/debug/pprof/) on this loopback `address` (e.g. 127.0.0.1:6060)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("serve takes no arguments")
	}
	log, err := logf.logger(stderr)
	if err != nil {
		return err
	}
	f, err := loadFarm(*farmPath, stderr)
	if err != nil {
		return err
	}
	if *listen == "" {
		*listen = f.Listen
	}
	dir, err := serveDataDir(f, *dataDir)
	if err != nil {
		return err
	}
	return serve(ctx, serveConfig{
		farm: f, dataDir: dir, listen: *listen, baseURL: *baseURL,
		origins: origins, log: log, stdout: stdout, banner: true, pprof: *pprofAddr,
	})
}

// serveDataDir picks serve's data dir. Given with --data, it is used as
// is. Else the farm's data_dir is used when this user can write there; a
// newcomer without root (the example farm says /var/lib/hilfarm) gets
// $XDG_STATE_HOME/hilfarm/<farm> instead, and is told so; a service under
// systemd never falls back (its data must not move silently).
func serveDataDir(f *specs.Farm, flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	dir := resolveDataDir(f, "")
	werr := writableDir(dir)
	if werr == nil {
		return dir, nil
	}
	if os.Getenv("INVOCATION_ID") != "" { // a systemd service
		return "", usageError("data dir %s (the farm's data_dir): %v; fix its owner, or pass --data DIR", dir, werr)
	}
	state := os.Getenv("XDG_STATE_HOME")
	if state == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", usageError("data dir %s (the farm's data_dir): %v; pass --data DIR", dir, werr)
		}
		state = filepath.Join(home, ".local", "state")
	}
	name := f.Name
	if name == "" {
		name = "default"
	}
	alt := filepath.Join(state, "hilfarm", name)
	if err := writableDir(alt); err != nil {
		return "", usageError("data dir %s (the farm's data_dir): %v; and %s: %v; pass --data DIR", dir, werr, alt, err)
	}
	return alt, nil
}

// writableDir reports whether dir exists as a writable directory or could
// be created; it creates nothing.
func writableDir(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("%s is not a directory", d)
			}
			if err := syscall.Access(d, 2 /* W_OK */); err != nil {
				return fmt.Errorf("%s is not writable by this user", d)
			}
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if d == filepath.Dir(d) {
			return err
		}
	}
}

// loadFarm loads and validates a farm file, printing its diagnostics.
func loadFarm(path string, stderr io.Writer) (*specs.Farm, error) {
	f, diags := specs.LoadFarm(path)
	if diags.Len() > 0 {
		width, color := diagStyle(stderr)
		_ = diags.WriteText(stderr, width, color)
	}
	if diags.HasErrors() {
		return nil, &exitError{code: exitInfra, msg: fmt.Sprintf("%s is not valid", path)}
	}
	return f, nil
}

// resolveDataDir picks the data dir: the flag, else the farm's data_dir
// (relative to the farm file's directory).
func resolveDataDir(f *specs.Farm, flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	d := f.DataDir
	if d == "" {
		d = "/var/lib/hilfarm"
	}
	if !filepath.IsAbs(d) && f.Filename != "" {
		d = filepath.Join(filepath.Dir(f.Filename), d)
	}
	return d
}

// openStore opens the store of a data dir, creating the dir.
func openStore(ctx context.Context, dataDir string) (*store.DB, error) {
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	return store.Open(ctx, filepath.Join(dataDir, storeFile))
}

// storeFlags find a data dir for commands that work on the store directly.
type storeFlags struct {
	data, farm *string
}

func addStoreFlags(fs *flag.FlagSet) storeFlags {
	return storeFlags{
		data: fs.String("data", "", "data `dir` of the farm"),
		farm: fs.String("farm", "", "farm `file` whose data_dir to use (when --data is not given)"),
	}
}

func (s storeFlags) open(ctx context.Context) (*store.DB, error) {
	dir := *s.data
	if dir == "" {
		if *s.farm == "" {
			return nil, usageError("give --data DIR or --farm FILE")
		}
		f, diags := specs.LoadFarm(*s.farm)
		if diags.HasErrors() {
			return nil, fmt.Errorf("%s: %w", *s.farm, diags.Err())
		}
		dir = resolveDataDir(f, "")
	}
	if _, err := os.Stat(filepath.Join(dir, storeFile)); err != nil {
		return nil, fmt.Errorf("no hilfarm store in %s (has hilfarm serve run there?): %w", dir, err)
	}
	return openStore(ctx, dir)
}

func auditRecord(actor, action, target, detail string) store.AuditRecord {
	return store.AuditRecord{At: time.Now(), Actor: actor, Action: action, Target: target, Detail: detail}
}

// serveConfig is one controller with its API.
type serveConfig struct {
	farm    *specs.Farm
	dataDir string
	listen  string
	ln      net.Listener // if set, used instead of listen
	baseURL string
	origins []string
	log     *slog.Logger
	stdout  io.Writer
	pprof   string // --pprof: loopback address of the profiling endpoint
	// banner: print the URL, the data dir and how to get a first token
	// on stdout once serving (hilfarm serve; demo prints its own).
	banner bool
	// ready, if set, runs once the controller is ready and the API listens;
	// it returns when ctx is done (or at once). An error stops the server.
	ready func(ctx context.Context, url string, db *store.DB) error
}

// serve runs a controller, its webhooks and its API until ctx is done or
// one of them fails; then all stop, each cleaning up after itself.
func serve(ctx context.Context, sc serveConfig) (err error) {
	log := sc.log
	rl, err := loadRackLink(sc.farm) // nil without a rack block (serverack.go)
	if err != nil {
		return err
	}
	hs, err := loadHub(sc.farm, sc.dataDir, log) // nil without a hub block (servehub.go)
	if err != nil {
		return err
	}
	// Bind first: a port in use leaves nothing created behind.
	ln := sc.ln
	if ln == nil {
		ln, err = net.Listen("tcp", sc.listen)
		if err != nil {
			return fmt.Errorf("listen %s: %w (another hilfarm serve? pass --listen ADDR)", sc.listen, err)
		}
	}
	defer ln.Close() // api.Serve closes it too; a second Close is harmless
	unlock, err := lockDataDir(sc.dataDir)
	if err != nil {
		return err
	}
	defer unlock()
	db, err := openStore(ctx, sc.dataDir)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := db.Close(); err == nil {
			err = cerr
		}
	}()
	var hub *rack.Hub
	if hs != nil {
		// After the data dir's lock: two serves must not share the hub's
		// JetStream store. Closed after the controller has stopped.
		if hub, err = hs.start(ctx); err != nil {
			return err
		}
		defer hub.Close()
		log.Info("hub started", "leaf_port", hub.LeafPort(), "racks", hs.cfg.RacksDir)
	}
	fixtures.CleanRunDirs(log) // a crashed instance's, not a live one's
	runDir, releaseRunDir, err := fixtures.NewRunDir()
	if err != nil {
		return err
	}
	defer releaseRunDir()

	url := "http://" + hostPort(ln.Addr())
	base := sc.baseURL
	if base == "" {
		base = url
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := farm.NewMetrics(reg)
	registerDiskMetrics(reg, sc.dataDir)
	hooks := farm.NewWebhooks(sc.farm.Webhooks, farm.WebhookOptions{BaseURL: base, Logger: log})
	c, err := farm.New(farm.Config{
		Farm: sc.farm, DataDir: sc.dataDir, Store: db, Logger: log,
		OpenBoard: farm.FixtureOpener(sc.farm, runDir, log),
		Hub:       hub,
		OnJobFinished: []func(farm.JobView){
			metrics.JobFinished,
			func(v farm.JobView) { hooks.JobFinished(v.Job) },
		},
	})
	if err != nil {
		ln.Close()
		return err
	}
	metrics.SetStats(c.Stats)
	api := farm.NewAPI(c, farm.APIOptions{
		Auth:     farm.NewAuth(db, sc.farm.AnonymousRead, nil),
		Registry: reg, AllowedOrigins: sc.origins, Logger: log, UI: ui.Handler(),
		ShutdownAfter: c.Settled(),
	})

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	// Each component stops the others when it returns, even without an error.
	g.Go(func() error { defer cancel(); return c.Run(gctx) })
	g.Go(func() error { defer cancel(); return hooks.Run(gctx) })
	if sc.pprof != "" {
		g.Go(func() error { return servePprof(gctx, sc.pprof, log) })
	}
	if hub != nil {
		g.Go(func() error { return hub.WatchRacks(gctx, racksReloadEvery) })
	}
	if rl != nil {
		g.Go(func() error {
			defer cancel()
			select {
			case <-c.Ready():
			case <-gctx.Done():
				return nil
			}
			return runRackAgent(gctx, rl, c, sc.dataDir, log)
		})
	}
	g.Go(func() error {
		defer cancel()
		// The listener is bound from the start (connections wait in its
		// backlog); requests are served once the controller is ready, so
		// that /healthz answering means jobs interrupted by a previous
		// process have been recovered.
		select {
		case <-c.Ready():
		case <-gctx.Done():
			return nil
		}
		return api.Serve(gctx, ln)
	})
	g.Go(func() error {
		select {
		case <-c.Ready():
		case <-gctx.Done():
			return nil
		}
		log.Info("hilfarm serving", "farm", sc.farm.Name, "url", url, "data", sc.dataDir, "boards", len(sc.farm.Boards))
		if sc.banner {
			printBanner(gctx, sc, url, db)
		}
		if sc.ready == nil {
			return nil
		}
		if err := sc.ready(gctx, url, db); err != nil {
			cancel()
			return err
		}
		return nil
	})
	err = g.Wait()
	log.Info("hilfarm stopped")
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// hostPort is an address a browser can use: the unspecified address
// becomes localhost.
func hostPort(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	if ta.IP == nil || ta.IP.IsUnspecified() {
		return net.JoinHostPort("localhost", fmt.Sprint(ta.Port))
	}
	return ta.AddrPort().String()
}

// printBanner tells whoever started serve where it is and what to do next.
func printBanner(ctx context.Context, sc serveConfig, url string, db *store.DB) {
	w := sc.stdout
	emulated := 0
	for _, b := range sc.farm.Boards {
		if b.Emulator != nil {
			emulated++
		}
	}
	fmt.Fprintf(w, "hilfarm serving farm %q\n", sc.farm.Name)
	fmt.Fprintf(w, "  URL:     %s\n", url)
	fmt.Fprintf(w, "  data:    %s\n", sc.dataDir)
	fmt.Fprintf(w, "  boards:  %d configured, %d of them emulated (hilfarm serve runs those itself)\n", len(sc.farm.Boards), emulated)
	toks, err := db.Tokens(ctx)
	if err == nil && len(toks) == 0 {
		fmt.Fprintf(w, "  no API token yet; create the first admin token (shown once) with:\n")
		fmt.Fprintf(w, "    hilfarm token create --data %s --name admin --role admin\n", shellQuote(sc.dataDir))
	}
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// registerDiskMetrics exports the free and total space of the data dir's
// file system (the store and the firmware blobs grow there; a full disk
// stops the farm).
func registerDiskMetrics(reg prometheus.Registerer, dir string) {
	statfs := func(f func(st *syscall.Statfs_t) float64) func() float64 {
		return func() float64 {
			var st syscall.Statfs_t
			if err := syscall.Statfs(dir, &st); err != nil {
				return -1
			}
			return f(&st)
		}
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "hilfarm", Name: "data_dir_available_bytes",
			Help: "Bytes available to hilfarm on the data dir's file system (-1 if it cannot be read)."},
			statfs(func(st *syscall.Statfs_t) float64 { return float64(st.Bavail) * float64(st.Bsize) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "hilfarm", Name: "data_dir_size_bytes",
			Help: "Size of the data dir's file system in bytes (-1 if it cannot be read)."},
			statfs(func(st *syscall.Statfs_t) float64 { return float64(st.Blocks) * float64(st.Bsize) })),
	)
}
