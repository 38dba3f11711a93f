package farm

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hilfarm/hilfarm/farm/store"
)

// Websocket timing and limits.
const (
	wsWriteWait  = 10 * time.Second
	wsPongWait   = 60 * time.Second
	wsPingPeriod = wsPongWait * 9 / 10
	wsReadLimit  = 4 << 10 // clients only send control frames (and, later, keystrokes)
)

// Close reasons a client can act on.
const (
	// CloseReasonSlow: a job stream's client fell behind and was dropped
	// (code 1013, try again later); it resumes with ?after=<last seq>.
	// (Console viewers are never dropped for being slow: see streamConsole.)
	CloseReasonSlow = "too slow: fell behind the live stream; reconnect"
	// CloseReasonDone: a job's final state was sent (code 1000).
	CloseReasonDone = "job finished"
	// CloseReasonShutdown: the server is stopping (code 1001).
	CloseReasonShutdown = "server shutting down"
)

// checkOrigin allows requests without an Origin (not a browser), from the
// server's own origin, and from the allow-list.
func (a *API) checkOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, allowed := range a.opts.AllowedOrigins {
		if strings.EqualFold(strings.TrimRight(allowed, "/"), u.Scheme+"://"+u.Host) {
			return true
		}
	}
	return false
}

// upgrade upgrades to a websocket and tracks the connection. It returns nil
// (with the answer written) when the upgrade failed or the server is closing.
func (a *API) upgrade(w http.ResponseWriter, r *http.Request) *websocket.Conn {
	a.mu.Lock()
	closing := a.closing
	a.mu.Unlock()
	if closing {
		writeJSONError(w, http.StatusServiceUnavailable, CloseReasonShutdown, nil)
		return nil
	}
	conn, err := a.up.Upgrade(w, r, nil)
	if err != nil {
		return nil // gorilla answered (403 for a foreign Origin, 400 for a bad handshake)
	}
	// The server's read/write deadlines stay on a hijacked connection: clear
	// them; the handler sets its own.
	_ = conn.NetConn().SetDeadline(time.Time{})
	a.mu.Lock()
	if a.closing {
		a.mu.Unlock()
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, CloseReasonShutdown), time.Now().Add(time.Second))
		conn.Close()
		return nil
	}
	a.conns[conn] = struct{}{}
	if id := principalOf(r).TokenID; id != "" {
		a.tokens[conn] = id
	}
	a.handlers.Add(1)
	a.mu.Unlock()
	return conn
}

// release forgets a connection and closes it.
func (a *API) release(conn *websocket.Conn) {
	a.mu.Lock()
	if _, ok := a.conns[conn]; ok {
		delete(a.conns, conn)
		delete(a.tokens, conn)
		a.handlers.Done()
	}
	a.mu.Unlock()
	conn.Close()
}

// CloseWebsockets sends every websocket a going-away close frame and closes
// it; new upgrades are refused. Register it with http.Server.RegisterOnShutdown.
func (a *API) CloseWebsockets() {
	a.flushJobStreams()
	a.mu.Lock()
	a.closing = true
	conns := make([]*websocket.Conn, 0, len(a.conns))
	for c := range a.conns {
		conns = append(conns, c)
	}
	a.mu.Unlock()
	msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, CloseReasonShutdown)
	for _, c := range conns {
		c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		c.Close() // unblocks the handler's reader and writer
	}
}

// Wait waits until every websocket handler has returned.
func (a *API) Wait() { a.handlers.Wait() }

// readPump is a connection's only reader: it answers pings (gorilla does),
// extends the deadline on pongs, and closes done when the peer goes away.
func readPump(conn *websocket.Conn, done chan<- struct{}) {
	defer close(done)
	conn.SetReadLimit(wsReadLimit)
	_ = conn.SetReadDeadline(time.Now().Add(wsPongWait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(wsPongWait)) })
	for {
		_, r, err := conn.NextReader()
		if err != nil {
			return
		}
		// Read each message through: the read limit counts a message's
		// frames only as they are read (a 5000-byte message sent as 4096 +
		// 904 byte frames would slip past it), and gorilla closes with
		// 1009 when it is exceeded.
		if _, err := io.Copy(io.Discard, r); err != nil {
			return
		}
	}
}

func closeWith(conn *websocket.Conn, code int, reason string) {
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(wsWriteWait))
}

