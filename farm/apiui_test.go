package farm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/creack/pty"
	"github.com/gorilla/websocket"
	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/fixtures/sim"
	"github.com/hilfarm/hilfarm/internal/testrig"
	"github.com/hilfarm/hilfarm/ui"
)

// uiEnv is a real controller with sim boards behind the real API (with the
// UI's routes) and the real UI on one HTTP server, as `hilfarm serve` mounts them.
type uiEnv struct {
	tc     *testController
	api    *API
	srv    *httptest.Server
	tokens map[string]string // role -> token
	actors map[string]string // role -> Principal.Actor()
}

// waitJob follows a job's event stream to its final state.
func waitJob(t testing.TB, c *Controller, id string) *JobView {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var after int64
	for {
		replay, live, stop, err := c.Subscribe(ctx, id, after)
		if err != nil {
			t.Fatal(err)
		}
		final := false
		for _, e := range replay {
			after, final = e.Seq, final || (e.Type == "state" && isFinalStateEvent(e))
		}
		for open := true; !final && open; {
			select {
			case e, ok := <-live:
				if open = ok; ok {
					after, final = e.Seq, e.Type == "state" && isFinalStateEvent(e)
				}
			case <-ctx.Done():
				stop()
				t.Fatalf("job %s: no final state: %v", id, ctx.Err())
			}
		}
		stop()
		if final {
			v, err := c.Job(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
}

// withUIRoutes registers the UI's routes unless routes() already did.
func withUIRoutes(a *API) {
	req := httptest.NewRequest("GET", "/api/v1/compare", nil)
	if _, pattern := a.mux.Handler(req); pattern != "GET /api/v1/compare" {
		a.uiRoutes()
	}
}

func startUI(t testing.TB, farmSrc string, mod func(*Config)) *uiEnv {
	t.Helper()
	tc := startController(t, farmSrc, mod)
	env := &uiEnv{tc: tc, tokens: map[string]string{}, actors: map[string]string{}}
	for _, role := range Roles {
		tok, rec, err := CreateToken(context.Background(), tc.db, role+"-token", role, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		env.tokens[role] = tok
		env.actors[role] = Principal{Name: rec.Name, TokenID: rec.ID}.Actor()
	}
	env.api = NewAPI(tc.Controller, APIOptions{Auth: NewAuth(tc.db, tc.cfg.Farm.AnonymousRead, nil), AllowedOrigins: []string{"https://ui.example"}})
	withUIRoutes(env.api)
	mux := http.NewServeMux()
	mux.Handle("/api/", env.api.Handler())
	mux.Handle("/healthz", env.api.Handler())
	mux.Handle("/", ui.Handler())
	env.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		env.api.CloseWebsockets()
		env.srv.Close()
		env.api.Wait()
	})
	return env
}

// call makes an API request with a bearer token and decodes a JSON answer into out.
func (e *uiEnv) call(t testing.TB, method, path, token string, in, out any) int {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	if resp.StatusCode >= 300 {
		t.Logf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	return resp.StatusCode
}

// submitHTTP submits a job through POST /api/v1/jobs as hilfarm submit does.
func (e *uiEnv) submitHTTP(t testing.TB, token, spec string, fw []byte, opts SubmitOptions) *JobView {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	ow, _ := mw.CreateFormField("options")
	json.NewEncoder(ow).Encode(opts)
	sw, _ := mw.CreateFormFile("spec", "spec.hcl")
	io.WriteString(sw, spec)
	fwr, _ := mw.CreateFormFile("firmware", "fw.hcl")
	fwr.Write(fw)
	mw.Close()
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/jobs", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("submit: %d %s", resp.StatusCode, b)
	}
	var j JobView
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	return &j
}

func (e *uiEnv) wsURL(path string) string {
	return "ws" + strings.TrimPrefix(e.srv.URL, "http") + path
}

// dialOpts tune a test websocket.
type dialOpts struct {
	token  string
	origin string
	// rcvBuf, when > 0, pins the client socket's kernel receive buffer so a
	// client that stops reading backs up onto the server quickly.
	rcvBuf int
}

func (e *uiEnv) dial(t testing.TB, path string, o dialOpts) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	h := http.Header{}
	if o.token != "" {
		h.Set("Authorization", "Bearer "+o.token)
	}
	if o.origin != "" {
		h.Set("Origin", o.origin)
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	if o.rcvBuf > 0 {
		d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				err = c.(*net.TCPConn).SetReadBuffer(o.rcvBuf)
			}
			return c, err
		}
	}
	c, resp, err := d.Dial(e.wsURL(path), h)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, resp, err
}

// termReader collects a terminal websocket's messages in order.
type termReader struct {
	conn    *websocket.Conn
	data    []byte
	markers []ConsoleMarker
	msgs    []TerminalMessage
}

// readUntil reads until the console bytes contain want; it fails on a
// read error (the server closed the connection, or the 60 s deadline).
func (r *termReader) readUntil(t testing.TB, want string) {
	t.Helper()
	r.readUntilFrom(t, 0, want)
}

// readUntilFrom reads until the console bytes from offset from on contain want.
func (r *termReader) readUntilFrom(t testing.TB, from int, want string) {
	t.Helper()
	_ = r.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	for !bytes.Contains(r.data[min(from, len(r.data)):], []byte(want)) {
		if err := r.next(); err != nil {
			t.Fatalf("waiting for %q: %v; have %d bytes ending %q; messages %+v", want, err, len(r.data), tail(r.data, 200), r.msgs)
		}
	}
}

