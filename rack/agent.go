package rack

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	_ "modernc.org/sqlite" // the outbox
)

// Board is one board as the agent sees it. Run must return when ctx ends.
type Board interface {
	Name() string
	Type() string
	Healthy() bool
	// Run runs a job; firmware is the local path of the job's image ("" if none).
	Run(ctx context.Context, job Job, firmware string) (verdict, detail string)
}

// AgentConfig configures a rack agent.
type AgentConfig struct {
	Name     string
	DataDir  string      // outbox database and firmware cache
	HubURL   string      // tls://host:port of the hub's leaf listener
	TLS      *tls.Config // RackTLS
	Password string
	Boards   []Board

	AckWait time.Duration // heartbeats go every AckWait/3 (the hub consumer's AckWait when shorter)
	// HeartbeatEvery is how often the rack reports its boards on
	// farm.hb.<rack>; default DefaultHeartbeatEvery.
	HeartbeatEvery time.Duration
	PingInterval   time.Duration
	MaxPingsOut    int
	WriteDeadline  time.Duration
	Logger         *slog.Logger
}

// Agent is a rack's side: an embedded leaf server dialling the hub, one
// puller per board, the outbox pump and the firmware cache.
type Agent struct {
	cfg  AgentConfig
	log  *slog.Logger
	srv  *server.Server
	nc   *nats.Conn
	js   jetstream.JetStream
	db   *sql.DB
	kick chan struct{}

	fwMu    sync.Mutex
	fetches int // firmware downloads from the hub

	cancel context.CancelFunc
	wg     sync.WaitGroup

	runMu   sync.Mutex
	running map[string]context.CancelCauseFunc // by attempt id: what the hub may cancel
	cmdSub  *nats.Subscription
}

// errCancelledByHub is the cause of a run the hub cancelled.
var errCancelledByHub = errors.New("cancelled at the hub")

// NewAgent starts a rack agent. It returns once the local server runs; the
// link to the hub comes up (and comes back) on its own.
func NewAgent(ctx context.Context, cfg AgentConfig) (*Agent, error) {
	if err := CheckName("rack", cfg.Name); err != nil {
		return nil, err
	}
	if cfg.DataDir == "" || cfg.TLS == nil || cfg.HubURL == "" {
		return nil, errors.New("rack agent: DataDir, HubURL and TLS are required")
	}
	if cfg.AckWait == 0 {
		cfg.AckWait = DefaultAckWait
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.MaxPingsOut == 0 {
		cfg.MaxPingsOut = DefaultMaxPingsOut
	}
	if cfg.WriteDeadline == 0 {
		cfg.WriteDeadline = DefaultWriteDeadline
	}
	if cfg.HeartbeatEvery == 0 {
		cfg.HeartbeatEvery = DefaultHeartbeatEvery
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	u, err := url.Parse(cfg.HubURL)
	if err != nil {
		return nil, fmt.Errorf("rack %s: hub URL: %w", cfg.Name, err)
	}
	u.User = url.UserPassword(cfg.Name, cfg.Password)
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "firmware"), 0o700); err != nil {
		return nil, fmt.Errorf("rack %s: %w", cfg.Name, err)
	}
	a := &Agent{cfg: cfg, log: cfg.Logger.With("rack", cfg.Name), kick: make(chan struct{}, 1)}
	a.db, err = openOutbox(filepath.Join(cfg.DataDir, "rack.db"))
	if err != nil {
		return nil, fmt.Errorf("rack %s: %w", cfg.Name, err)
	}
	opts := &server.Options{
		ServerName:    "hilfarm-rack-" + cfg.Name + "-" + nuid.Next()[16:], // unique: two copies of a rack must not look like a loop
		DontListen:    true,                                                // a rack opens no port
		NoSigs:        true,
		PingInterval:  cfg.PingInterval,
		MaxPingsOut:   cfg.MaxPingsOut,
		WriteDeadline: cfg.WriteDeadline,
		LeafNode: server.LeafNodeOpts{
			ReconnectInterval: time.Second,
			Remotes: []*server.RemoteLeafOpts{{
				URLs: []*url.URL{u}, TLS: true, TLSConfig: cfg.TLS, TLSTimeout: 5,
			}},
		},
	}
	a.srv, err = server.NewServer(opts)
	if err != nil {
		a.db.Close()
		return nil, fmt.Errorf("rack %s: nats server: %w", cfg.Name, err)
	}
	a.srv.SetLoggerV2(&natsLog{log: a.log.With("nats", "rack")}, false, false, false)
	a.srv.Start()
	if !a.srv.ReadyForConnections(10 * time.Second) {
		a.Close()
		return nil, fmt.Errorf("rack %s: local server not ready", cfg.Name)
	}
	a.nc, err = nats.Connect("", nats.InProcessServer(a.srv), nats.CustomInboxPrefix(inboxPrefix(cfg.Name)),
		nats.Name("rack-"+cfg.Name), nats.MaxReconnects(-1))
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("rack %s: connect in-process: %w", cfg.Name, err)
	}
	a.js, err = jetstream.NewWithDomain(a.nc, hubDomain)
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("rack %s: jetstream: %w", cfg.Name, err)
	}
	a.running = map[string]context.CancelCauseFunc{}
	a.cmdSub, err = a.nc.Subscribe("farm.cmd."+cfg.Name+".cancel", a.handleCancel)
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("rack %s: commands: %w", cfg.Name, err)
	}
	ctx, a.cancel = context.WithCancel(ctx)
	a.wg.Add(1)
	go func() { defer a.wg.Done(); a.pump(ctx) }()
	a.wg.Add(1)
	go func() { defer a.wg.Done(); a.heartbeatLoop(ctx) }() // status.go
	for _, b := range cfg.Boards {
		a.wg.Add(1)
		go func() { defer a.wg.Done(); a.boardLoop(ctx, b) }()
	}
	return a, nil
}