// jobEvents streams a job's events: the stored ones after ?after=SEQ, then
// live ones, each a JSON text message of store.Event. After the final state
// event it closes with 1000; a client that falls behind is closed with 1013
// and resumes with ?after=.
func (a *API) jobEvents(w http.ResponseWriter, r *http.Request, _ Principal) error {
	id := r.PathValue("id")
	var after int64
	if s := r.URL.Query().Get("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return badRequest("after must be a sequence number >= 0")
		}
		after = n
	}
	console := true
	if s := r.URL.Query().Get("console"); s != "" {
		v, err := strconv.ParseBool(s)
		if err != nil {
			return badRequest("console must be true or false")
		}
		console = v
	}
	if !websocket.IsWebSocketUpgrade(r) {
		return badRequest("this endpoint is a websocket (send Upgrade: websocket)")
	}
	if !a.checkOrigin(r) {
		return &httpError{status: http.StatusForbidden, msg: "websocket: origin " + r.Header.Get("Origin") + " is not allowed"}
	}
	replay, live, stop, err := a.c.SubscribeEvents(r.Context(), id, after, console)
	if err != nil {
		return err
	}
	defer stop()
	conn := a.upgrade(w, r)
	if conn == nil {
		return nil
	}
	defer a.release(conn)
	a.jobStreams.Add(1)
	defer a.jobStreams.Done()
	readerDone := make(chan struct{})
	go readPump(conn, readerDone)
	defer func() { conn.Close(); <-readerDone }()

	final := false
	send := func(e store.Event) error {
		if e.Type == "state" && isFinalStateEvent(e) {
			final = true
		}
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		_ = conn.SetWriteDeadline(time.Now().Add(wsWriteWait))
		return conn.WriteMessage(websocket.TextMessage, b)
	}
	for _, e := range replay {
		if err := send(e); err != nil {
			return nil
		}
	}
	ping := time.NewTicker(wsPingPeriod)
	defer ping.Stop()
	for {
		select {
		case e, ok := <-live:
			if !ok {
				if !final {
					// Resumed after the last event of a job that had already
					// finished: nothing more will come, and that is normal.
					if j, err := a.c.db.Job(r.Context(), id); err == nil && store.Final(j.State) {
						final = true
					}
				}
				if final {
					closeWith(conn, websocket.CloseNormalClosure, CloseReasonDone)
				} else {
					closeWith(conn, websocket.CloseTryAgainLater, CloseReasonSlow)
				}
				return nil
			}
			if err := send(e); err != nil {
				return nil
			}
		case <-ping.C:
			_ = conn.SetWriteDeadline(time.Now().Add(wsWriteWait))
			if err := conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return nil
			}
		case <-readerDone:
			return nil
		case <-a.closingCh:
			// Shutdown: send what was already published (the final
			// state of a job the shutdown ended), then close.
			drainJobStream(conn, live, send, final)
			return nil
		}
	}
}

// ConsoleMarker is the JSON text message for a marker in a board console
// stream (console bytes are binary messages).
type ConsoleMarker struct {
	Type   string    `json:"type"` // "marker"
	Kind   string    `json:"kind"` // power-on, power-off, flash-start, flash-end, job-start, job-end, port-lost, port-back
	Offset int64     `json:"offset"`
	At     time.Time `json:"at"`
	Detail string    `json:"detail,omitempty"`
}

// boardConsole streams a board's console: the recorder's replay, then live.
// Bytes go as binary messages (consecutive records coalesced), markers as
// JSON text messages. A viewer that falls behind the recorder's window gets
// a gap marker; one that stops reading is cut (streamConsole).
func (a *API) boardConsole(w http.ResponseWriter, r *http.Request, _ Principal) error {
	name := r.PathValue("name")
	replay, v, stop, conn, pc, err := a.watchBoardWS(w, r, name)
	if err != nil || conn == nil {
		return err
	}
	defer stop()
	defer a.release(conn)
	readerDone := make(chan struct{})
	go readPump(conn, readerDone)
	defer func() { conn.Close(); <-readerDone }()
	a.streamConsole(name, conn, pc, replay, v, readerDone, nil, nil)
	return nil
}

// watchBoardWS checks a board console websocket request, starts watching
// the board and upgrades the connection. A nil conn with a nil error means
// the upgrade failed (and was answered).
func (a *API) watchBoardWS(w http.ResponseWriter, r *http.Request, name string) ([]store.LogRecord, *Viewer, func(), *websocket.Conn, *progressConn, error) {
	if _, err := a.c.Board(name); err != nil {
		return nil, nil, nil, nil, nil, err
	}
	if !websocket.IsWebSocketUpgrade(r) {
		return nil, nil, nil, nil, nil, badRequest("this endpoint is a websocket (send Upgrade: websocket)")
	}
	if !a.checkOrigin(r) {
		return nil, nil, nil, nil, nil, &httpError{status: http.StatusForbidden, msg: "websocket: origin " + r.Header.Get("Origin") + " is not allowed"}
	}
	replay, v, stop, err := a.c.WatchBoard(name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, nil, nil, nil, err
		}
		return nil, nil, nil, nil, nil, &httpError{status: http.StatusConflict, msg: err.Error()}
	}
	conn, pc := a.upgradeConsole(w, r, v.stall())
	if conn == nil {
		stop()
		return nil, nil, nil, nil, nil, nil
	}
	return replay, v, stop, conn, pc, nil
}
