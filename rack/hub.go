package rack

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/hilfarm/hilfarm/internal/filewatch"
)

// Names of the hub's streams, buckets and consumers.
const (
	JobsStream     = "JOBS"
	EventsStream   = "EVENTS"
	FirmwareBucket = "firmware"
	LedgerBucket   = "farm_jobs"
	ingestConsumer = "hub-ingest"
	hubDomain      = "hub"
)

func consumerName(boardType string) string { return "bt-" + boardType }

// Link-liveness defaults: a silent cut is noticed after at most
// PingInterval × MaxPingsOut (+ one interval of phase), well inside 10 s.
// nats-server's default (2 min pings) noticed a 20 s cut only after it
// ended (SCALE.md §2.3).
const (
	DefaultPingInterval  = 2 * time.Second
	DefaultMaxPingsOut   = 3
	DefaultWriteDeadline = 5 * time.Second
	DefaultAckWait       = 2 * time.Minute
	DefaultMaxAttempts   = 3
	// MaxSpecBytes bounds a job's spec as carried in its JOBS message.
	MaxSpecBytes = 1 << 20
	// MaxFirmwareBytes bounds one firmware object.
	MaxFirmwareBytes = 256 << 20
)

// Sentinel errors.
var (
	// ErrNoRack: no (unrevoked) rack has a board of the job's type.
	ErrNoRack = errors.New("no rack has a board of this type")
	// ErrNoJob: the hub has no job of that id.
	ErrNoJob = errors.New("no such job")
	// ErrDecided: the job already has its verdict.
	ErrDecided = errors.New("job already has its verdict")
	// ErrBadJob: the job is malformed (id, type, size, firmware).
	ErrBadJob = errors.New("invalid job")
	// ErrUnknownRack: no such rack in the registry.
	ErrUnknownRack = errors.New("unknown rack")
)

// HubConfig configures a hub.
type HubConfig struct {
	DataDir  string      // JetStream store lives in DataDir/nats (never $TMPDIR)
	LeafHost string      // leaf listener address; default 0.0.0.0
	LeafPort int         // leaf listener port; -1 picks a free one (tests)
	TLS      *tls.Config // leaf listener TLS (HubTLS); required
	// RacksDir holds the rack records (one JSON file per rack). Reload
	// re-reads it; Revoke writes it.
	RacksDir string
	// Racks is used instead of RacksDir when RacksDir is empty.
	Racks []Record

	AckWait       time.Duration // redelivery after a rack goes silent; default 2 min
	MaxAttempts   int           // attempts before a job ends in error; default 3
	PingInterval  time.Duration // default DefaultPingInterval
	MaxPingsOut   int           // default DefaultMaxPingsOut
	WriteDeadline time.Duration // default DefaultWriteDeadline
	Logger        *slog.Logger
}