// Close stops the pullers and the pump, then the local server. Jobs being
// run are cancelled (their boards' Run get a cancelled ctx).
func (a *Agent) Close() {
	if a.cmdSub != nil {
		_ = a.cmdSub.Unsubscribe()
	}
	if a.cancel != nil {
		a.cancel()
	}
	a.wg.Wait()
	if a.nc != nil {
		a.nc.Close()
	}
	if a.srv != nil {
		a.srv.Shutdown()
		a.srv.WaitForShutdown()
	}
	if a.db != nil {
		a.db.Close()
	}
}

// LinkUp reports whether the leaf link to the hub is established.
func (a *Agent) LinkUp() bool { return a.srv.NumLeafNodes() > 0 }

// Conn is the agent's in-process connection (tests use it to act as a
// hostile rack would).
func (a *Agent) Conn() *nats.Conn { return a.nc }

// JetStream is the agent's JetStream handle on the hub's domain.
func (a *Agent) JetStream() jetstream.JetStream { return a.js }

// Console publishes a chunk of a board's console. It crosses the link only
// while someone at the hub watches (see Hub.WatchConsole).
func (a *Agent) Console(board string, chunk []byte) error {
	return a.nc.Publish("console."+a.cfg.Name+"."+board, chunk)
}

// boardLoop pulls one job at a time for one board, only while the board is
// idle (this loop is its only user) and healthy: a busy rack never hoards.
func (a *Agent) boardLoop(ctx context.Context, b Board) {
	log := a.log.With("board", b.Name())
	for ctx.Err() == nil {
		if !b.Healthy() {
			wait(ctx, time.Second)
			continue
		}
		cons, err := a.js.Consumer(ctx, JobsStream, consumerName(b.Type()))
		if err != nil {
			log.Debug("job consumer unavailable", "err", err)
			wait(ctx, time.Second)
			continue
		}
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			wait(ctx, time.Second)
			continue
		}
		// Heartbeats follow the hub's AckWait when it is shorter than ours:
		// a rack configured with a longer one would lose its claims.
		hb := a.cfg.AckWait
		if ci := cons.CachedInfo(); ci != nil && ci.Config.AckWait > 0 && ci.Config.AckWait < hb {
			hb = ci.Config.AckWait
		}
		for m := range batch.Messages() {
			a.runOne(ctx, log, b, m, hb/3)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
			log.Debug("fetch", "err", err)
			wait(ctx, time.Second)
		}
	}
}