func (r *termReader) next() error {
	typ, p, err := r.conn.ReadMessage()
	if err != nil {
		return err
	}
	if typ == websocket.BinaryMessage {
		r.data = append(r.data, p...)
		return nil
	}
	var head struct{ Type string }
	if err := json.Unmarshal(p, &head); err != nil {
		return fmt.Errorf("text message %q: %w", p, err)
	}
	switch head.Type {
	case "marker":
		var m ConsoleMarker
		err = json.Unmarshal(p, &m)
		r.markers = append(r.markers, m)
	default:
		var m TerminalMessage
		err = json.Unmarshal(p, &m)
		r.msgs = append(r.msgs, m)
	}
	return err
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func readExample(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "examples", rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// flashAndHold runs a passing job on board (so the sim has firmware), then
// holds it as the operator and powers it on; it returns once the terminal
// reader saw the prompt.
func (e *uiEnv) flashAndHold(t testing.TB, board, rack string) {
	t.Helper()
	j := e.submitHTTP(t, e.tokens[RoleSubmitter], bootSpec, []byte(goodModel), SubmitOptions{Tags: map[string]string{"rack": rack}})
	if v := waitJob(t, e.tc.Controller, j.ID); v.State != store.StatePassed || v.Board != board {
		t.Fatalf("flash job: %s on %s (%s)", v.State, v.Board, v.Reason)
	}
	if st := e.call(t, "POST", "/api/v1/boards/"+board+"/hold", e.tokens[RoleOperator], map[string]string{"duration": "10m", "reason": "ui test"}, nil); st != http.StatusOK {
		t.Fatalf("hold: %d", st)
	}
}

func TestUIHoldAndPowerEndpoints(t *testing.T) {
	leakCheck(t)
	e := startUI(t, testFarm, nil)
	op, adm, viewer := e.tokens[RoleOperator], e.tokens[RoleAdmin], e.tokens[RoleViewer]
	hold := map[string]string{"duration": "10m", "reason": "bring-up"}
	for _, c := range []struct {
		name, method, path, token string
		body                      any
		want                      int
	}{
		{"viewer may not hold", "POST", "/api/v1/boards/sim-a/hold", viewer, hold, 403},
		{"no token", "POST", "/api/v1/boards/sim-a/hold", "", hold, 401},
		{"unknown board", "POST", "/api/v1/boards/nope/hold", op, hold, 404},
		{"no reason", "POST", "/api/v1/boards/sim-a/hold", op, map[string]string{"duration": "10m"}, 400},
		{"bad duration", "POST", "/api/v1/boards/sim-a/hold", op, map[string]string{"duration": "forever", "reason": "x"}, 400},
		{"too long", "POST", "/api/v1/boards/sim-a/hold", op, map[string]string{"duration": "25h", "reason": "x"}, 400},
		{"unknown field", "POST", "/api/v1/boards/sim-a/hold", op, map[string]any{"duration": "1m", "reason": "x", "force": true}, 400},
		{"power without a hold", "POST", "/api/v1/boards/sim-a/power", op, map[string]string{"action": "on"}, 403},
		{"release without a hold", "DELETE", "/api/v1/boards/sim-a/hold", op, nil, 409},
		{"hold", "POST", "/api/v1/boards/sim-a/hold", op, hold, 200},
		{"second holder", "POST", "/api/v1/boards/sim-a/hold", adm, hold, 409},
		{"bad power action", "POST", "/api/v1/boards/sim-a/power", op, map[string]string{"action": "explode"}, 400},
		{"power by another operator", "POST", "/api/v1/boards/sim-a/power", adm, map[string]string{"action": "on"}, 403},
		{"holder powers on", "POST", "/api/v1/boards/sim-a/power", op, map[string]string{"action": "cycle"}, 200},
		{"viewer may not release", "DELETE", "/api/v1/boards/sim-a/hold", viewer, nil, 403},
		{"admin ends anyone's hold", "DELETE", "/api/v1/boards/sim-a/hold", adm, nil, 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := e.call(t, c.method, c.path, c.token, c.body, nil); got != c.want {
				t.Errorf("%s %s = %d, want %d", c.method, c.path, got, c.want)
			}
		})
	}
	var b BoardView
	if e.call(t, "POST", "/api/v1/boards/sim-b/hold", op, hold, &b); b.Holder != e.actors[RoleOperator] || b.State != BoardLeased || b.HeldUntil.IsZero() {
		t.Errorf("held board = %+v, want held by %s", b, e.actors[RoleOperator])
	}
	// The session cookie needs the CSRF header for a state change.
	login := func(mod func(*http.Request)) int {
		req, _ := http.NewRequest("DELETE", e.srv.URL+"/api/v1/boards/sim-b/hold", nil)
		req.AddCookie(&http.Cookie{Name: SessionCookie, Value: op})
		mod(req)
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := login(func(*http.Request) {}); st != http.StatusForbidden {
		t.Errorf("cookie without CSRF header: %d, want 403", st)
	}
	if st := login(func(r *http.Request) { r.Header.Set(CSRFHeader, "1") }); st != http.StatusOK {
		t.Errorf("cookie with CSRF header: %d, want 200", st)
	}
	if b, _ := e.tc.Board("sim-b"); b.Holder != "" {
		t.Errorf("sim-b still held by %s", b.Holder)
	}
	// The board's history has who held, switched and released it, newest first.
	var hist []store.AuditRecord
	if st := e.call(t, "GET", "/api/v1/boards/sim-a/history", viewer, nil, &hist); st != 200 {
		t.Fatalf("history: %d", st)
	}
	var actions []string
	for _, h := range hist {
		actions = append(actions, h.Action+" by "+strings.Fields(h.Actor)[0])
	}
	if want := "release by admin-token,power-cycle by operator-token,hold by operator-token"; strings.Join(actions, ",") != want {
		t.Errorf("sim-a history = %v, want %s", actions, want)
	}
	if st := e.call(t, "GET", "/api/v1/boards/nope/history", viewer, nil, nil); st != 404 {
		t.Errorf("history of an unknown board: %d", st)
	}
}

func TestUICompareAndTrends(t *testing.T) {
	leakCheck(t)
	e := startUI(t, testFarm, nil)
	spec := string(readExample(t, "specs/measure.hcl"))
	good, bad := readExample(t, "firmware/sim-good.hcl"), readExample(t, "firmware/sim-regressed.hcl")
	sub := e.tokens[RoleSubmitter]
	var ids []string
	for _, fw := range [][]byte{good, bad, good} {
		ids = append(ids, e.submitHTTP(t, sub, spec, fw, SubmitOptions{}).ID)
	}
	want := []string{store.StatePassed, store.StateFailed, store.StatePassed}
	for i, id := range ids {
		if v := waitJob(t, e.tc.Controller, id); v.State != want[i] {
			t.Fatalf("job %d: %s (%s), want %s", i, v.State, v.Reason, want[i])
		}
	}
	var cmp Comparison
	if st := e.call(t, "GET", "/api/v1/compare?spec=measure&base="+sha(good)+"&candidate="+sha(bad), e.tokens[RoleViewer], nil, &cmp); st != 200 {
		t.Fatalf("compare: %d", st)
	}
	verdicts := map[string]string{}
	for _, tc := range cmp.Tests {
		verdicts[tc.Name] = tc.Verdict
	}
	if verdicts["temperature in range"] != CompareNewFailure || verdicts["uptime is sane"] != CompareSame {
		t.Errorf("compare verdicts = %v", verdicts)
	}
	if cmp.Baseline.Jobs != 2 || cmp.Candidate.Jobs != 1 {
		t.Errorf("compare jobs: baseline %d, candidate %d", cmp.Baseline.Jobs, cmp.Candidate.Jobs)
	}
	var temp *MeasureComparison
	for i := range cmp.Measurements {
		if cmp.Measurements[i].Name == "temp_c" {
			temp = &cmp.Measurements[i]
		}
	}
	if temp == nil || temp.Delta == nil || *temp.Delta != 87.0-23.5 || temp.CandidateVerdicts["fail"] != 1 {
		t.Errorf("temp_c comparison = %+v", temp)
	}

	var names []string
	if e.call(t, "GET", "/api/v1/specs/measure/measurements", e.tokens[RoleViewer], nil, &names); strings.Join(names, ",") != "temp_c,uptime_ms" {
		t.Errorf("measurements = %v", names)
	}
	var pts []TrendPoint
	if e.call(t, "GET", "/api/v1/trends?spec=measure&measure=temp_c", e.tokens[RoleViewer], nil, &pts); len(pts) != 3 {
		t.Fatalf("trend points = %+v", pts)
	}
	for i, wantV := range []float64{23.5, 87.0, 23.5} {
		if pts[i].Value != wantV || pts[i].Job != ids[i] {
			t.Errorf("trend point %d = %v of %s, want %v of %s", i, pts[i].Value, pts[i].Job, wantV, ids[i])
		}
	}
	for _, c := range []struct{ path string }{
		{"/api/v1/compare?spec=measure"},
		{"/api/v1/trends?spec=measure"},
		{"/api/v1/trends?spec=measure&measure=temp_c&limit=0"},
	} {
		if st := e.call(t, "GET", c.path, e.tokens[RoleViewer], nil, nil); st != http.StatusBadRequest {
			t.Errorf("GET %s = %d, want 400", c.path, st)
		}
	}
	if st := e.call(t, "GET", "/api/v1/compare?spec=nope&base=a&candidate=b", e.tokens[RoleViewer], nil, nil); st != http.StatusNotFound {
		t.Errorf("compare of an unknown spec = %d, want 404", st)
	}
	if st := e.call(t, "GET", "/api/v1/trends?spec=measure&measure=temp_c", "", nil, nil); st != http.StatusUnauthorized {
		t.Errorf("trends without a token = %d, want 401", st)
	}
}

func TestTerminalWebsocket(t *testing.T) {
	leakCheck(t)
	e := startUI(t, testFarm, nil)
	const path = "/api/v1/boards/sim-a/terminal"

	// Auth and Origin come before the upgrade.
	for _, c := range []struct {
		name string
		o    dialOpts
		want int
	}{
		{"no token", dialOpts{}, http.StatusUnauthorized},
		{"bad token", dialOpts{token: "hf_nope"}, http.StatusUnauthorized},
		{"foreign origin", dialOpts{token: e.tokens[RoleViewer], origin: "https://evil.example"}, http.StatusForbidden},
	} {
		_, resp, err := e.dial(t, path, c.o)
		if err == nil || resp == nil || resp.StatusCode != c.want {
			st := 0
			if resp != nil {
				st = resp.StatusCode
			}
			t.Errorf("%s: dial = %v, status %d, want %d", c.name, err, st, c.want)
		}
	}
	if _, resp, err := e.dial(t, "/api/v1/boards/nope/terminal", dialOpts{token: e.tokens[RoleViewer]}); err == nil || resp.StatusCode != 404 {
		t.Errorf("unknown board: %v", err)
	}

	e.flashAndHold(t, "sim-a", "r1")
	// The holder and a viewer from the allowed foreign origin watch.
	hc, _, err := e.dial(t, path, dialOpts{token: e.tokens[RoleOperator]})
	if err != nil {
		t.Fatal(err)
	}
	vc, _, err := e.dial(t, path, dialOpts{token: e.tokens[RoleViewer], origin: "https://ui.example"})
	if err != nil {
		t.Fatal(err)
	}
	holder, viewer := &termReader{conn: hc}, &termReader{conn: vc}
	for _, r := range []*termReader{holder, viewer} {
		if err := r.next(); err != nil || len(r.msgs) != 1 || r.msgs[0].Type != "hello" || r.msgs[0].Holder != e.actors[RoleOperator] {
			t.Fatalf("first message: %v %+v", err, r.msgs)
		}
	}
	if holder.msgs[0].You != e.actors[RoleOperator] || viewer.msgs[0].You != e.actors[RoleViewer] {
		t.Errorf("hello: holder %+v, viewer %+v", holder.msgs[0], viewer.msgs[0])
	}
	// The replay has the flash job's console; the board boots again after it.
	holder.readUntil(t, "sim> ")
	viewer.readUntil(t, "sim> ")
	fromH, fromV := len(holder.data), len(viewer.data)
	if st := e.call(t, "POST", "/api/v1/boards/sim-a/power", e.tokens[RoleOperator], map[string]string{"action": "cycle"}, nil); st != 200 {
		t.Fatalf("power cycle: %d", st)
	}
	const booted = "Booting hilfarm-sim v1.1.0\r\nsim> "
	holder.readUntilFrom(t, fromH, booted)
	viewer.readUntilFrom(t, fromV, booted)

	// The viewer's keystrokes are refused with a message; the holder's reach the board.
	if err := vc.WriteMessage(websocket.TextMessage, []byte("reboot\r")); err != nil {
		t.Fatal(err)
	}
	for len(viewer.msgs) < 2 {
		if err := viewer.next(); err != nil {
			t.Fatal(err)
		}
	}
	if m := viewer.msgs[1]; m.Type != "error" || !strings.Contains(m.Error, "held by "+e.actors[RoleOperator]) {
		t.Errorf("viewer typing: %+v", m)
	}
	if err := hc.WriteMessage(websocket.BinaryMessage, []byte("echo typed-by-the-holder\r")); err != nil {
		t.Fatal(err)
	}

	holder.readUntil(t, "typed-by-the-holder\r\nsim> ")
	viewer.readUntil(t, "typed-by-the-holder\r\nsim> ")
	if bytes.Contains(viewer.data, []byte("reboot")) {
		t.Error("the viewer's keystrokes reached the board")
	}
	// Markers arrive as typed messages, in log order.
	kinds := map[string]bool{}
	for _, m := range viewer.markers {
		kinds[m.Kind] = true
	}
	if !kinds[MarkPowerOn] {
		t.Errorf("viewer markers %+v: no power-on", viewer.markers)
	}

	// A late joiner gets the replay: what was printed before it came.
	lc, _, err := e.dial(t, path, dialOpts{token: e.tokens[RoleViewer]})
	if err != nil {
		t.Fatal(err)
	}
	late := &termReader{conn: lc}
	late.readUntil(t, "typed-by-the-holder\r\nsim> ")
	if !bytes.Equal(viewer.data, late.data) {
		t.Errorf("replay differs from what the live viewer saw:\nreplay %q\nlive   %q", tail(late.data, 300), tail(viewer.data, 300))
	}

	// A flood: the live viewers get every byte in order (a viewer that
	// reads is never dropped; 256 KiB are far inside the viewer window).
	const n = 256 << 10
	startH, startV := len(holder.data), len(viewer.data)
	if err := hc.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, "flood %d\r", n)); err != nil {
		t.Fatal(err)
	}
	done := fmt.Sprintf("flood done %d", n)
	holder.readUntil(t, done)
	viewer.readUntil(t, done)
	pattern := sim.FloodBytes(n)
	for name, got := range map[string][]byte{"holder": holder.data[startH:], "viewer": viewer.data[startV:]} {
		i := bytes.Index(got, pattern[:64])
		if i < 0 || len(got) < i+n || !bytes.Equal(got[i:i+n], pattern) {
			t.Errorf("%s: the flood did not arrive whole and in order (%d bytes after the command)", name, len(got))
		}
	}

	// Over-long input frames close the connection (read limit).
	if err := vc.WriteMessage(websocket.BinaryMessage, bytes.Repeat([]byte("x"), wsReadLimit+1)); err != nil {
		t.Fatal(err)
	}
	_ = vc.SetReadDeadline(time.Now().Add(60 * time.Second))
	var err2 error
	for err2 == nil {
		err2 = viewer.next()
	}
	var ce *websocket.CloseError
	if !errors.As(err2, &ce) || ce.Code != websocket.CloseMessageTooBig {
		t.Errorf("over-long frame: %v, want close 1009", err2)
	}
}