func (c *HubConfig) defaults() {
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.PingInterval == 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.MaxPingsOut == 0 {
		c.MaxPingsOut = DefaultMaxPingsOut
	}
	if c.WriteDeadline == 0 {
		c.WriteDeadline = DefaultWriteDeadline
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.LeafHost == "" {
		c.LeafHost = "0.0.0.0"
	}
}

// Job is one unit of work as submitted to the hub.
type Job struct {
	ID       string `json:"id"`
	Type     string `json:"type"`               // board type
	Firmware string `json:"firmware,omitempty"` // sha256 hex of an object in the firmware bucket
	Spec     []byte `json:"spec,omitempty"`
}

// Attempt is one run of a job on one rack, numbered by the hub.
type Attempt struct {
	N         int       `json:"n"`
	ID        string    `json:"id"` // <job>#<n>
	Rack      string    `json:"rack"`
	Board     string    `json:"board"`
	Delivered uint64    `json:"delivered"` // JetStream delivery count
	State     string    `json:"state"`     // running, superseded, final, cancelled
	Verdict   string    `json:"verdict,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	Claimed   time.Time `json:"claimed"`
	Reported  time.Time `json:"reported,omitzero"`
}

// JobRecord is the hub's authoritative view of a job.
type JobRecord struct {
	Job
	Seq       uint64    `json:"seq"` // JOBS stream sequence
	Verdict   string    `json:"verdict,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	DecidedBy string    `json:"decided_by,omitempty"` // attempt id, or "hub"
	Current   int       `json:"current"`              // the attempt that may decide; 0 = none yet
	Attempts  []Attempt `json:"attempts,omitempty"`
	Submitted time.Time `json:"submitted"`
}

// HubStats counts what the ingester saw.
type HubStats struct {
	Results    int // results applied to an attempt
	Duplicates int // results for an attempt that already had one
	Rejected   int // events naming an unknown job/attempt or another rack's attempt
}

// Hub is the front door's side of the farm transport.
type Hub struct {
	cfg  HubConfig
	log  *slog.Logger
	srv  *server.Server
	opts *server.Options
	nc   *nats.Conn
	js   jetstream.JetStream
	obs  jetstream.ObjectStore
	kv   jetstream.KeyValue
	jobs jetstream.Stream

	hubUser, hubPass string
	hubHash          string // bcrypt of hubPass
	leafPort         int

	mu       sync.Mutex
	records  map[string]Record
	ledger   map[string]*JobRecord
	stats    HubStats
	changed  chan struct{} // closed and replaced on every ledger change
	types    map[string]bool
	consumed jetstream.ConsumeContext
	claimSub *nats.Subscription
	hbSub    *nats.Subscription
	status   map[string]RackStatus // last heartbeat by rack (status.go)
}

// NewHub starts the hub's embedded server, creates its streams and buckets
// and starts the claim responder and the event ingester.
func NewHub(ctx context.Context, cfg HubConfig) (*Hub, error) {
	cfg.defaults()
	if cfg.DataDir == "" {
		return nil, errors.New("hub: DataDir is required (the JetStream store must not default to $TMPDIR)")
	}
	if cfg.TLS == nil {
		return nil, errors.New("hub: TLS is required on the leaf listener")
	}
	h := &Hub{cfg: cfg, log: cfg.Logger, ledger: map[string]*JobRecord{}, status: map[string]RackStatus{}, changed: make(chan struct{}), types: map[string]bool{}}
	recs := cfg.Racks
	if cfg.RacksDir != "" {
		var err error
		if recs, err = LoadRecords(cfg.RacksDir); err != nil {
			return nil, err
		}
	}
	h.setRecordsLocked(recs)
	h.hubUser = "hub-internal"
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	h.hubPass = hex.EncodeToString(b[:])
	hash, err := bcrypt.GenerateFromPassword([]byte(h.hubPass), bcrypt.MinCost)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	h.hubHash = string(hash)
	h.leafPort = cfg.LeafPort
	if err := h.start(ctx); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// serverOptions builds the embedded server's options from the records.
func (h *Hub) serverOptions() *server.Options {
	users := []*server.User{{Username: h.hubUser, Password: h.hubHash}}
	names := make([]string, 0, len(h.records))
	for n := range h.records {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r := h.records[n]
		if r.Revoked {
			continue
		}
		users = append(users, &server.User{Username: r.Name, Password: r.PassHash, Permissions: rackPermissions(r)})
	}
	return &server.Options{
		ServerName:      "hilfarm-hub",
		DontListen:      true, // no client port: in-process clients only
		NoSigs:          true,
		JetStream:       true,
		JetStreamDomain: hubDomain,
		StoreDir:        filepath.Join(h.cfg.DataDir, "nats"),
		Users:           users,
		PingInterval:    h.cfg.PingInterval,
		MaxPingsOut:     h.cfg.MaxPingsOut,
		WriteDeadline:   h.cfg.WriteDeadline,
		LeafNode: server.LeafNodeOpts{
			Host:       h.cfg.LeafHost,
			Port:       h.leafPort,
			TLSConfig:  h.cfg.TLS,
			TLSTimeout: 5,
			// Racks dial only the URL they were given. Advertised, the
			// listener's own address joins each rack's URL list, and a
			// relinking rack may dial it instead: behind NAT or a proxy
			// that address is wrong, and in tests it bypassed the proxy.
			NoAdvertise: true,
		},
	}
}

func (h *Hub) start(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Join(h.cfg.DataDir, "nats"), 0o700); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	h.opts = h.serverOptions()
	srv, err := server.NewServer(h.opts)
	if err != nil {
		return fmt.Errorf("hub: nats server: %w", err)
	}
	srv.SetLoggerV2(&natsLog{log: h.log.With("nats", "hub")}, false, false, false)
	h.srv = srv
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		return errors.New("hub: nats server not ready after 10s")
	}
	if v, err := srv.Varz(nil); err == nil {
		h.leafPort = v.LeafNode.Port
	}
	h.nc, err = nats.Connect("", nats.InProcessServer(srv), nats.UserInfo(h.hubUser, h.hubPass), nats.Name("hub"))
	if err != nil {
		return fmt.Errorf("hub: connect in-process: %w", err)
	}
	h.js, err = jetstream.New(h.nc)
	if err != nil {
		return fmt.Errorf("hub: jetstream: %w", err)
	}
	h.jobs, err = h.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: JobsStream, Subjects: []string{"jobs.>"}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Duplicates: 10 * time.Minute, MaxMsgSize: MaxSpecBytes + 64<<10,
	})
	if err != nil {
		return fmt.Errorf("hub: stream %s: %w", JobsStream, err)
	}
	if _, err := h.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: EventsStream, Subjects: []string{"farm.evt.>"}, Retention: jetstream.LimitsPolicy,
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Hour, MaxAge: 90 * 24 * time.Hour, MaxMsgSize: 1 << 20,
	}); err != nil {
		return fmt.Errorf("hub: stream %s: %w", EventsStream, err)
	}
	h.obs, err = h.js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: FirmwareBucket, Storage: jetstream.FileStorage})
	if err != nil {
		if h.obs, err = h.js.ObjectStore(ctx, FirmwareBucket); err != nil {
			return fmt.Errorf("hub: object store %s: %w", FirmwareBucket, err)
		}
	}
	h.kv, err = h.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: LedgerBucket, Storage: jetstream.FileStorage, History: 1})
	if err != nil {
		return fmt.Errorf("hub: ledger bucket: %w", err)
	}
	if err := h.loadLedger(ctx); err != nil {
		return err
	}
	h.mu.Lock()
	types := h.recordTypesLocked()
	h.mu.Unlock()
	for _, t := range types {
		if err := h.ensureConsumer(ctx, t); err != nil {
			return err
		}
	}
	h.claimSub, err = h.nc.Subscribe("farm.claim.*", h.handleClaim)
	if err != nil {
		return fmt.Errorf("hub: claim responder: %w", err)
	}
	h.hbSub, err = h.nc.Subscribe("farm.hb.*", h.handleHeartbeat)
	if err != nil {
		return fmt.Errorf("hub: heartbeats: %w", err)
	}
	cons, err := h.js.CreateOrUpdateConsumer(ctx, EventsStream, jetstream.ConsumerConfig{
		Durable: ingestConsumer, AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: 1, // apply events strictly in order
	})
	if err != nil {
		return fmt.Errorf("hub: ingest consumer: %w", err)
	}
	h.consumed, err = cons.Consume(h.ingest)
	if err != nil {
		return fmt.Errorf("hub: ingest: %w", err)
	}
	return nil
}

