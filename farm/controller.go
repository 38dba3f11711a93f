package farm

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/rack"
	"github.com/hilfarm/hilfarm/runner"
	"github.com/hilfarm/hilfarm/specs"
)

// BoardHandle is an open board as the controller holds it (implemented by
// *fixtures.Board).
type BoardHandle interface {
	// Runner is the board as the runner drives it. The controller replaces
	// its Console with the recorder's job view.
	Runner() runner.Board
	// ConsoleSource is the board's console; the recorder is its only reader.
	ConsoleSource() runner.Console
	// SafeState powers the board off and drives its outputs to their safe values.
	SafeState(ctx context.Context) error
	// Close applies the safe state and releases the board's fixtures.
	Close() error
}

// Config configures a Controller.
type Config struct {
	Farm    *specs.Farm
	DataDir string    // firmware store lives in DataDir/firmware
	Store   *store.DB // opened by the caller
	Logger  *slog.Logger
	// OpenBoard opens a board's fixtures and applies its safe state.
	OpenBoard func(ctx context.Context, b specs.Board) (BoardHandle, error)
	// MaxAttempts bounds how many times a job is attempted when attempts
	// end in infrastructure errors; default 3.
	MaxAttempts int
	// QuarantineAfter is the number of consecutive infrastructure errors
	// after which a board is quarantined; default 3.
	QuarantineAfter int
	// ReopenEvery is how often a board whose fixtures failed to open is
	// tried again; default 30s.
	ReopenEvery time.Duration
	// HealthEvery is how often idle boards run their type's health check
	// (farm.hcl health_check); default 6h, negative: never.
	HealthEvery time.Duration
	// QuarantineCheckEvery is how often quarantined boards run it, to be
	// let back in when it passes; default 10m, negative: never.
	QuarantineCheckEvery time.Duration
	// RetentionEvery is how often the farm's retention is applied; default 1h.
	RetentionEvery time.Duration
	// Now is the clock for records; nil: time.Now.
	Now func() time.Time
	// Recorder tunes the console recorders.
	Recorder RecorderOptions
	// Runner tunes job runs.
	Runner runner.Options
	// OnJobFinished hooks are called once per job that reaches a final
	// state, from a goroutine of their own; they must not block for long.
	OnJobFinished []func(JobView)
	// Hub, when set, makes this farm the front door of a multi-rack farm:
	// a job for a board type no local board has but a rack has goes to
	// the racks through it (hubjobs.go). Started and closed by the caller.
	Hub *rack.Hub
}

// Board states.
const (
	BoardIdle        = "idle"
	BoardLeased      = "leased"
	BoardMaintenance = "maintenance"
	BoardQuarantined = "quarantined"
	BoardOffline     = "offline"
)

// Sentinel errors of the controller.
var (
	// ErrFinished: the job already reached a final state (409).
	ErrFinished = errors.New("job already finished")
	// ErrNotRunning: Run has not been called or has returned.
	ErrNotRunning = errors.New("controller is not running")
)

// RejectedError is a submission refused for bad input.
type RejectedError struct {
	Status      int // HTTP status: 400, 413 or 422
	Message     string
	Diagnostics specs.Diagnostics
}

func (e *RejectedError) Error() string { return e.Message }

// Controller runs the farm: boards, recorders, queue, scheduler and jobs.
// All its methods are safe for concurrent use.
type Controller struct {
	cfg   Config
	log   *slog.Logger
	db    *store.DB
	fwDir string
	now   func() time.Time
	hub   *hub
	disk  *diskGuard // disk-full mode (diskfull.go)

	mu      sync.Mutex
	slots   map[string]*slot
	names   []string
	running map[string]*activeJob
	ctx     context.Context  // Run's context, while running
	results map[string]int64 // final jobs by state, for metrics
	wake    chan struct{}
	ready   chan struct{}
	jobs    sync.WaitGroup
	// remote: the watchers of jobs on racks (hubjobs.go); remoteStopped
	// (under mu) once Run stopped them.
	remote        sync.WaitGroup
	remoteStopped bool
	rec           sync.WaitGroup
	hooks         sync.WaitGroup // OnJobFinished calls in flight

	// Guarded by mu too: errors not yet charged to a board, by job (verdicts.go).
	pending map[string]pendingError
	// settled is closed when a stopping Run has ended its jobs (shutdown.go).
	settled     chan struct{}
	settledOnce sync.Once

	idem keyLocks // submissions by idempotency key (idempotency.go)

	changeMu sync.Mutex
	changed  chan struct{} // closed at the next change of a board or the queue

	verdictKey ed25519.PrivateKey // signs verdict statements (verdict.go)
}