// boardStats returns one board's counters.
func (tc *testController) boardStats(name string) BoardStats {
	for _, b := range tc.Stats(context.Background()).Boards {
		if b.Name == name {
			return b
		}
	}
	return BoardStats{}
}

func TestLiveWebsocket(t *testing.T) {
	leakCheck(t)
	e := startUI(t, testFarm, nil)
	if _, resp, err := e.dial(t, "/api/v1/live", dialOpts{}); err == nil || resp.StatusCode != 401 {
		t.Errorf("live without a token: %v", err)
	}
	if _, resp, err := e.dial(t, "/api/v1/live", dialOpts{token: e.tokens[RoleViewer], origin: "http://evil.example"}); err == nil || resp.StatusCode != 403 {
		t.Errorf("live from a foreign origin: %v", err)
	}
	c, _, err := e.dial(t, "/api/v1/live", dialOpts{token: e.tokens[RoleViewer]})
	if err != nil {
		t.Fatal(err)
	}
	read := func(c *websocket.Conn) LiveSnapshot {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
		var s LiveSnapshot
		if err := c.ReadJSON(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := read(c)
	if s.Type != "snapshot" || len(s.Boards) != 2 || s.Boards[0].Name != "sim-a" || len(s.Queue) != 0 {
		t.Fatalf("first snapshot = %+v", s)
	}
	// A second watcher shares the feed and gets the current snapshot at once.
	c2, _, err := e.dial(t, "/api/v1/live", dialOpts{token: e.tokens[RoleViewer]})
	if err != nil {
		t.Fatal(err)
	}
	if s2 := read(c2); len(s2.Boards) != 2 {
		t.Fatalf("second watcher's first snapshot = %+v", s2)
	}
	if st := e.call(t, "POST", "/api/v1/boards/sim-b/maintenance", e.tokens[RoleOperator], map[string]any{"on": true, "reason": "rewiring"}, nil); st != 200 {
		t.Fatal(st)
	}
	for _, c := range []*websocket.Conn{c, c2} {
		for s = read(c); s.Boards[1].State != BoardMaintenance; s = read(c) {
		}
		if !strings.Contains(s.Boards[1].Reason, "rewiring") {
			t.Errorf("sim-b = %+v", s.Boards[1])
		}
	}
	// A queued job shows up in the queue.
	if _, err := e.tc.Hold(context.Background(), "sim-a", "x", time.Minute, "keep the job queued"); err != nil {
		t.Fatal(err)
	}
	j := e.submitHTTP(t, e.tokens[RoleSubmitter], bootSpec, []byte(goodModel), SubmitOptions{})
	for s = read(c); len(s.Queue) == 0; s = read(c) {
	}
	if s.Queue[0].ID != j.ID || s.Queue[0].Position != 1 {
		t.Errorf("queue = %+v", s.Queue)
	}
	if err := e.tc.Release(context.Background(), "sim-a", "x", false); err != nil {
		t.Fatal(err)
	}
	waitJob(t, e.tc.Controller, j.ID)
}

// browser is a headless Debian Chromium driven over the DevTools pipe.
type browser struct {
	ctx      context.Context
	t        *testing.T
	shots    string
	mu       sync.Mutex
	messages []chromedp.ConsoleMessage
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	exe := testrig.NeedTool(t, "chromium", "chromium")
	shots := os.Getenv("HILFARM_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1280, 900),
		chromedp.Env("TMPDIR="+t.TempDir()),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &browser{ctx: ctx, t: t, shots: shots}
	// The first Run starts the browser; its context must not time out.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		cancel()
		acancel()
		t.Fatalf("starting %s: %v", exe, err)
	}
	msgs := chromedp.Console(ctx)
	consoleDone := make(chan struct{})
	go func() {
		defer close(consoleDone)
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.messages = append(b.messages, m)
			b.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		acancel()
		<-consoleDone
	})
	t.Logf("screenshots in %s", shots)
	return b
}

// do runs steps with a bound.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

// waitFor polls a JavaScript predicate until it holds.
func (b *browser) waitFor(what, js string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(45*time.Second))); err != nil {
		b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("main").innerText.slice(0, 2000)`))
		b.t.Fatalf("browser: waiting until %s (%s): %v\npage text:\n%s", what, js, err, text)
	}
}

func (b *browser) eval(js string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.t.Fatalf("browser: %s: %v", js, err)
	}
	return s
}

// shot saves a screenshot of the whole page as NAME.png.
func (b *browser) shot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Error(err)
	}
}

// problems returns the page's exceptions, errors it logged, and Content
// Security Policy violations.
func (b *browser) problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.messages {
		if m.Type == chromedp.ConsoleException || (m.Type == chromedp.ConsoleError && !strings.Contains(m.Text, "Failed to load resource")) ||
			strings.Contains(m.Text, "Content Security Policy") {
			out = append(out, fmt.Sprintf("%s: %s (%s:%d)", m.Type, m.Text, m.URL, m.Line))
		}
	}
	return out
}

// rawKeyDown makes chromedp.KeyEvent's keyDown a rawKeyDown: its keyDown
// carries the text and is followed by a char event, so a page that reads
// keypress (xterm.js does) would get every character twice.
func rawKeyDown(p *input.DispatchKeyEventParams) {
	if p.Type == input.DispatchKeyEventTypeKeyDown {
		p.Type = input.DispatchKeyEventTypeRawKeyDown
	}
}

// xtermHas is a predicate: the xterm view of the page shows text. It
// scrolls the console into view first, as a user looks at it: xterm.js does
// not render while it is off-screen.
func xtermHas(text string) string {
	return fmt.Sprintf(`(document.querySelector("#console")?.scrollIntoView({block: "nearest"}),
		(document.querySelector("#console .xterm-rows")?.textContent || "").includes(%s))`, strconv.Quote(text))
}

func textOf(sel, text string) string {
	return fmt.Sprintf(`(document.querySelector(%s)?.textContent || "").includes(%s)`, strconv.Quote(sel), strconv.Quote(text))
}

// TestUIInBrowser drives the real UI in Debian's Chromium against a real
// controller with sim boards: log in, watch the farm, follow a job live to
// its verdict, compare a good and a regressed candidate, see a trend, type
// into a held board's console, and log out.
func TestUIInBrowser(t *testing.T) {
	leakCheck(t)
	e := startUI(t, testFarm, nil)
	spec := string(readExample(t, "specs/measure.hcl"))
	good, bad := readExample(t, "firmware/sim-good.hcl"), readExample(t, "firmware/sim-regressed.hcl")
	op, sub := e.tokens[RoleOperator], e.tokens[RoleSubmitter]
	// History for the compare and trends pages.
	for _, c := range []struct {
		fw    []byte
		state string
	}{{good, store.StatePassed}, {bad, store.StateFailed}} {
		j := e.submitHTTP(t, sub, spec, c.fw, SubmitOptions{FirmwareVersion: ""})
		if v := waitJob(t, e.tc.Controller, j.ID); v.State != c.state {
			t.Fatalf("seed job: %s (%s), want %s", v.State, v.Reason, c.state)
		}
	}
	b := newBrowser(t)

	// Log in with a token; the farm page lists every board.
	b.do("open the login page", chromedp.Navigate(e.srv.URL+"/login"))
	b.waitFor("the login form shows", `!!document.querySelector("#login-form")`)
	b.do("log in",
		chromedp.SetValue(chromedp.CSS("#token"), op),
		chromedp.Click(chromedp.CSS("#login-submit")))
	b.waitFor("the farm page lists both boards", `document.querySelectorAll("#boards tr").length === 2`)
	b.waitFor("the header names the user", textOf("#who", "operator-token · operator"))
	if got := b.eval(`document.querySelector("#boards tr[data-board='sim-a']").innerText`); !strings.Contains(got, "idle") || !strings.Contains(got, "rack=r1") {
		t.Errorf("sim-a row = %q", got)
	}
	b.shot("01-farm")

	// Both boards held: the farm page shows it live; a job waits in the queue.
	for _, name := range []string{"sim-a", "sim-b"} {
		if st := e.call(t, "POST", "/api/v1/boards/"+name+"/hold", op, map[string]string{"duration": "10m", "reason": "browser test"}, nil); st != 200 {
			t.Fatal(st)
		}
	}
	b.waitFor("the farm page shows the holds", `[...document.querySelectorAll("#boards tr")].filter(r => r.innerText.includes("held by operator-token")).length === 2`)
	job := e.submitHTTP(t, sub, spec, good, SubmitOptions{Priority: 5})
	b.do("open the queue", chromedp.Click(chromedp.CSS(`#nav a[href="/queue"]`)))
	b.waitFor("the queue shows the job first", fmt.Sprintf(`(document.querySelector("#queue tr[data-job='%s']")?.innerText || "").startsWith("1")`, job.ID))
	b.shot("02-queue")

	// The job page connects while the job is queued, then shows it run live.
	b.do("open the job", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#queue tr[data-job='%s'] a`, job.ID))))
	b.waitFor("the job page is live", textOf("#console .term-status", "live"))
	b.waitFor("the job is queued", textOf("#job-state", "queued"))
	for _, name := range []string{"sim-a", "sim-b"} {
		if st := e.call(t, "DELETE", "/api/v1/boards/"+name+"/hold", op, nil, nil); st != 200 {
			t.Fatal(st)
		}
	}
	b.waitFor("the console shows the boot", xtermHas("Booting hilfarm-sim v1.1.0"))
	b.waitFor("the console shows the sensor reading", xtermHas("temp=23.5C"))
	b.waitFor("the job passes", textOf("#job-state", "passed"))
	b.waitFor("the measurements are listed", `document.querySelectorAll("#measurements tr").length === 2`)
	if got := b.eval(`document.querySelector("#measurements").innerText`); !strings.Contains(got, "temp_c") || !strings.Contains(got, "max 45") || !strings.Contains(got, "pass") {
		t.Errorf("measurements = %q", got)
	}
	if got := b.eval(`document.querySelector("#tests").innerText`); !strings.Contains(got, "temperature in range") || strings.Contains(got, "running") {
		t.Errorf("tests = %q", got)
	}
	b.waitFor("the attempt is listed", textOf("#attempts", "passed"))
	b.shot("03-job")

	// Compare the regressed candidate with the good one.
	b.do("open the comparison", chromedp.Navigate(e.srv.URL+"/compare?spec=measure&base="+sha(good)+"&candidate="+sha(bad)))
	b.waitFor("the regression is shown", textOf("#compare-verdict", "Regression: 1 new failure"))
	if got := b.eval(`document.querySelector("#compare-tests").innerText`); !strings.Contains(got, "temperature in range") || !strings.Contains(got, "new-failure") {
		t.Errorf("compare tests = %q", got)
	}
	if got := b.eval(`document.querySelector("#compare-measurements").innerText`); !strings.Contains(got, "+63.5") {
		t.Errorf("compare measurements = %q (want the temp_c delta +63.5)", got)
	}
	b.shot("04-compare")

	// The trend of temp_c across the candidates.
	b.do("open the trend", chromedp.Navigate(e.srv.URL+"/trends?spec=measure&measure=temp_c"))
	b.waitFor("the chart is drawn", `!!document.querySelector("#chart canvas") && document.querySelectorAll("#trend-points tr").length === 3`)
	b.shot("05-trends")

	// Hold a board, power it on and type into its console from the page.
	if st := e.call(t, "POST", "/api/v1/boards/sim-a/hold", op, map[string]string{"duration": "10m", "reason": "type from the browser"}, nil); st != 200 {
		t.Fatal(st)
	}
	wc, _, err := e.dial(t, "/api/v1/boards/sim-a/terminal", dialOpts{token: e.tokens[RoleViewer]})
	if err != nil {
		t.Fatal(err)
	}
	watch := &termReader{conn: wc}
	watch.readUntil(t, "sim> ")
	from := len(watch.data)
	if st := e.call(t, "POST", "/api/v1/boards/sim-a/power", op, map[string]string{"action": "cycle"}, nil); st != 200 {
		t.Fatal(st)
	}
	watch.readUntilFrom(t, from, "Booting hilfarm-sim v1.1.0\r\nsim> ")
	b.do("open the board", chromedp.Navigate(e.srv.URL+"/boards/sim-a"))
	b.waitFor("the page says we hold the board", textOf("#term-mode", "You hold this board"))
	b.waitFor("the console shows the power-on marker", xtermHas("power-on"))
	b.do("type into the console",
		chromedp.Focus(chromedp.CSS("#console .xterm-helper-textarea")),
		chromedp.KeyEvent("echo typed-in-chromium\r", rawKeyDown))
	watch.readUntilFrom(t, from, "typed-in-chromium\r\nsim> ")
	b.waitFor("the answer shows in the console", xtermHas("typed-in-chromium"))
	b.waitFor("the power buttons show", `document.querySelectorAll("#board-controls button.power").length === 3`)
	b.waitFor("the history shows the hold and the power cycle", textOf("#board-history", "type from the browser")+" && "+textOf("#board-history", "power-cycle"))
	b.shot("06-board")

	// A phone-sized screen: nothing is wider than the screen but the tables' scroll boxes.
	b.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)), chromedp.Navigate(e.srv.URL+"/"))
	b.waitFor("the farm page on a phone", `document.querySelectorAll("#boards tr").length === 2`)
	if w := b.eval(`String(document.documentElement.scrollWidth)`); w != "390" {
		t.Errorf("page width on a 390 px screen = %s px", w)
	}
	b.shot("07-farm-phone")
	b.do("phone job page", chromedp.Navigate(e.srv.URL+"/jobs/"+job.ID))
	b.waitFor("the job page on a phone", xtermHas("temp=23.5C"))
	if w := b.eval(`String(document.documentElement.scrollWidth)`); w != "390" {
		t.Errorf("job page width on a 390 px screen = %s px", w)
	}
	b.shot("08-job-phone")
	b.do("desktop viewport", chromedp.ResetViewport())

	// Log out: the cookie is gone and pages send you to the login.
	b.do("log out", chromedp.Click(chromedp.CSS("#logout")))
	b.waitFor("the login page shows", `location.pathname === "/login" && !!document.querySelector("#login-form")`)
	b.do("open the farm again", chromedp.Navigate(e.srv.URL+"/"))
	b.waitFor("the farm page sends us to the login", `location.pathname === "/login"`)

	if p := b.problems(); len(p) > 0 {
		t.Errorf("the page reported problems:\n%s", strings.Join(p, "\n"))
	}
}