// LeafURL is the URL racks dial (host as given, port as bound).
func (h *Hub) LeafURL(host string) string { return fmt.Sprintf("tls://%s:%d", host, h.leafPort) }

// LeafPort is the bound leaf listener port.
func (h *Hub) LeafPort() int { return h.leafPort }

// Server is the embedded nats-server (for monitoring and tests).
func (h *Hub) Server() *server.Server { return h.srv }

// Conn is the hub's in-process connection (full rights).
func (h *Hub) Conn() *nats.Conn { return h.nc }

// Close stops the hub and its embedded server.
func (h *Hub) Close() {
	if h.consumed != nil {
		h.consumed.Stop()
	}
	if h.claimSub != nil {
		_ = h.claimSub.Unsubscribe()
	}
	if h.hbSub != nil {
		_ = h.hbSub.Unsubscribe()
	}
	if h.nc != nil {
		h.nc.Close()
	}
	if h.srv != nil {
		h.srv.Shutdown()
		h.srv.WaitForShutdown()
	}
}

func (h *Hub) setRecordsLocked(recs []Record) {
	h.records = map[string]Record{}
	for _, r := range recs {
		h.records[r.Name] = r
	}
}

func (h *Hub) recordTypesLocked() []string {
	seen := map[string]bool{}
	for _, r := range h.records {
		if r.Revoked {
			continue
		}
		for _, t := range r.Types {
			seen[t] = true
		}
	}
	out := make([]string, 0, len(seen))
	for t := range seen {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Types returns the board types of the racks that are not revoked,
// sorted: what Submit accepts.
func (h *Hub) Types() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.recordTypesLocked()
}

// SetRecords replaces the rack registry and applies it to the running
// server in place: removed or revoked racks are disconnected at once, new
// racks may connect. No restart.
func (h *Hub) SetRecords(ctx context.Context, recs []Record) error {
	h.mu.Lock()
	h.setRecordsLocked(recs)
	opts := h.serverOptions()
	types := h.recordTypesLocked()
	h.mu.Unlock()
	if err := h.srv.ReloadOptions(opts); err != nil {
		return fmt.Errorf("hub: reload rack credentials: %w", err)
	}
	// nats-server v2.15.3 re-checks client connections on reload but not
	// leaf connections (reload.go walks s.clients only), and a leaf's user
	// is not visible through the public API. So every leaf link is closed:
	// racks still authorised reconnect within ~1 s (their jobs keep
	// running, heartbeats and the outbox resume), a revoked one is refused.
	if lz, err := h.srv.Leafz(nil); err == nil {
		for _, l := range lz.Leafs {
			_ = h.srv.DisconnectClientByID(l.ID)
		}
	}
	for _, t := range types {
		if err := h.ensureConsumer(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// Reload re-reads RacksDir and applies it (see SetRecords).
func (h *Hub) Reload(ctx context.Context) error {
	if h.cfg.RacksDir == "" {
		return errors.New("hub: no racks directory to reload")
	}
	recs, err := LoadRecords(h.cfg.RacksDir)
	if err != nil {
		return err
	}
	return h.SetRecords(ctx, recs)
}

// Revoke marks a rack revoked (in RacksDir when set) and cuts it off.
func (h *Hub) Revoke(ctx context.Context, name string) error {
	h.mu.Lock()
	r, ok := h.records[name]
	if !ok {
		h.mu.Unlock()
		return fmt.Errorf("revoke %s: %w", name, ErrUnknownRack)
	}
	r.Revoked = true
	recs := make([]Record, 0, len(h.records))
	for _, x := range h.records {
		if x.Name == name {
			x = r
		}
		recs = append(recs, x)
	}
	h.mu.Unlock()
	if h.cfg.RacksDir != "" {
		if err := SaveRecord(h.cfg.RacksDir, r); err != nil {
			return fmt.Errorf("revoke %s: %w", name, err)
		}
	}
	return h.SetRecords(ctx, recs)
}

func (h *Hub) ensureConsumer(ctx context.Context, boardType string) error {
	h.mu.Lock()
	done := h.types[boardType]
	h.mu.Unlock()
	if done {
		return nil
	}
	_, err := h.js.CreateOrUpdateConsumer(ctx, JobsStream, jetstream.ConsumerConfig{
		Durable:       consumerName(boardType),
		FilterSubject: "jobs." + boardType, // disjoint per type, as a WorkQueue requires
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       h.cfg.AckWait,
		MaxDeliver:    -1, // the hub counts attempts itself (MaxAttempts)
		MaxAckPending: 1000,
	})
	if err != nil {
		return fmt.Errorf("hub: consumer for board type %s: %w", boardType, err)
	}
	h.mu.Lock()
	h.types[boardType] = true
	h.mu.Unlock()
	return nil
}

// PutFirmware stores an image in the firmware bucket under its sha256 and
// returns the digest. An image already stored is not stored again.
func (h *Hub) PutFirmware(ctx context.Context, r io.Reader) (string, error) {
	tmp, err := os.CreateTemp(h.cfg.DataDir, ".fw-*")
	if err != nil {
		return "", fmt.Errorf("firmware: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, sum), io.LimitReader(r, MaxFirmwareBytes+1))
	if err != nil {
		return "", fmt.Errorf("firmware: spool: %w", err)
	}
	if n > MaxFirmwareBytes {
		return "", fmt.Errorf("firmware: larger than %d bytes: %w", MaxFirmwareBytes, ErrBadJob)
	}
	digest := hex.EncodeToString(sum.Sum(nil))
	if _, err := h.obs.GetInfo(ctx, digest); err == nil {
		return digest, nil
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return "", fmt.Errorf("firmware: %w", err)
	}
	if _, err := h.obs.Put(ctx, jetstream.ObjectMeta{Name: digest}, tmp); err != nil {
		return "", fmt.Errorf("firmware %s: put: %w", digest, err)
	}
	return digest, nil
}

// Submit records a job and offers it on jobs.<type>. Submitting the same
// job id again returns the existing record (idempotent).
func (h *Hub) Submit(ctx context.Context, j Job) (JobRecord, error) {
	if err := checkJobID(j.ID); err != nil {
		return JobRecord{}, err
	}
	if err := CheckName("board type", j.Type); err != nil {
		return JobRecord{}, fmt.Errorf("job %s: %w: %w", j.ID, ErrBadJob, err)
	}
	if len(j.Spec) > MaxSpecBytes {
		return JobRecord{}, fmt.Errorf("job %s: spec larger than %d bytes: %w", j.ID, MaxSpecBytes, ErrBadJob)
	}
	if j.Firmware != "" {
		if !isDigest(j.Firmware) {
			return JobRecord{}, fmt.Errorf("job %s: firmware %q is not a sha256 hex digest: %w", j.ID, j.Firmware, ErrBadJob)
		}
		if _, err := h.obs.GetInfo(ctx, j.Firmware); err != nil {
			return JobRecord{}, fmt.Errorf("job %s: firmware %s not in the firmware store: %w", j.ID, j.Firmware, ErrBadJob)
		}
	}
	h.mu.Lock()
	if rec, ok := h.ledger[j.ID]; ok {
		out := cloneRecord(rec)
		h.mu.Unlock()
		return out, nil
	}
	types := h.recordTypesLocked()
	h.mu.Unlock()
	found := false
	for _, t := range types {
		found = found || t == j.Type
	}
	if !found {
		return JobRecord{}, fmt.Errorf("job %s: board type %q (racks have %v): %w", j.ID, j.Type, types, ErrNoRack)
	}
	if err := h.ensureConsumer(ctx, j.Type); err != nil {
		return JobRecord{}, err
	}
	data, err := json.Marshal(j)
	if err != nil {
		return JobRecord{}, fmt.Errorf("job %s: %w", j.ID, err)
	}
	rec := &JobRecord{Job: j, Submitted: time.Now().UTC()}
	h.mu.Lock()
	h.ledger[j.ID] = rec
	h.mu.Unlock()
	ack, err := h.js.Publish(ctx, "jobs."+j.Type, data, jetstream.WithMsgID(j.ID))
	if err != nil {
		h.mu.Lock()
		delete(h.ledger, j.ID)
		h.mu.Unlock()
		return JobRecord{}, fmt.Errorf("job %s: offer: %w", j.ID, err)
	}
	h.mu.Lock()
	rec.Seq = ack.Sequence
	out := cloneRecord(rec)
	h.mu.Unlock()
	h.persist(ctx, out)
	h.notify()
	return out, nil
}

// Job returns the hub's record of a job.
func (h *Hub) Job(id string) (JobRecord, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	rec, ok := h.ledger[id]
	if !ok {
		return JobRecord{}, false
	}
	return cloneRecord(rec), true
}

// Jobs returns every job record, by id.
func (h *Hub) Jobs() []JobRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]JobRecord, 0, len(h.ledger))
	for _, r := range h.ledger {
		out = append(out, cloneRecord(r))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Stats returns the ingester's counters.
func (h *Hub) Stats() HubStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stats
}

// WaitJob blocks until cond holds for job id, or ctx ends.
func (h *Hub) WaitJob(ctx context.Context, id string, cond func(JobRecord) bool) (JobRecord, error) {
	for {
		h.mu.Lock()
		ch := h.changed
		rec, ok := h.ledger[id]
		var out JobRecord
		if ok {
			out = cloneRecord(rec)
		}
		h.mu.Unlock()
		if ok && cond(out) {
			return out, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return out, fmt.Errorf("job %s: %w (last state: verdict %q, %d attempts)", id, ctx.Err(), out.Verdict, len(out.Attempts))
		}
	}
}

func (h *Hub) notify() {
	h.mu.Lock()
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
}

func cloneRecord(r *JobRecord) JobRecord {
	out := *r
	out.Attempts = append([]Attempt(nil), r.Attempts...)
	return out
}

func (h *Hub) persist(ctx context.Context, rec JobRecord) {
	data, err := json.Marshal(rec)
	if err != nil {
		h.log.Error("ledger: encode", "job", rec.ID, "err", err)
		return
	}
	if _, err := h.kv.Put(ctx, rec.ID, data); err != nil {
		h.log.Error("ledger: persist", "job", rec.ID, "err", err)
	}
}

func (h *Hub) loadLedger(ctx context.Context) error {
	lister, err := h.kv.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("hub: ledger: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	for _, k := range keys {
		e, err := h.kv.Get(ctx, k)
		if err != nil {
			return fmt.Errorf("hub: ledger %s: %w", k, err)
		}
		var rec JobRecord
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			return fmt.Errorf("hub: ledger %s: %w", k, err)
		}
		h.ledger[rec.ID] = &rec
	}
	return nil
}

// claimRequest is what a rack sends on farm.claim.<rack> before it runs a
// delivered job.
type claimRequest struct {
	Job       string `json:"job"`
	Board     string `json:"board"`
	Seq       uint64 `json:"seq"`
	Delivered uint64 `json:"delivered"`
}

type claimReply struct {
	OK      bool   `json:"ok"`
	Attempt string `json:"attempt,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// handleClaim numbers a new attempt. The rack's name comes from the
// subject, which only that rack's user may publish on.
func (h *Hub) handleClaim(m *nats.Msg) {
	rackName := m.Subject[len("farm.claim."):]
	var req claimRequest
	reply := func(r claimReply) {
		data, _ := json.Marshal(r)
		_ = m.Respond(data)
	}
	if err := json.Unmarshal(m.Data, &req); err != nil {
		reply(claimReply{Reason: "bad claim: " + err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h.mu.Lock()
	rec, ok := h.ledger[req.Job]
	if !ok {
		h.mu.Unlock()
		reply(claimReply{Reason: "unknown job"})
		h.deleteJobMsg(ctx, req.Seq)
		return
	}
	if rec.Verdict != "" {
		seq := rec.Seq
		h.mu.Unlock()
		reply(claimReply{Reason: "job already has its verdict"})
		h.deleteJobMsg(ctx, seq)
		return
	}
	// The same delivery claimed again (a retried request): same attempt.
	if c := rec.currentAttempt(); c != nil && c.Rack == rackName && c.Delivered == req.Delivered && c.State == "running" {
		id := c.ID
		h.mu.Unlock()
		reply(claimReply{OK: true, Attempt: id})
		return
	}
	if len(rec.Attempts) >= h.cfg.MaxAttempts {
		if c := rec.currentAttempt(); c != nil && c.State == "running" {
			c.State = "superseded"
		}
		rec.Verdict, rec.DecidedBy = "error", "hub"
		rec.Detail = fmt.Sprintf("no verdict after %d attempts", len(rec.Attempts))
		out := cloneRecord(rec)
		h.mu.Unlock()
		reply(claimReply{Reason: rec.Detail})
		h.persist(ctx, out)
		h.deleteJobMsg(ctx, out.Seq)
		h.notify()
		return
	}
	if c := rec.currentAttempt(); c != nil && c.State == "running" {
		c.State = "superseded" // JetStream redelivered: its holder went silent for AckWait
	}
	n := len(rec.Attempts) + 1
	a := Attempt{N: n, ID: fmt.Sprintf("%s#%d", rec.ID, n), Rack: rackName, Board: req.Board,
		Delivered: req.Delivered, State: "running", Claimed: time.Now().UTC()}
	rec.Attempts = append(rec.Attempts, a)
	rec.Current = n
	out := cloneRecord(rec)
	h.mu.Unlock()
	h.persist(ctx, out) // before the reply: the attempt exists before it runs
	reply(claimReply{OK: true, Attempt: a.ID})
	h.log.Info("attempt claimed", "attempt", a.ID, "rack", rackName, "board", req.Board, "delivered", req.Delivered)
	h.notify()
}

// cancelCmd is what farm.cmd.<rack>.cancel carries.
type cancelCmd struct {
	Job     string `json:"job"`
	Attempt string `json:"attempt"`
	Reason  string `json:"reason,omitempty"`
}

// Cancel gives a job the verdict "cancelled" at the hub: its JOBS message
// goes (no rack pulls it again and a claim of it is refused) and, when an
// attempt runs at a rack, that rack is told to stop it (farm.cmd.<rack>.
// cancel, best effort: a rack cut off at that moment runs the attempt to
// its end). A result the rack sends for it later is recorded on the
// attempt and never changes the verdict. ErrDecided when the job has its
// verdict already.
func (h *Hub) Cancel(ctx context.Context, id, reason string) (JobRecord, error) {
	h.mu.Lock()
	rec, ok := h.ledger[id]
	if !ok {
		h.mu.Unlock()
		return JobRecord{}, fmt.Errorf("job %s: %w", id, ErrNoJob)
	}
	if rec.Verdict != "" {
		out := cloneRecord(rec)
		h.mu.Unlock()
		return out, fmt.Errorf("job %s: %w (%s)", id, ErrDecided, out.Verdict)
	}
	rec.Verdict, rec.DecidedBy, rec.Detail = "cancelled", "hub", "cancelled at the hub"
	if reason != "" {
		rec.Detail += ": " + reason
	}
	var running *Attempt
	if c := rec.currentAttempt(); c != nil && c.State == "running" {
		c.State = "cancelled"
		a := *c
		running = &a
	}
	out := cloneRecord(rec)
	h.mu.Unlock()
	h.persist(ctx, out)
	h.deleteJobMsg(ctx, out.Seq)
	if running != nil {
		data, _ := json.Marshal(cancelCmd{Job: id, Attempt: running.ID, Reason: reason})
		if err := h.nc.Publish("farm.cmd."+running.Rack+".cancel", data); err != nil {
			h.log.Warn("cancel: rack not told", "attempt", running.ID, "rack", running.Rack, "err", err)
		}
	}
	h.log.Info("verdict", "job", id, "verdict", out.Verdict, "attempt", "hub")
	h.notify()
	return out, nil
}

func (r *JobRecord) currentAttempt() *Attempt {
	if r.Current < 1 || r.Current > len(r.Attempts) {
		return nil
	}
	return &r.Attempts[r.Current-1]
}

func (h *Hub) deleteJobMsg(ctx context.Context, seq uint64) {
	if seq == 0 {
		return
	}
	if err := h.jobs.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		h.log.Warn("delete job message", "seq", seq, "err", err)
	}
}

// event is one outbox row as published on farm.evt.<rack>.<kind>.
type event struct {
	Kind    string `json:"kind"` // "result"
	Job     string `json:"job"`
	Attempt string `json:"attempt"`
	Verdict string `json:"verdict,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// ingest applies one EVENTS message. Events from one rack arrive in outbox
// order; applying one twice changes nothing.
func (h *Hub) ingest(m jetstream.Msg) {
	subj := m.Subject() // farm.evt.<rack>.<kind>
	var rackName string
	if parts := splitSubject(subj); len(parts) == 4 {
		rackName = parts[2]
	}
	var ev event
	if err := json.Unmarshal(m.Data(), &ev); err != nil || rackName == "" {
		h.mu.Lock()
		h.stats.Rejected++
		h.mu.Unlock()
		h.log.Warn("event rejected: malformed", "subject", subj, "err", err)
		_ = m.Ack()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if ev.Kind == "result" {
		h.applyResult(ctx, rackName, ev)
	}
	_ = m.Ack()
}

func (h *Hub) applyResult(ctx context.Context, rackName string, ev event) {
	h.mu.Lock()
	rec, ok := h.ledger[ev.Job]
	var a *Attempt
	if ok {
		for i := range rec.Attempts {
			if rec.Attempts[i].ID == ev.Attempt {
				a = &rec.Attempts[i]
			}
		}
	}
	if a == nil || a.Rack != rackName {
		h.stats.Rejected++
		h.mu.Unlock()
		h.log.Warn("result rejected: no such attempt of this rack", "rack", rackName, "attempt", ev.Attempt)
		return
	}
	if a.Verdict != "" {
		h.stats.Duplicates++
		h.mu.Unlock()
		return
	}
	h.stats.Results++
	a.Verdict, a.Detail, a.Reported = ev.Verdict, ev.Detail, time.Now().UTC()
	decided := false
	if rec.Verdict == "" && rec.Current == a.N && a.State == "running" {
		a.State = "final"
		rec.Verdict, rec.Detail, rec.DecidedBy = ev.Verdict, ev.Detail, a.ID
		decided = true
	}
	// Otherwise: a late result of a superseded attempt, recorded as that
	// attempt's; the job's verdict is not touched.
	out := cloneRecord(rec)
	h.mu.Unlock()
	h.persist(ctx, out)
	if decided {
		h.deleteJobMsg(ctx, out.Seq)
		h.log.Info("verdict", "job", out.ID, "verdict", out.Verdict, "attempt", a.ID)
	} else {
		h.log.Info("late result recorded", "attempt", ev.Attempt, "verdict", ev.Verdict, "job_verdict", out.Verdict)
	}
	h.notify()
}

// WatchConsole subscribes to a board's console at the hub. Bytes cross the
// rack's link only while such a subscription exists.
func (h *Hub) WatchConsole(rackName, board string, fn func([]byte)) (*nats.Subscription, error) {
	if err := CheckName("rack", rackName); err != nil {
		return nil, err
	}
	if err := CheckName("board", board); err != nil {
		return nil, err
	}
	return h.nc.Subscribe("console."+rackName+"."+board, func(m *nats.Msg) { fn(m.Data) })
}

// WatchRacks applies changes of RacksDir to the running hub, so `hilfarm
// rack add` and `hilfarm rack revoke` take effect without a restart. It is
// told of changes by inotify (nothing polls while nothing changes); where
// inotify cannot watch the directory it re-reads it every interval. It
// returns when ctx ends.
func (h *Hub) WatchRacks(ctx context.Context, every time.Duration) error {
	if h.cfg.RacksDir == "" {
		return errors.New("hub: no racks directory to watch")
	}
	dir := h.cfg.RacksDir
	changed := func() bool { // the fallback: a look every interval
		t := time.NewTimer(every)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	// The watch starts before the first read: a change in between is seen.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		h.log.Warn("racks directory: looking every "+every.String(), "dir", dir, "err", err)
	} else if w, err := filewatch.New(dir, ""); err != nil {
		h.log.Warn("racks directory: no inotify; looking every "+every.String(), "dir", dir, "err", err)
	} else {
		context.AfterFunc(ctx, func() { w.Close() })
		changed = func() bool {
			if !w.Wait() {
				return false
			}
			w.Drain() // the rest of one write (temporary file, rename)
			return true
		}
	}
	last, err := LoadRecords(dir)
	if err != nil {
		return err
	}
	for changed() {
		recs, err := LoadRecords(dir)
		if err != nil {
			h.log.Warn("racks directory unreadable; keeping the current credentials", "err", err)
			continue
		}
		if sameRecords(last, recs) {
			continue
		}
		if err := h.SetRecords(ctx, recs); err != nil {
			h.log.Error("apply rack credentials", "err", err)
			continue
		}
		h.log.Info("rack credentials reloaded", "racks", len(recs))
		last = recs
	}
	return nil
}

func sameRecords(a, b []Record) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Name != y.Name || x.PassHash != y.PassHash || x.Revoked != y.Revoked || fmt.Sprint(x.Types) != fmt.Sprint(y.Types) {
			return false
		}
	}
	return true
}
