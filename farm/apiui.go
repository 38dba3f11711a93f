package farm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hilfarm/hilfarm/farm/store"
)

// This file holds the endpoints the web UI needs beyond the CI API
// (docs/ui.md): comparisons, trends, manual holds, power for the holder,
// the interactive terminal websocket and the farm's live snapshot
// websocket. They use the same authentication, CSRF rule, Origin check,
// connection tracking and close codes as the rest of the API.

// uiRoutes registers the UI's endpoints on the API's mux.
func (a *API) uiRoutes() {
	m := a.mux
	m.Handle("GET /api/v1/compare", a.handle(RoleViewer, a.compare))
	m.Handle("GET /api/v1/trends", a.handle(RoleViewer, a.trends))
	m.Handle("GET /api/v1/specs/{spec}/measurements", a.handle(RoleViewer, a.specMeasurements))
	m.Handle("POST /api/v1/boards/{name}/hold", a.handle(RoleOperator, a.hold))
	m.Handle("DELETE /api/v1/boards/{name}/hold", a.handle(RoleOperator, a.unhold))
	m.Handle("POST /api/v1/boards/{name}/power", a.handle(RoleOperator, a.power))
	m.Handle("GET /api/v1/boards/{name}/terminal", a.handle(RoleViewer, a.terminal))
	m.Handle("GET /api/v1/boards/{name}/history", a.handle(RoleViewer, a.boardHistory))
	m.Handle("GET /api/v1/live", a.handle(RoleViewer, a.live))
	m.Handle("GET /api/v1/jobs/{id}/attempts/{n}/console", a.handle(RoleViewer, a.attemptTail))
	a.campaignRoutes() // campaign_compare.go
}

// holdError maps the controller's hold errors to HTTP answers.
func holdError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrBoardBusy):
		return &httpError{status: http.StatusConflict, msg: err.Error(), err: err}
	case errors.Is(err, ErrNotHolder):
		return &httpError{status: http.StatusForbidden, msg: err.Error(), err: err}
	}
	return err
}

func (a *API) compare(w http.ResponseWriter, r *http.Request, _ Principal) error {
	q := r.URL.Query()
	spec, base, cand := q.Get("spec"), q.Get("base"), q.Get("candidate")
	if spec == "" || base == "" || cand == "" {
		return badRequest("compare wants ?spec=NAME&base=SHA256&candidate=SHA256")
	}
	cmp, err := a.c.Compare(r.Context(), spec, base, cand)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, cmp)
}

func (a *API) trends(w http.ResponseWriter, r *http.Request, _ Principal) error {
	q := r.URL.Query()
	spec, measure := q.Get("spec"), q.Get("measure")
	if spec == "" || measure == "" {
		return badRequest("trends wants ?spec=NAME&measure=NAME[&limit=N]")
	}
	limit, err := trendLimit(q.Get("limit"))
	if err != nil {
		return err
	}
	pts, err := a.c.Trend(r.Context(), spec, measure, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, pts)
}

func (a *API) specMeasurements(w http.ResponseWriter, r *http.Request, _ Principal) error {
	names, err := a.c.Measurements(r.Context(), r.PathValue("spec"))
	if err != nil {
		return err
	}
	if names == nil {
		names = []string{}
	}
	return writeJSON(w, http.StatusOK, names)
}

// decodeStrict decodes a small JSON body and rejects unknown fields.
func decodeStrict(w http.ResponseWriter, r *http.Request, v any, want string) error {
	if err := decodeJSON(http.MaxBytesReader(w, r.Body, 16<<10), v, true); err != nil {
		return bodyError(err, "want JSON "+want)
	}
	return nil
}

func (a *API) hold(w http.ResponseWriter, r *http.Request, p Principal) error {
	var in struct {
		Duration string `json:"duration"`
		Reason   string `json:"reason"`
	}
	const want = `{"duration": "30m", "reason": "..."}`
	if err := decodeStrict(w, r, &in, want); err != nil {
		return err
	}
	d, err := time.ParseDuration(in.Duration)
	if err != nil || d <= 0 || d > MaxHold {
		return badRequest("hold duration %q: want a duration such as \"30m\", at most %s", in.Duration, MaxHold)
	}
	if in.Reason == "" {
		return badRequest("a hold needs a reason (everyone sees it): want JSON %s", want)
	}
	if err := checkText("reason", in.Reason, MaxTextBytes); err != nil {
		return err
	}
	// Hold writes the audit record.
	v, err := a.c.Hold(r.Context(), r.PathValue("name"), p.Actor(), d, in.Reason)
	if err != nil {
		return holdError(err)
	}
	return writeJSON(w, http.StatusOK, v)
}