// New makes a controller; start it with Run.
func New(cfg Config) (*Controller, error) {
	if cfg.Farm == nil || cfg.Store == nil || cfg.OpenBoard == nil {
		return nil, errors.New("farm: Config needs Farm, Store and OpenBoard")
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.QuarantineAfter <= 0 {
		cfg.QuarantineAfter = 3
	}
	if cfg.ReopenEvery <= 0 {
		cfg.ReopenEvery = 30 * time.Second
	}
	if cfg.HealthEvery == 0 {
		cfg.HealthEvery = 6 * time.Hour
	}
	if cfg.RetentionEvery <= 0 {
		cfg.RetentionEvery = time.Hour
	}
	if cfg.QuarantineCheckEvery == 0 {
		cfg.QuarantineCheckEvery = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Logger = slog.New(newDiskLogHandler(cfg.Logger.Handler())) // disk-full errors: rate-limited
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DataDir == "" {
		cfg.DataDir = cfg.Farm.DataDir
	}
	c := &Controller{
		cfg:     cfg,
		log:     cfg.Logger,
		db:      cfg.Store,
		fwDir:   filepath.Join(cfg.DataDir, "firmware"),
		now:     cfg.Now,
		hub:     newHub(),
		slots:   map[string]*slot{},
		running: map[string]*activeJob{},
		pending: map[string]pendingError{},
		wake:    make(chan struct{}, 1),
		ready:   make(chan struct{}),
		settled: make(chan struct{}),
	}
	if err := os.MkdirAll(c.fwDir, 0o750); err != nil {
		return nil, fmt.Errorf("farm: firmware store: %w", err)
	}
	cleanSpool(c.fwDir, c.log)
	c.disk = newDiskGuard(cfg.DataDir, c.log, c.poke)
	if err := c.loadVerdictKey(); err != nil {
		return nil, err
	}
	types := map[string]specs.BoardType{}
	for _, t := range cfg.Farm.BoardTypes {
		types[t.Name] = t
	}
	for _, b := range cfg.Farm.Boards {
		c.slots[b.Name] = &slot{cfg: b, typ: types[b.Type], state: BoardOffline, reason: "not opened yet", since: c.now(), onChange: c.notify}
		c.names = append(c.names, b.Name)
	}
	return c, nil
}

// Store is the controller's store.
func (c *Controller) Store() *store.DB { return c.db }

// Farm is the farm the controller runs.
func (c *Controller) Farm() *specs.Farm { return c.cfg.Farm }

// Run opens every board (safe state first), recovers jobs that were running
// when a previous controller died, starts the recorders and the scheduler,
// and runs until ctx is done. Then running jobs end as error "controller
// shutting down", boards go to their safe state and everything is closed.
func (c *Controller) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.ctx != nil {
		c.mu.Unlock()
		return errors.New("farm: Run called twice")
	}
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	c.ctx = runCtx
	c.mu.Unlock()
	// Settled also when Run fails early: there is nothing to wait for then.
	defer c.settledOnce.Do(func() { close(c.settled) })

	persisted, err := c.db.BoardStates(ctx)
	if err != nil {
		return fmt.Errorf("farm: board states: %w", err)
	}
	// Boards first: every board is in its safe state before interrupted
	// jobs are settled.
	c.openBoards(runCtx, persisted)
	interrupted, err := c.db.RecoverInterruptedWith(ctx, reasonRestarted, c.now(), c.remoteAfterRestart(ctx, c.afterRestart(ctx)))
	if err != nil {
		return err
	}
	for _, it := range interrupted {
		c.log.Warn("job interrupted by a controller restart", "job", it.JobID, "attempt", it.N, "board", it.Board)
		j, err := c.db.Job(ctx, it.JobID)
		if err == nil {
			c.publishState(j, it.N, "")
			if store.Final(j.State) {
				c.finished(j)
			}
		}
	}
	// Rack jobs the hub still has are followed again (hubjobs.go).
	c.reattachRemote(ctx, interrupted)
	c.settleSpreads(ctx) // spread jobs whose shards all ended meanwhile (campaign.go)

	// Health checks queued by a previous run are still this run's: a board
	// gets no second one.
	if q, err := c.db.Queue(ctx); err == nil {
		c.mu.Lock()
		for _, j := range q {
			if s := c.slots[j.Labels["health-check"]]; s != nil && j.Submitter == HealthSubmitter {
				s.healthJob, s.lastHealth = j.ID, c.now()
			}
		}
		c.mu.Unlock()
	}
	close(c.ready)
	var bg sync.WaitGroup
	bg.Add(3)
	go func() {
		defer bg.Done()
		c.reopenLoop(runCtx)
	}()
	go func() {
		defer bg.Done()
		c.retentionLoop(runCtx)
	}()
	go func() {
		defer bg.Done()
		c.healthLoop(runCtx)
	}()
	c.poke()
	c.scheduleLoop(runCtx)

	// Shutdown: stop the jobs, wait for their cleanup, then the boards.
	c.mu.Lock()
	for _, a := range c.running {
		a.cancel(errShutdown)
	}
	c.mu.Unlock()
	c.jobs.Wait()
	c.settledOnce.Do(func() { close(c.settled) })
	c.mu.Lock()
	var holds []*hold
	var held []string
	for _, n := range c.names {
		if h := c.slots[n].hold; h != nil {
			holds, held = append(holds, h), append(held, n)
		}
	}
	c.mu.Unlock()
	for i, h := range holds {
		c.endHold(context.Background(), held[i], h, errShutdown.Error())
	}
	cancelRun()
	bg.Wait()
	c.stopRemote() // hubjobs.go
	c.disk.close()
	c.closeBoards()
	c.rec.Wait()
	c.hooks.Wait()
	c.mu.Lock()
	c.ctx = nil
	c.mu.Unlock()
	return nil
}

var errShutdown = errors.New("controller shutting down")

// Changed returns a channel that is closed at the next change of a board's
// state or of a job's state (submitted, started, finished, requeued): the
// feed of live views, instead of polling. Call it again after each change.
func (c *Controller) Changed() <-chan struct{} {
	c.changeMu.Lock()
	defer c.changeMu.Unlock()
	if c.changed == nil {
		c.changed = make(chan struct{})
	}
	return c.changed
}

// notify wakes the waiters of Changed.
func (c *Controller) notify() {
	c.changeMu.Lock()
	defer c.changeMu.Unlock()
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
}

// Ready is closed once Run has opened the boards and settled the jobs a
// previous controller left running; the scheduler starts then.
func (c *Controller) Ready() <-chan struct{} { return c.ready }

// poke wakes the scheduler.
func (c *Controller) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Submission is a firmware candidate and a spec to run on it.
type Submission struct {
	Firmware        io.Reader
	FirmwareName    string
	FirmwareVersion string
	SpecSrc         []byte
	SpecFilename    string
	Vars            map[string]string
	Type            string            // narrows the spec's selector
	Tags            map[string]string // added to the spec's selector
	// Board pins the job to this board, which must match the selector
	// (a rack runs the jobs it pulled for a board on that board).
	Board     string
	Priority  int
	Labels    map[string]string
	Submitter string
	Signature []byte // armored SSH signature of the firmware; nil: unsigned
	SBOM      []byte // CycloneDX JSON SBOM; nil: none

	idempotency *store.IdempotencyKey // set by SubmitIdempotent
}

// Submit validates a submission, stores its firmware by sha256 and queues
// it. Bad input gives a *RejectedError; nothing is stored for it.
func (c *Controller) Submit(ctx context.Context, s Submission) (*JobView, error) {
	if len(s.SpecSrc) == 0 {
		return nil, &RejectedError{Status: 400, Message: "no spec given"}
	}
	if s.Firmware == nil {
		return nil, &RejectedError{Status: 400, Message: "no firmware given"}
	}
	fname := s.SpecFilename
	if fname == "" {
		fname = "spec.hcl"
	}
	fname = filepath.Base(fname)
	spec, diags := specs.ParseSpec(s.SpecSrc, fname, specs.SpecOptions{Vars: s.Vars, Farm: c.cfg.Farm, RequireVars: true})
	invalid := diags.HasErrors()
	if invalid {
		rs, ok := c.parseForRack(s, fname) // a hub: the spec may be for a rack's board type (hubjobs.go)
		if !ok {
			return nil, &RejectedError{Status: 422, Message: "invalid spec: " + diags.Err().Error(), Diagnostics: diags}
		}
		spec = rs
	}
	sel := spec.Board
	if s.Type != "" {
		if sel.Type != "" && sel.Type != s.Type {
			return nil, &RejectedError{Status: 422, Message: fmt.Sprintf("board type %q conflicts with the spec's %q", s.Type, sel.Type)}
		}
		sel.Type = s.Type
	}
	if len(s.Tags) > 0 {
		tags := map[string]string{}
		for k, v := range sel.Tags {
			tags[k] = v
		}
		for k, v := range s.Tags {
			if old, ok := tags[k]; ok && old != v {
				return nil, &RejectedError{Status: 422, Message: fmt.Sprintf("tag %s=%s conflicts with the spec's %s=%s", k, v, k, old)}
			}
			tags[k] = v
		}
		sel.Tags = tags
	}
	matching := c.matching(sel, false)
	if len(matching) == 0 && c.isRackType(sel.Type) {
		return c.submitRemote(ctx, s, spec, sel, fname)
	}
	if invalid && len(matching) > 0 { // not for a rack: the diagnostics against this farm stand
		return nil, &RejectedError{Status: 422, Message: "invalid spec: " + diags.Err().Error(), Diagnostics: diags}
	}
	if len(matching) == 0 {
		return nil, &RejectedError{Status: 422, Message: "no board of this farm matches " + describeSelector(sel) + "; the farm has " + c.describeBoards() + c.describeRackTypes()}
	}
	if s.Board != "" && !slices.Contains(matching, s.Board) {
		return nil, &RejectedError{Status: 422, Message: fmt.Sprintf("board %s is not one of the boards that match %s: %s", s.Board, describeSelector(sel), strings.Join(matching, ", "))}
	}
	fw, err := c.admitFirmware(ctx, sel, s)
	if err != nil {
		return nil, err
	}
	selJSON, _ := json.Marshal(jobSelector{Selector: sel, Board: s.Board})
	j := &store.Job{
		ID:           newJobID(c.now()),
		SpecName:     spec.Name,
		SpecSrc:      s.SpecSrc,
		SpecFilename: fname,
		Firmware:     fw,
		Selector:     selJSON,
		Vars:         s.Vars,
		Labels:       s.Labels,
		Priority:     s.Priority,
		Submitter:    s.Submitter,
		Created:      c.now(),
		Spread:       specSpread(spec), // campaign.go
	}
	if s.idempotency != nil {
		err = c.db.InsertJobWithKey(ctx, j, *s.idempotency, c.now().Add(-IdempotencyWindow))
	} else {
		err = c.db.InsertJob(ctx, j)
	}
	if err != nil {
		return nil, err
	}
	c.publishState(j, 0, "")
	c.poke()
	return c.Job(ctx, j.ID)
}

// storeFirmware streams r into the content-addressed firmware store,
// refusing more than the farm's upload limit and, before anything is in
// place, a candidate chk rejects.
// admitFirmware checks a submission's candidate against the trust policy
// (signature, SBOM: trust.go), stores its image and records it.
func (c *Controller) admitFirmware(ctx context.Context, sel specs.Selector, s Submission) (store.Firmware, error) {
	chk, err := c.checkCandidate(sel, s.Signature, s.SBOM)
	if err != nil {
		return store.Firmware{}, err
	}
	fw, err := c.storeFirmware(s.Firmware, s.FirmwareName, chk)
	if err != nil {
		return store.Firmware{}, err
	}
	fw.Version = s.FirmwareVersion
	fw.Provenance = chk.prov
	if err := c.db.PutFirmware(ctx, fw, c.now()); err != nil {
		return store.Firmware{}, err
	}
	return fw, nil
}

func (c *Controller) storeFirmware(r io.Reader, name string, chk *candidateCheck) (store.Firmware, error) {
	defer chk.close()
	limit := c.cfg.Farm.MaxUploadBytes
	if limit <= 0 {
		limit = 64 << 20
	}
	tmp, err := os.CreateTemp(c.fwDir, ".upload-*")
	if err != nil {
		return store.Firmware{}, fmt.Errorf("firmware store: %w", err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	var w io.Writer = io.MultiWriter(tmp, h)
	if hw := chk.hashWriter(); hw != nil {
		w = io.MultiWriter(tmp, h, hw)
	}
	n, err := io.Copy(w, io.LimitReader(r, limit+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return store.Firmware{}, &RejectedError{Status: 413, Message: fmt.Sprintf("firmware is larger than the limit of %d bytes", limit)}
		}
		return store.Firmware{}, fmt.Errorf("firmware upload: %w", err)
	}
	if n > limit {
		return store.Firmware{}, &RejectedError{Status: 413, Message: fmt.Sprintf("firmware is larger than the limit of %d bytes", limit)}
	}
	if n == 0 {
		return store.Firmware{}, &RejectedError{Status: 400, Message: "firmware is empty"}
	}
	raw := h.Sum(nil)
	if err := chk.verify(raw); err != nil {
		return store.Firmware{}, err
	}
	sum := hex.EncodeToString(raw)
	if err := os.Rename(tmp.Name(), c.firmwarePath(sum)); err != nil {
		return store.Firmware{}, fmt.Errorf("firmware store: %w", err)
	}
	base := filepath.Base(strings.ReplaceAll(name, "\\", "/"))
	if base == "." || base == "/" || base == "" {
		base = "firmware"
	}
	return store.Firmware{SHA256: sum, Name: base, Size: n}, nil
}

func (c *Controller) firmwarePath(sha string) string { return filepath.Join(c.fwDir, sha) }

// FirmwarePath is where a stored firmware candidate lives.
func (c *Controller) FirmwarePath(sha string) string { return c.firmwarePath(sha) }

func newJobID(now time.Time) string {
	var b [5]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s-%s", now.UTC().Format("20060102-150405"), hex.EncodeToString(b[:]))
}

func describeSelector(sel specs.Selector) string {
	var parts []string
	if sel.Type != "" {
		parts = append(parts, "type "+sel.Type)
	}
	keys := make([]string, 0, len(sel.Tags))
	for k := range sel.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, k+"="+sel.Tags[k])
	}
	if len(parts) == 0 {
		return "any board"
	}
	return strings.Join(parts, ", ")
}

func (c *Controller) describeBoards() string {
	var parts []string
	for _, n := range c.names {
		s := c.slots[n]
		parts = append(parts, fmt.Sprintf("%s (type %s%s)", n, s.cfg.Type, tagList(s.cfg.Tags)))
	}
	if len(parts) == 0 {
		return "no boards"
	}
	return strings.Join(parts, ", ")
}

func tagList(tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, ", %s=%s", k, tags[k])
	}
	return b.String()
}