func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// runOne claims an attempt from the hub, runs it with an InProgress every
// heartbeat and puts the result in the outbox. It never acks the JOBS
// message: the hub deletes it when the verdict is decided (a rack's late
// ack would delete a redelivered attempt's message, nats-server#4786).
func (a *Agent) runOne(ctx context.Context, log *slog.Logger, b Board, m jetstream.Msg, heartbeat time.Duration) {
	meta, err := m.Metadata()
	if err != nil {
		log.Warn("job message without metadata", "err", err)
		return
	}
	var job Job
	if err := json.Unmarshal(m.Data(), &job); err != nil {
		log.Warn("undecodable job", "seq", meta.Sequence.Stream, "err", err)
		_ = m.Term()
		return
	}
	req, _ := json.Marshal(claimRequest{Job: job.ID, Board: b.Name(), Seq: meta.Sequence.Stream, Delivered: meta.NumDelivered})
	resp, err := a.nc.RequestWithContext(ctx, "farm.claim."+a.cfg.Name, req)
	if err != nil {
		log.Warn("claim failed; the job will be redelivered", "job", job.ID, "err", err)
		return
	}
	var cr claimReply
	if err := json.Unmarshal(resp.Data, &cr); err != nil || !cr.OK {
		log.Info("claim refused", "job", job.ID, "reason", cr.Reason)
		return
	}
	log = log.With("attempt", cr.Attempt)
	runCtx, stopCause := context.WithCancelCause(ctx)
	stop := func() { stopCause(nil) }
	defer stop()
	a.runMu.Lock()
	a.running[cr.Attempt] = stopCause
	a.runMu.Unlock()
	defer func() {
		a.runMu.Lock()
		delete(a.running, cr.Attempt)
		a.runMu.Unlock()
	}()
	hbDone := make(chan struct{})
	go func() { // heartbeats keep the claim while the job runs
		defer close(hbDone)
		t := time.NewTicker(heartbeat)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	}()
	defer func() { stop(); <-hbDone }()
	fw := ""
	if job.Firmware != "" {
		if fw, err = a.Firmware(runCtx, job.Firmware); err != nil {
			log.Warn("firmware unavailable; leaving the job to be redelivered", "err", err)
			return
		}
	}
	verdict, detail := b.Run(runCtx, job, fw)
	if ctx.Err() != nil {
		return // the agent stopped mid-job: no result; the hub's AckWait redelivers
	}
	if errors.Is(context.Cause(runCtx), errCancelledByHub) {
		verdict = "cancelled" // recorded on the attempt; the hub decided already
	}
	ev, _ := json.Marshal(event{Kind: "result", Job: job.ID, Attempt: cr.Attempt, Verdict: verdict, Detail: detail})
	if err := a.enqueue("farm.evt."+a.cfg.Name+".result", ev); err != nil {
		log.Error("outbox", "err", err)
		return
	}
	log.Info("result queued", "verdict", verdict)
}

// handleCancel stops the attempt the hub cancelled, if it runs here.
func (a *Agent) handleCancel(m *nats.Msg) {
	var cmd cancelCmd
	if err := json.Unmarshal(m.Data, &cmd); err != nil {
		a.log.Warn("undecodable cancel command", "err", err)
		return
	}
	a.runMu.Lock()
	stop := a.running[cmd.Attempt]
	a.runMu.Unlock()
	if stop == nil {
		a.log.Info("cancel of an attempt not running here", "attempt", cmd.Attempt)
		return
	}
	a.log.Info("attempt cancelled at the hub", "attempt", cmd.Attempt, "reason", cmd.Reason)
	stop(errCancelledByHub)
}

// --- outbox -------------------------------------------------------------

