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
	"time"

	"github.com/hilfarm/hilfarm/farm"
	"github.com/hilfarm/hilfarm/farm/store"
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
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn, error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("serve takes no arguments")
	}
	log, err := newLogger(stderr, *logLevel)
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
	return serve(ctx, serveConfig{
		farm: f, dataDir: resolveDataDir(f, *dataDir), listen: *listen, baseURL: *baseURL,
		origins: origins, log: log, stdout: stdout,
	})
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
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
	// ready, if set, runs once the controller is ready and the API listens;
	// it returns when ctx is done (or at once). An error stops the server.
	ready func(ctx context.Context, url string, db *store.DB) error
}

// serve runs a controller, its webhooks and its API until ctx is done or
// one of them fails; then all stop, each cleaning up after itself.
func serve(ctx context.Context, sc serveConfig) (err error) {
	log := sc.log
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
	runDir, err := os.MkdirTemp("", "hilfarm-run-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(runDir)

	ln := sc.ln
	if ln == nil {
		ln, err = net.Listen("tcp", sc.listen)
		if err != nil {
			return fmt.Errorf("listen %s: %w", sc.listen, err)
		}
	}
	url := "http://" + hostPort(ln.Addr())
	base := sc.baseURL
	if base == "" {
		base = url
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := farm.NewMetrics(reg)
	hooks := farm.NewWebhooks(sc.farm.Webhooks, farm.WebhookOptions{BaseURL: base, Logger: log})
	c, err := farm.New(farm.Config{
		Farm: sc.farm, DataDir: sc.dataDir, Store: db, Logger: log,
		OpenBoard: farm.FixtureOpener(sc.farm, runDir, log),
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
	g.Go(func() error {
		defer cancel()
		return api.Serve(gctx, ln)
	})
	g.Go(func() error {
		select {
		case <-c.Ready():
		case <-gctx.Done():
			return nil
		}
		log.Info("hilfarm serving", "farm", sc.farm.Name, "url", url, "data", sc.dataDir, "boards", len(sc.farm.Boards))
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