// Cancel cancels a queued or running job. A running job's board goes back
// to its safe state first; Cancel returns when the job is final.
func (c *Controller) Cancel(ctx context.Context, id, actor string) (*JobView, error) {
	if v, err, ok := c.cancelSpread(ctx, id, actor); ok { // a spread job and its shards (campaign.go)
		return v, err
	}
	if j, err := c.db.Job(ctx, id); err == nil && isRemote(j) && !store.Final(j.State) {
		return c.cancelRemote(ctx, j, "cancelled by "+actor)
	}
	return c.cancelJob(ctx, id, "cancelled by "+actor)
}

// cancelJob cancels one job with reason.
func (c *Controller) cancelJob(ctx context.Context, id, reason string) (*JobView, error) {
	// A job can move between queued and running while we look (an attempt
	// ending in an infrastructure error is requeued): try until it is final.
	for try := range 10 {
		j, err := c.db.Job(ctx, id)
		if err != nil {
			return nil, err
		}
		if store.Final(j.State) {
			if try > 0 && j.State == store.StateCancelled { // our cancel landed
				return c.Job(ctx, id)
			}
			return nil, fmt.Errorf("job %s is %s: %w", id, j.State, ErrFinished)
		}
		ok, err := c.db.CancelQueued(ctx, id, reason, c.now())
		if err != nil {
			return nil, err
		}
		if ok {
			j, err = c.db.Job(ctx, id)
			if err != nil {
				return nil, err
			}
			c.publishState(j, j.Attempts, "")
			c.finished(j)
			return c.Job(ctx, id)
		}
		c.mu.Lock()
		a := c.running[id]
		if a != nil && a.cancelReq == nil {
			a.cancelReq = &cancelError{reason: reason}
		}
		c.mu.Unlock()
		if a == nil {
			continue // between attempts: look again
		}
		a.cancel(a.cancelReq)
		select {
		case <-a.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("job %s kept changing state; try again", id)
}

type cancelError struct{ reason string }

func (e *cancelError) Error() string { return e.reason }

// JobView is a job with its attempts and, while queued, its position and ETA.
type JobView struct {
	store.Job
	Attempts []store.Attempt `json:"attempts"`
	Position int             `json:"position,omitempty"` // 1 = next to run
	ETA      time.Time       `json:"eta,omitzero"`       // estimated start (queued) or end (running)
	// Spread: a spread campaign's shards; ShardOf: the spread job a shard
	// belongs to (campaign.go).
	Spread  *SpreadView     `json:"spread,omitempty"`
	ShardOf *store.ShardRef `json:"shard_of,omitempty"`
}

// Job returns one job.
func (c *Controller) Job(ctx context.Context, id string) (*JobView, error) {
	j, err := c.db.Job(ctx, id)
	if err != nil {
		return nil, err
	}
	views, err := c.views(ctx, []*store.Job{j})
	if err != nil {
		return nil, err
	}
	return &views[0], nil
}

// Jobs lists jobs, newest first.
func (c *Controller) Jobs(ctx context.Context, f store.JobFilter) ([]JobView, error) {
	js, err := c.db.Jobs(ctx, f)
	if err != nil {
		return nil, err
	}
	return c.views(ctx, js)
}

func (c *Controller) views(ctx context.Context, js []*store.Job) ([]JobView, error) {
	out := make([]JobView, 0, len(js))
	for _, j := range js {
		v := JobView{Job: *j}
		atts, err := c.db.Attempts(ctx, j.ID)
		if err != nil {
			return nil, err
		}
		v.Attempts = atts
		if v.Attempts == nil {
			v.Attempts = []store.Attempt{}
		}
		if err := c.spreadView(ctx, &v); err != nil {
			return nil, err
		}
		switch j.State {
		case store.StateQueued:
			pos, ahead, err := c.db.QueueAhead(ctx, j.ID)
			if err != nil {
				return nil, err
			}
			v.Position = pos
			v.ETA = c.eta(ctx, j, ahead)
		case store.StateRunning:
			if len(atts) > 0 {
				v.ETA = c.runningETA(ctx, j, atts[len(atts)-1].Started) // campaign_eta.go
			} else {
				v.ETA = c.runningETA(ctx, j, time.Time{})
			}
		}
		out = append(out, v)
	}
	return out, nil
}

// eta: campaign_eta.go.

// WriteJobConsole writes the console text of every attempt of a job: the
// slice of the board's log from the attempt's start to its end, with
// markers as bracketed lines.
func (c *Controller) WriteJobConsole(ctx context.Context, id string, w io.Writer) error {
	if _, err := c.db.Job(ctx, id); err != nil {
		return err
	}
	atts, err := c.consoleAttempts(ctx, id) // a spread job's are its shards' (campaign.go)
	if err != nil {
		return err
	}
	for _, a := range atts {
		fmt.Fprintf(w, "[hilfarm: attempt %d on %s, %s]\n", a.N, a.Board, a.State)
		end := a.LogEnd
		if a.State == store.StateRunning {
			end = -1
		}
		recs, err := c.db.Log(ctx, a.Board, a.LogStart, end, 0)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Kind == kindData {
				if _, err := w.Write(r.Data); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintf(w, "\n[hilfarm: %s %s]\n", r.Kind, r.Data)
		}
	}
	return nil
}

// WriteJUnit writes the JUnit XML of a finished job's last attempt.
func (c *Controller) WriteJUnit(ctx context.Context, id string, w io.Writer) error {
	j, err := c.db.Job(ctx, id)
	if err != nil {
		return err
	}
	if len(j.Result) == 0 {
		return fmt.Errorf("job %s has no result yet (%s): %w", id, j.State, ErrNoResult)
	}
	var res runner.Result
	if err := json.Unmarshal(j.Result, &res); err != nil {
		return fmt.Errorf("job %s: stored result: %w", id, err)
	}
	return runner.WriteJUnitWith(w, &res, provenanceProperties(j)) // trust.go
}

// ErrNoResult: the job has no result yet (409 for a JUnit request).
var ErrNoResult = errors.New("no result")

// Subscribe returns a job's events with seq > after from the store, then
// the live ones. live is closed after the job's final state event, or when
// the subscriber falls behind (reconnect with the last seq seen). stop
// releases the subscription (idempotent).
func (c *Controller) Subscribe(ctx context.Context, jobID string, after int64) ([]store.Event, <-chan store.Event, func(), error) {
	return c.SubscribeEvents(ctx, jobID, after, true)
}

// SubscribeEvents is Subscribe; without console, the job's console events
// are left out (and never read back from the board log for it).
func (c *Controller) SubscribeEvents(ctx context.Context, jobID string, after int64, console bool) ([]store.Event, <-chan store.Event, func(), error) {
	if _, err := c.db.Job(ctx, jobID); err != nil {
		return nil, nil, nil, err
	}
	replay, live, stop, err := c.hub.subscribe(ctx, c.db, jobID, after, console)
	if err != nil {
		return nil, nil, nil, err
	}
	return c.expandConsole(replay), live, stop, nil
}

// Stats are the controller's counters, read at scrape time.
type Stats struct {
	QueueDepth   int
	Running      int
	BoardStates  map[string]int // by state
	Boards       []BoardStats
	JobsByResult map[string]int64
	// OldestQueued is when the longest-waiting queued job was submitted
	// (zero with an empty queue).
	OldestQueued time.Time
}

// BoardStats are one board's counters.
type BoardStats struct {
	Name         string
	Type         string
	State        string
	ConsoleBytes int64
	InfraErrors  int64
	PowerCycles  int64
	ViewersDrop  int64
}

// Stats returns the controller's counters.
func (c *Controller) Stats(ctx context.Context) Stats {
	st := Stats{BoardStates: map[string]int{}, JobsByResult: map[string]int64{}}
	if q, err := c.db.Queue(ctx); err == nil {
		st.QueueDepth = len(q)
		for _, j := range q {
			if st.OldestQueued.IsZero() || j.Created.Before(st.OldestQueued) {
				st.OldestQueued = j.Created
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st.Running = len(c.running)
	for _, n := range c.names {
		s := c.slots[n]
		st.BoardStates[s.state]++
		bs := BoardStats{Name: n, Type: s.cfg.Type, State: s.state, InfraErrors: s.infraErrors, PowerCycles: s.powerCycles.Load()}
		if s.rec != nil {
			rs := s.rec.Stats()
			bs.ConsoleBytes, bs.ViewersDrop = rs.Bytes, rs.ViewersDropped
		}
		st.Boards = append(st.Boards, bs)
	}
	for k, v := range c.results {
		st.JobsByResult[k] = v
	}
	return st
}