func (a *API) unhold(w http.ResponseWriter, r *http.Request, p Principal) error {
	name := r.PathValue("name")
	// Release writes the audit record; an admin may end anyone's hold.
	if err := a.c.Release(r.Context(), name, p.Actor(), p.Can(RoleAdmin)); err != nil {
		return holdError(err)
	}
	b, err := a.c.Board(name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, b)
}

func (a *API) power(w http.ResponseWriter, r *http.Request, p Principal) error {
	var in struct {
		Action string `json:"action"`
	}
	if err := decodeStrict(w, r, &in, `{"action": "on"|"off"|"cycle"}`); err != nil {
		return err
	}
	switch in.Action {
	case "on", "off", "cycle":
	default:
		return badRequest("power action %q: want on, off or cycle", in.Action)
	}
	name := r.PathValue("name")
	// HeldPower writes the audit record.
	if err := a.c.HeldPower(r.Context(), name, p.Actor(), in.Action); err != nil {
		return holdError(err)
	}
	b, err := a.c.Board(name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, b)
}

// boardHistory lists the board's recent audit records, newest first:
// maintenance on/off, holds, releases and power switched by a holder.
func (a *API) boardHistory(w http.ResponseWriter, r *http.Request, _ Principal) error {
	name := r.PathValue("name")
	if _, err := a.c.Board(name); err != nil {
		return err
	}
	recs, err := a.c.db.AuditLog(r.Context(), 5000)
	if err != nil {
		return err
	}
	out := []store.AuditRecord{}
	for _, rec := range recs {
		if rec.Target == name && len(out) < 100 {
			out = append(out, rec)
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// TerminalMessage is a JSON text message of the terminal websocket other
// than console bytes and markers: "hello" first (who you are and who holds
// the board), "error" when typing was refused.
type TerminalMessage struct {
	Type   string `json:"type"` // hello, error
	You    string `json:"you,omitempty"`
	Holder string `json:"holder,omitempty"`
	Error  string `json:"error,omitempty"`
}

// terminal is the board console websocket with input: the same replay +
// live stream as /console (binary console bytes, JSON markers, a gap marker
// for a viewer that falls behind, a cut for one that stops reading), and every message the client sends is typed
// into the board, but only if the client holds it. Others get an "error"
// message and keep watching.
func (a *API) terminal(w http.ResponseWriter, r *http.Request, p Principal) error {
	name := r.PathValue("name")
	replay, v, stop, conn, pc, err := a.watchBoardWS(w, r, name)
	if err != nil || conn == nil {
		return err
	}
	defer stop()
	defer a.release(conn)

	// The reader types for the holder; refusals go to the writer, which is
	// the only goroutine that writes (gorilla allows one writer).
	refusals := make(chan string, 8)
	readerDone := make(chan struct{})
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	go a.terminalInput(ctx, conn, name, p.Actor(), refusals, readerDone)
	defer func() { conn.Close(); cancel(); <-readerDone }()

	sendJSON := func(m any) error {
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		_ = conn.SetWriteDeadline(time.Now().Add(wsWriteWait))
		return conn.WriteMessage(websocket.TextMessage, b)
	}
	if err := sendJSON(TerminalMessage{Type: "hello", You: p.Actor(), Holder: a.c.HolderOf(name)}); err != nil {
		return nil
	}
	a.streamConsole(name, conn, pc, replay, v, readerDone, refusals, func(msg string) error {
		return sendJSON(TerminalMessage{Type: "error", Error: msg, Holder: a.c.HolderOf(name)})
	})
	return nil
}

// terminalInput is the terminal connection's only reader: each data
// message is keystrokes for the board.
func (a *API) terminalInput(ctx context.Context, conn *websocket.Conn, board, actor string, refusals chan<- string, done chan<- struct{}) {
	defer close(done)
	conn.SetReadLimit(wsReadLimit)
	_ = conn.SetReadDeadline(time.Now().Add(wsPongWait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(wsPongWait)) })
	refuse := func(msg string) {
		select {
		case refusals <- msg:
		default: // the writer has refusals queued already; one is enough to read
		}
	}
	for {
		_, p, err := conn.ReadMessage()
		if err != nil {
			return
		}
		_ = conn.SetReadDeadline(time.Now().Add(wsPongWait))
		if len(p) == 0 {
			continue
		}
		tctx, cancel := context.WithTimeout(ctx, wsWriteWait)
		err = a.c.TypeInto(tctx, board, actor, p)
		cancel()
		switch {
		case err == nil:
		case errors.Is(err, ErrNotHolder):
			holder := a.c.HolderOf(board)
			if holder == "" {
				refuse(fmt.Sprintf("read-only: nobody holds %s; an operator must hold it (with a duration and a reason) to type", board))
			} else {
				refuse(fmt.Sprintf("read-only: %s is held by %s; only the holder's keystrokes reach the board", board, holder))
			}
		default:
			a.log.Warn("terminal input", "board", board, "actor", actor, "err", err)
			refuse(fmt.Sprintf("typing into %s failed: %v", board, err))
		}
	}
}

// LiveSnapshot is a message of /api/v1/live: every board and the queued
// and running jobs.
type LiveSnapshot struct {
	Type   string        `json:"type"` // "snapshot"
	Boards []BoardView   `json:"boards"`
	Queue  []JobListItem `json:"queue"`
}

// liveCoalesce is how long the live feed waits after a change for more
// changes before it takes a snapshot: a burst of submissions makes one
// snapshot, not one each. One goroutine per API, alive while anyone
// watches, waits on the controller's change feed (no polling), makes the
// snapshot and sends it only when it differs from the last one.
const liveCoalesce = 100 * time.Millisecond

// liveFeed computes the live snapshot for every watcher of one API.
type liveFeed struct {
	a    *API
	subs map[chan []byte]struct{} // each holds at most the latest snapshot
	last []byte
	stop chan struct{}
	done chan struct{}
}

// liveFeeds holds the feeds that have watchers (guarded by its mutex, which
// also guards every feed's subs and last).
var liveFeeds = struct {
	sync.Mutex
	m map[*API]*liveFeed
}{m: map[*API]*liveFeed{}}

// watchLive subscribes to the API's live snapshots. The channel has the
// latest snapshot (a newer one replaces an unread older one). stop
// unsubscribes; the last one out stops the feed and waits for it.
func (a *API) watchLive() (<-chan []byte, func()) {
	liveFeeds.Lock()
	defer liveFeeds.Unlock()
	f := liveFeeds.m[a]
	if f == nil {
		f = &liveFeed{a: a, subs: map[chan []byte]struct{}{}, stop: make(chan struct{}), done: make(chan struct{})}
		liveFeeds.m[a] = f
		go f.run()
	}
	ch := make(chan []byte, 1)
	f.subs[ch] = struct{}{}
	if f.last != nil {
		ch <- f.last
	}
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			liveFeeds.Lock()
			delete(f.subs, ch)
			lastOut := len(f.subs) == 0
			if lastOut {
				delete(liveFeeds.m, a)
				close(f.stop)
			}
			liveFeeds.Unlock()
			if lastOut {
				<-f.done
			}
		})
	}
}