// ---------------------------------------------------------------- benchmarks

// Environment of the fan-out viewer process (TestFanoutViewerProcess).
const (
	envFanoutURL   = "HILFARM_FANOUT_URL"
	envFanoutToken = "HILFARM_FANOUT_TOKEN"
	envFanoutN     = "HILFARM_FANOUT_VIEWERS"
	envFanoutBytes = "HILFARM_FANOUT_BYTES"
	envFanoutMark  = "HILFARM_FANOUT_MARK"
	envFanoutStall = "HILFARM_FANOUT_STALL"
)

// fanoutResult is what the viewer process reports.
type fanoutResult struct {
	Done         []int64  `json:"done_ns"` // per viewer: when its last flood byte arrived
	Errors       []string `json:"errors,omitempty"`
	StalledCode  int      `json:"stalled_code,omitempty"`
	StalledBytes int      `json:"stalled_bytes,omitempty"`
}

// TestFanoutViewerProcess is the viewer side of BenchmarkConsoleFanout, run
// in a process of its own so that the benchmark's CPU figures are the
// server's alone. Without its environment it does nothing.
func TestFanoutViewerProcess(t *testing.T) {
	url := os.Getenv(envFanoutURL)
	if url == "" {
		return
	}
	n, _ := strconv.Atoi(os.Getenv(envFanoutN))
	size, _ := strconv.Atoi(os.Getenv(envFanoutBytes))
	mark := []byte(os.Getenv(envFanoutMark) + "\r\nsim> ")
	h := http.Header{"Authorization": {"Bearer " + os.Getenv(envFanoutToken)}}
	dial := func() *websocket.Conn {
		c, _, err := (&websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 64 << 10}).Dial(url, h)
		if err != nil {
			fmt.Printf("ERROR %v\n", err)
			os.Exit(1)
		}
		return c
	}
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = dial()
	}
	var stalled *websocket.Conn
	if os.Getenv(envFanoutStall) != "" {
		stalled = dial()
	}
	res := fanoutResult{Done: make([]int64, n)}
	var mu sync.Mutex
	var wg sync.WaitGroup
	// The flood repeats a 64-byte pattern: compare whole messages with a
	// long copy of it (memcmp), so the viewers cost little CPU.
	pattern := sim.FloodBytes(64 + 256<<10)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			fail := func(err error) {
				mu.Lock()
				res.Errors = append(res.Errors, fmt.Sprintf("viewer %d: %v", i, err))
				mu.Unlock()
			}
			var window []byte // bytes before the mark
			got := -1         // flood bytes checked; -1: mark not seen yet
			buf := make([]byte, 256<<10)
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Minute))
			for got < size {
				typ, r, err := c.NextReader()
				if err != nil {
					fail(fmt.Errorf("after %d flood bytes: %w", got, err))
					return
				}
				if typ != websocket.BinaryMessage {
					continue
				}
				for {
					k, err := io.ReadFull(r, buf)
					p := buf[:k]
					if got < 0 {
						window = append(window, p...)
						m := bytes.Index(window, mark)
						if m < 0 {
							window = window[max(0, len(window)-len(mark)):]
						} else {
							p, got = window[m+len(mark):], 0
						}
					}
					if got >= 0 {
						p = p[:min(len(p), size-got)]
						off := got % 64
						if !bytes.Equal(p, pattern[off:off+len(p)]) {
							fail(fmt.Errorf("flood bytes %d..%d are not the pattern", got, got+len(p)))
							return
						}
						got += len(p)
					}
					if err == io.EOF || err == io.ErrUnexpectedEOF {
						break
					}
					if err != nil {
						fail(err)
						return
					}
				}
			}
			res.Done[i] = time.Now().UnixNano()
		}()
	}
	fmt.Println("READY")
	wg.Wait()
	if stalled != nil {
		// Only now does the stalled viewer read: its backlog, then the close.
		_ = stalled.SetReadDeadline(time.Now().Add(time.Minute))
		for {
			_, p, err := stalled.ReadMessage()
			res.StalledBytes += len(p)
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					res.StalledCode = ce.Code
				}
				break
			}
		}
		stalled.Close()
	}
	b, _ := json.Marshal(res)
	fmt.Printf("RESULT %s\n", b)
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// BenchmarkConsoleFanout: one sim board floods 10 MB through its console
// to 1 and to 50 websocket viewers (in another process). Every viewer must
// get every byte in order (a viewer that never reads, with the real
// binary: test/fanoutbench). Reported:
// the time from the command to the last viewer's last byte, and the CPU
// seconds of the server process (controller, recorder, sim board, websockets).
func BenchmarkConsoleFanout(b *testing.B) {
	e := startUI(b, testFarm, nil) // the recorder's defaults
	e.flashAndHold(b, "sim-a", "r1")
	op := e.tokens[RoleOperator]
	w, _, err := e.dial(b, "/api/v1/boards/sim-a/terminal", dialOpts{token: op})
	if err != nil {
		b.Fatal(err)
	}
	watch := &termReader{conn: w}
	watch.readUntil(b, "sim> ")
	from := len(watch.data)
	if st := e.call(b, "POST", "/api/v1/boards/sim-a/power", op, map[string]string{"action": "cycle"}, nil); st != 200 {
		b.Fatal(st)
	}
	watch.readUntilFrom(b, from, "Booting hilfarm-sim v1.1.0\r\nsim> ")
	w.Close() // this test viewer would be dropped by the flood anyway
	const size = 10 << 20
	run := 0
	for _, c := range []struct {
		name    string
		viewers int
		stall   bool
	}{{"viewers=1", 1, false}, {"viewers=50", 50, false}} { // one that never reads: test/fanoutbench
		b.Run(c.name, func(b *testing.B) {
			var wall, cpu, viewerCPU float64
			for range b.N {
				run++
				mark := fmt.Sprintf("fanout-run-%d", run)
				cmd := exec.Command(os.Args[0], "-test.run=^TestFanoutViewerProcess$", "-test.count=1")
				cmd.Env = append(os.Environ(), envFanoutURL+"="+e.wsURL("/api/v1/boards/sim-a/terminal"), envFanoutToken+"="+e.tokens[RoleViewer],
					envFanoutN+"="+strconv.Itoa(c.viewers), envFanoutBytes+"="+strconv.Itoa(size), envFanoutMark+"="+mark)
				if c.stall {
					cmd.Env = append(cmd.Env, envFanoutStall+"=1")
				}
				cmd.Stderr = os.Stderr
				out, err := cmd.StdoutPipe()
				if err != nil {
					b.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				lines := bufio.NewScanner(out)
				lines.Buffer(nil, 1<<20)
				line := func(prefix string) string {
					for lines.Scan() {
						if s, ok := strings.CutPrefix(lines.Text(), prefix); ok {
							return s
						}
					}
					cmd.Wait()
					b.Fatalf("viewer process: no %q line", prefix)
					return ""
				}
				line("READY")
				cpu0, t0 := cpuSeconds(), time.Now()
				if err := e.tc.TypeInto(context.Background(), "sim-a", e.actors[RoleOperator], fmt.Appendf(nil, "echo %s\rflood %d\r", mark, size)); err != nil {
					b.Fatal(err)
				}
				var res fanoutResult
				if err := json.Unmarshal([]byte(line("RESULT ")), &res); err != nil {
					b.Fatal(err)
				}
				cpu1 := cpuSeconds()
				if err := cmd.Wait(); err != nil {
					b.Fatalf("viewer process: %v", err)
				}
				viewerCPU += (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
				if len(res.Errors) > 0 {
					b.Fatalf("viewers that keep up lost bytes:\n%s", strings.Join(res.Errors, "\n"))
				}
				last := slices.Max(res.Done)
				wall += time.Duration(last - t0.UnixNano()).Seconds()
				cpu += cpu1 - cpu0
				if c.stall {
					b.Logf("%s: the stalled viewer got %d bytes, then close %d", c.name, res.StalledBytes, res.StalledCode)
				}
			}
			b.ReportMetric(wall/float64(b.N), "s/last-viewer-done")
			b.ReportMetric(cpu/float64(b.N), "server-cpu-s")
			b.ReportMetric(viewerCPU/float64(b.N), "viewers-cpu-s")
			b.ReportMetric(0, "ns/op")
			b.Logf("%s: 10 MiB to %d viewers: last viewer done after %.3f s; server CPU %.3f s; viewer process CPU %.3f s",
				c.name, c.viewers, wall/float64(b.N), cpu/float64(b.N), viewerCPU/float64(b.N))
		})
	}
}

// BenchmarkConsoleLatency: bytes written into a pty at 115200 baud pacing
// (in ~1 ms bursts, as a USB serial adapter delivers them) reach a real
// farm board's serial console (go.bug.st/serial), its recorder and a
// websocket viewer; reported: the latency from the write to the websocket
// message, p50 and p99, over 1 s of console (11520 bytes).
func BenchmarkConsoleLatency(b *testing.B) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		b.Skipf("no pty: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	farmSrc := fmt.Sprintf(`
farm "bench" {}
board_type "bare" {}
board "pty-1" {
  type = "bare"
  power "command" {
    on  = ["true"]
    off = ["true"]
  }
  console "serial" {
    port = %q
    baud = 115200
  }
}
`, tty.Name())
	e := startUI(b, farmSrc, nil)
	c, _, err := e.dial(b, "/api/v1/boards/pty-1/terminal", dialOpts{token: e.tokens[RoleViewer]})
	if err != nil {
		b.Fatal(err)
	}
	r := &termReader{conn: c}
	if _, err := ptmx.Write([]byte("SYNC-0\n")); err != nil {
		b.Fatal(err)
	}
	r.readUntil(b, "SYNC-0\n")
	const perSecond = 115200 / 10 // 8N1: 10 bits a byte
	var lats []time.Duration
	for range b.N {
		n := perSecond
		written := make([]time.Time, n)
		payload := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
		done := make(chan error, 1)
		go func() {
			// The reader: match each received byte to its write time.
			got := 0
			for got < n {
				typ, p, err := c.ReadMessage()
				if err != nil {
					done <- err
					return
				}
				at := time.Now()
				if typ != websocket.BinaryMessage {
					continue
				}
				for range p {
					if got < n {
						lats = append(lats, at.Sub(written[got]))
					}
					got++
				}
			}
			done <- nil
		}()
		start := time.Now()
		for sent := 0; sent < n; {
			due := min(n, int(time.Since(start).Seconds()*perSecond)+1)
			if due > sent {
				now := time.Now()
				for k := sent; k < due; k++ {
					written[k] = now
				}
				if _, err := ptmx.Write(payload[sent:due]); err != nil {
					b.Fatal(err)
				}
				sent = due
			}
			time.Sleep(time.Millisecond)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	slices.Sort(lats)
	p := func(q float64) time.Duration { return lats[min(len(lats)-1, int(q*float64(len(lats))))] }
	b.ReportMetric(float64(p(0.50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(p(0.99).Microseconds()), "p99-µs")
	b.ReportMetric(float64(lats[len(lats)-1].Microseconds()), "max-µs")
	b.ReportMetric(0, "ns/op")
	b.Logf("pty byte -> websocket message at 115200 baud: p50 %v, p99 %v, max %v over %d bytes", p(0.5), p(0.99), lats[len(lats)-1], len(lats))
}

// TestUIBoardConsoleGap: a board page that falls further behind a console
// flood than the recorder's viewer window gets a gap marker (counted), is
// not cut, and the console goes on live.
func TestUIBoardConsoleGap(t *testing.T) {
	leakCheck(t)
	// A window of 4 KiB: a page more than 4 KiB behind a flood skips.
	e := startUI(t, testFarm, func(c *Config) { c.Recorder.RingBytes, c.Recorder.ViewerWindow = 4<<10, 4<<10 })
	e.flashAndHold(t, "sim-a", "r1")
	op := e.tokens[RoleOperator]
	if st := e.call(t, "POST", "/api/v1/boards/sim-a/power", op, map[string]string{"action": "cycle"}, nil); st != 200 {
		t.Fatal(st)
	}
	b := newBrowser(t)
	b.do("open the login page", chromedp.Navigate(e.srv.URL+"/login?next=/boards/sim-a"))
	b.waitFor("the login form shows", `!!document.querySelector("#login-form")`)
	b.do("log in", chromedp.SetValue(chromedp.CSS("#token"), op), chromedp.Click(chromedp.CSS("#login-submit")))
	b.waitFor("the board page is live", textOf("#console .term-status", "live"))
	b.waitFor("the board booted", xtermHas("Booting hilfarm-sim v1.1.0"))
	rec := e.tc.slots["sim-a"].rec
	for i := 1; rec.Stats().ViewerGaps == 0; i++ {
		if i > 10 {
			t.Fatal("10 floods of 1 MB did not put the page's console behind the window")
		}
		n := 1<<20 + i
		done := fmt.Sprintf("flood done %d", n)
		if err := e.tc.TypeInto(context.Background(), "sim-a", e.actors[RoleOperator], fmt.Appendf(nil, "flood %d\r", n)); err != nil {
			t.Fatal(err)
		}
		b.waitFor("the flood ends on the page", xtermHas(done))
	}
	// (The marker itself is one line somewhere in the flood's thousands:
	// xterm.js renders only the rows on screen, so it is not looked for
	// there; its form is checked in viewer_test.go and by the CLI.)
	b.waitFor("the page is still live", textOf("#console .term-status", "live"))
	if st := rec.Stats(); st.ViewersDropped != 0 {
		t.Errorf("the page's viewer was cut (%+v): it was reading", st)
	}
	if err := e.tc.TypeInto(context.Background(), "sim-a", e.actors[RoleOperator], []byte("echo after-the-gap\r")); err != nil {
		t.Fatal(err)
	}
	b.waitFor("the console goes on", xtermHas("after-the-gap"))
	b.shot("09-board-after-gap")
	if p := b.problems(); len(p) > 0 {
		t.Errorf("the page reported problems:\n%s", strings.Join(p, "\n"))
	}
}