func openOutbox(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if err != nil {
		return nil, fmt.Errorf("outbox %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS outbox (
		seq INTEGER PRIMARY KEY AUTOINCREMENT,
		subject TEXT NOT NULL,
		data BLOB NOT NULL,
		sent_ms INTEGER)`); err != nil {
		db.Close()
		return nil, fmt.Errorf("outbox %s: %w", path, err)
	}
	return db, nil
}

func (a *Agent) enqueue(subject string, data []byte) error {
	if _, err := a.db.Exec(`INSERT INTO outbox(subject, data) VALUES(?, ?)`, subject, data); err != nil {
		return fmt.Errorf("outbox insert: %w", err)
	}
	select {
	case a.kick <- struct{}{}:
	default:
	}
	return nil
}

// OutboxPending is the number of outbox rows not yet acknowledged by the hub.
func (a *Agent) OutboxPending() (int, error) {
	var n int
	err := a.db.QueryRow(`SELECT count(*) FROM outbox WHERE sent_ms IS NULL`).Scan(&n)
	return n, err
}

// pump publishes outbox rows in order, each with Nats-Msg-Id <rack>.<seq>,
// and marks a row sent only on the hub's PubAck. A row whose PubAck was lost
// is published again with the same id; the EVENTS stream drops the copy.
func (a *Agent) pump(ctx context.Context) {
	for ctx.Err() == nil {
		var (
			seq     int64
			subject string
			data    []byte
		)
		err := a.db.QueryRowContext(ctx, `SELECT seq, subject, data FROM outbox WHERE sent_ms IS NULL ORDER BY seq LIMIT 1`).Scan(&seq, &subject, &data)
		if errors.Is(err, sql.ErrNoRows) {
			select {
			case <-a.kick:
			case <-ctx.Done():
			}
			continue
		}
		if err != nil {
			a.log.Error("outbox read", "err", err)
			wait(ctx, time.Second)
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = a.js.Publish(pctx, subject, data, jetstream.WithMsgID(fmt.Sprintf("%s.%d", a.cfg.Name, seq)))
		cancel()
		if err != nil {
			a.log.Debug("outbox publish; will retry", "seq", seq, "err", err)
			wait(ctx, 500*time.Millisecond)
			continue
		}
		if _, err := a.db.Exec(`UPDATE outbox SET sent_ms = ? WHERE seq = ?`, time.Now().UnixMilli(), seq); err != nil {
			a.log.Error("outbox mark sent", "seq", seq, "err", err)
		}
	}
}

// --- firmware cache -----------------------------------------------------

// Firmware returns the local path of the image with this sha256, fetching
// it from the hub's object store only if the cache lacks a good copy.
func (a *Agent) Firmware(ctx context.Context, digest string) (string, error) {
	if !isDigest(digest) {
		return "", fmt.Errorf("firmware %q: not a sha256 hex digest", digest)
	}
	a.fwMu.Lock() // one download at a time; the second asker finds it cached
	defer a.fwMu.Unlock()
	path := filepath.Join(a.cfg.DataDir, "firmware", digest)
	if got, err := fileSHA256(path); err == nil && got == digest {
		return path, nil
	}
	obs, err := a.js.ObjectStore(ctx, FirmwareBucket)
	if err != nil {
		return "", fmt.Errorf("firmware %s: object store: %w", digest, err)
	}
	info, err := obs.GetInfo(ctx, digest)
	if err != nil {
		return "", fmt.Errorf("firmware %s: %w", digest, err)
	}
	// nats.go gives a Get whose ctx has no deadline its default timeout
	// (5 s) for the WHOLE transfer: a 50 MB image on a link slower than
	// 10 MB/s could never arrive. Budget the transfer by its size instead.
	gctx, gcancel := context.WithTimeout(ctx, firmwareBudget(info.Size))
	defer gcancel()
	r, err := obs.Get(gctx, digest)
	if err != nil {
		return "", fmt.Errorf("firmware %s: get: %w", digest, err)
	}
	defer r.Close()
	a.fetches++
	tmp, err := os.CreateTemp(filepath.Dir(path), ".fw-*")
	if err != nil {
		return "", fmt.Errorf("firmware %s: %w", digest, err)
	}
	defer os.Remove(tmp.Name())
	sum := sha256.New()
	_, err = io.Copy(io.MultiWriter(tmp, sum), io.LimitReader(r, MaxFirmwareBytes+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("firmware %s: download: %w", digest, err)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != digest {
		return "", fmt.Errorf("firmware %s: downloaded image has sha256 %s", digest, got)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("firmware %s: %w", digest, err)
	}
	return path, nil
}

// FirmwareFetches is how many images this agent downloaded from the hub.
func (a *Agent) FirmwareFetches() int {
	a.fwMu.Lock()
	defer a.fwMu.Unlock()
	return a.fetches
}

// firmwareBudget is how long a download of size bytes may take: a minute,
// plus the size at 64 KiB/s (a slow WAN link), so a transfer that stalls
// during a link cut can resume when the link returns.
func firmwareBudget(size uint64) time.Duration {
	return time.Minute + time.Duration(size/(64<<10))*time.Second
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