func (f *liveFeed) run() {
	defer close(f.done)
	for {
		changed := f.a.c.Changed() // before the snapshot: no change is missed
		b, err := f.a.liveSnapshot()
		if err != nil {
			f.a.log.Warn("live snapshot", "err", err)
		}
		liveFeeds.Lock()
		if b != nil && !bytes.Equal(b, f.last) {
			f.last = b
			for ch := range f.subs {
				select {
				case <-ch: // an unread older snapshot: replace it
				default:
				}
				ch <- b
			}
		}
		liveFeeds.Unlock()
		select {
		case <-f.stop:
			return
		case <-changed:
		}
		select {
		case <-f.stop:
			return
		case <-time.After(liveCoalesce):
		}
	}
}

func (a *API) liveSnapshot() ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q, _, err := a.c.ListJobs(ctx, JobQuery{States: []string{store.StateQueued, store.StateRunning}, Kind: KindCandidate, Limit: store.MaxListLimit})
	if err != nil {
		return nil, err
	}
	return json.Marshal(LiveSnapshot{Type: "snapshot", Boards: a.c.Boards(), Queue: q})
}

// live streams LiveSnapshots of the farm: one at once, then one whenever
// the boards or the queue change.
func (a *API) live(w http.ResponseWriter, r *http.Request, _ Principal) error {
	if !websocket.IsWebSocketUpgrade(r) {
		return badRequest("this endpoint is a websocket (send Upgrade: websocket)")
	}
	if !a.checkOrigin(r) {
		return &httpError{status: http.StatusForbidden, msg: "websocket: origin " + r.Header.Get("Origin") + " is not allowed"}
	}
	conn := a.upgrade(w, r)
	if conn == nil {
		return nil
	}
	defer a.release(conn)
	readerDone := make(chan struct{})
	go readPump(conn, readerDone)
	defer func() { conn.Close(); <-readerDone }()
	snaps, stop := a.watchLive()
	defer stop()
	ping := time.NewTicker(wsPingPeriod)
	defer ping.Stop()
	for {
		select {
		case b := <-snaps:
			_ = conn.SetWriteDeadline(time.Now().Add(wsWriteWait))
			if err := conn.WriteMessage(websocket.TextMessage, b); err != nil {
				return nil
			}
		case <-ping.C:
			_ = conn.SetWriteDeadline(time.Now().Add(wsWriteWait))
			if err := conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return nil
			}
		case <-readerDone:
			return nil
		}
	}
}

// trendLimit parses a trends endpoint's ?limit= (0 when absent: the default).
func trendLimit(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || n > 10000 {
		return 0, badRequest("limit must be a number from 1 to 10000")
	}
	return n, nil
}
