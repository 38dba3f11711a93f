package farm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/runner"
	"github.com/hilfarm/hilfarm/specs"
)

func TestBudgetResultCutsAndMarks(t *testing.T) {
	steps := make([]runner.StepResult, 40000)
	for i := range steps {
		steps[i] = runner.StepResult{Index: i, Kind: "send", Summary: `send line "v"`, Outcome: runner.Passed}
	}
	steps[20000].Outcome, steps[20000].Message = runner.Failed, "the failing one"
	res := &runner.Result{Spec: "many", Outcome: runner.Failed, Message: strings.Repeat("m", 100000),
		Tests: []runner.TestResult{{Name: "t", Outcome: runner.Failed, Console: strings.Repeat("c", 1<<20),
			Attempts: []runner.Attempt{{Number: 1, Outcome: runner.Failed, Steps: steps}}}}}
	before, _ := json.Marshal(res)
	b := budgetResult(res, MaxResultBytes)
	if len(b) > MaxResultBytes {
		t.Fatalf("budgetResult = %d bytes, budget %d", len(b), MaxResultBytes)
	}
	var got struct {
		runner.Result
		Cut *ResultCut `json:"cut"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Cut == nil || got.Cut.OriginalBytes != len(before) || got.Cut.StepsDropped != 40000-101 || got.Cut.TextsShortened == 0 {
		t.Errorf("cut = %+v, want original %d bytes, %d steps dropped, texts shortened", got.Cut, len(before), 40000-101)
	}
	kept := got.Tests[0].Attempts[0].Steps
	if len(kept) != 101 || kept[50].Message != "the failing one" {
		t.Errorf("kept %d steps; the one in the middle: %+v", len(kept), kept[50])
	}
	if len(steps) != 40000 || res.Tests[0].Attempts[0].Steps[39999].Index != 39999 || len(res.Message) != 100000 {
		t.Error("budgetResult changed the result it was given")
	}
	var junit bytes.Buffer
	if err := runner.WriteJUnit(&junit, &got.Result); err != nil {
		t.Errorf("JUnit of a cut result: %v", err)
	}
	// A small result is stored as it is, without "cut".
	small := &runner.Result{Spec: "s", Outcome: runner.Passed}
	if b := budgetResult(small, MaxResultBytes); bytes.Contains(b, []byte(`"cut"`)) {
		t.Errorf("small result marked cut: %s", b)
	}
	// Nothing fits: the verdict is kept.
	if b := budgetResult(res, 2048); len(b) > 2048 || !bytes.Contains(b, []byte(`"outcome":"failed"`)) {
		t.Errorf("budget of 2 KiB: %d bytes: %.300s", len(b), b)
	}
}

func TestLimitListenerPerAddress(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := LimitListener(inner, 2, 100).(*limitListener)
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial := func(local byte) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, local)}}
		c, err := d.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a1, a2 := dial(1), dial(1)
	defer a1.Close()
	defer a2.Close()
	s1, s2 := <-accepted, <-accepted
	// The third from the same address hears 503 and is closed.
	a3 := dial(1)
	defer a3.Close()
	b, _ := io.ReadAll(a3)
	if !bytes.HasPrefix(b, []byte("HTTP/1.1 503 ")) || !bytes.Contains(b, []byte("too many connections")) {
		t.Errorf("third connection from one address got %q", b)
	}
	// Another address is fine.
	o := dial(2)
	defer o.Close()
	so := <-accepted
	// Closing one frees a place.
	s1.Close()
	a4 := dial(1)
	defer a4.Close()
	s4 := <-accepted
	if n := ln.Open(); n != 3 {
		t.Errorf("open = %d, want 3", n)
	}
	for _, c := range []net.Conn{s2, so, s4} {
		c.Close()
		c.Close() // twice counts once
	}
	if n := ln.Open(); n != 0 {
		t.Errorf("open after closing all = %d, want 0", n)
	}
}

func TestInputChecks(t *testing.T) {
	for _, c := range []struct {
		what string
		err  error
		ok   bool
	}{
		{"plain name", checkFileName("n", "fw-1.2.bin"), true},
		{"utf-8 name", checkFileName("n", "fïrmware.bin"), true},
		{"bad utf-8", checkFileName("n", "fw\xff.bin"), false},
		{"dotdot", checkFileName("n", ".."), false},
		{"slash", checkFileName("n", "a/b"), false},
		{"backslash", checkFileName("n", `a\b`), false},
		{"255 bytes", checkFileName("n", strings.Repeat("a", 255)), true},
		{"256 bytes", checkFileName("n", strings.Repeat("a", 256)), false},
		{"NUL", checkText("r", "a\x00b", MaxTextBytes), false},
		{"newline in text", checkText("r", "a\nb", MaxTextBytes), true},
		{"newline in name", checkName("n", "a\nb"), false},
		{"submitter 100", checkSubmitOptions(&SubmitOptions{Priority: 100}, RoleSubmitter), true},
		{"submitter 101", checkSubmitOptions(&SubmitOptions{Priority: 101}, RoleSubmitter), false},
		{"submitter min int", checkSubmitOptions(&SubmitOptions{Priority: -1 << 63}, RoleSubmitter), false},
		{"operator 999", checkSubmitOptions(&SubmitOptions{Priority: 999}, RoleOperator), true},
		{"admin health priority", checkSubmitOptions(&SubmitOptions{Priority: HealthPriority}, RoleAdmin), false},
		{"label key too long", checkSubmitOptions(&SubmitOptions{Labels: map[string]string{strings.Repeat("k", 256): "v"}}, RoleSubmitter), false},
		{"bad utf-8 var", checkSubmitOptions(&SubmitOptions{Vars: map[string]string{"v": "\xff"}}, RoleSubmitter), false},
	} {
		if (c.err == nil) != c.ok {
			t.Errorf("%s: err = %v, want ok=%v", c.what, c.err, c.ok)
		}
	}
	var v map[string]string
	if err := decodeJSON(strings.NewReader("{\"a\":\"\xff\"}"), &v, true); err != errBadUTF8 {
		t.Errorf("decodeJSON of bad UTF-8 = %v, want errBadUTF8", err)
	}
}

func TestDiskLogHandlerRateLimits(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(newDiskLogHandler(slog.NewTextHandler(&buf, nil)))
	full := &osErr{syscall.ENOSPC}
	for range 1000 {
		log.Error("console log not persisted", "board", "b", "err", full)
		log.Error("something else", "err", io.ErrUnexpectedEOF)
	}
	if n := strings.Count(buf.String(), "console log not persisted"); n != 1 {
		t.Errorf("disk-full record written %d times in a burst, want 1", n)
	}
	if n := strings.Count(buf.String(), "something else"); n != 1000 {
		t.Errorf("other errors written %d times, want all 1000", n)
	}
}

type osErr struct{ errno syscall.Errno }

func (e *osErr) Error() string { return "write: " + e.errno.Error() }
func (e *osErr) Unwrap() error { return e.errno }

func TestRateReaderCutsSlowBodies(t *testing.T) {
	// The deadline moves with the bytes read: after the grace, each
	// second allows minRate more bytes.
	rr := &rateReader{start: time.Unix(0, 0), grace: 10 * time.Second, minRate: 1000}
	d := &deadlines{}
	rr.r = io.NopCloser(strings.NewReader(strings.Repeat("x", 5000)))
	rr.set = d.set
	buf := make([]byte, 1000)
	for range 5 {
		rr.Read(buf)
	}
	want := []time.Duration{10 * time.Second, 11 * time.Second, 12 * time.Second, 13 * time.Second, 14 * time.Second}
	for i, w := range want {
		if got := d.at[i].Sub(time.Unix(0, 0)); got != w {
			t.Errorf("deadline before read %d = %s, want %s", i, got, w)
		}
	}
}

type deadlines struct{ at []time.Time }

func (d *deadlines) set(t time.Time) error {
	d.at = append(d.at, t)
	return nil
}

func TestLeftoverSpoolFilesRemovedAtStart(t *testing.T) {
	dir := t.TempDir()
	fw := filepath.Join(dir, "firmware")
	os.MkdirAll(fw, 0o750)
	for _, n := range []string{".spool-123", ".upload-456", "keep-this"} {
		os.WriteFile(filepath.Join(fw, n), []byte("x"), 0o600)
	}
	db, err := store.Open(context.Background(), filepath.Join(dir, "hilfarm.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	open := func(context.Context, specs.Board) (BoardHandle, error) { return nil, errors.New("no boards") }
	c, err := New(Config{Farm: &specs.Farm{}, DataDir: dir, Store: db, OpenBoard: open})
	if err != nil {
		t.Fatal(err)
	}
	c.disk.close()
	if _, err := os.Stat(filepath.Join(dir, reserveFile)); err != nil {
		t.Errorf("no disk-full reserve after New: %v", err)
	}
	ents, _ := os.ReadDir(fw)
	if len(ents) != 1 || ents[0].Name() != "keep-this" {
		t.Errorf("firmware dir after cleanSpool: %v", ents)
	}
}

func TestRevocationClosesWebsocketsAndReleasesHolds(t *testing.T) {
	leakCheck(t)
	e := startAPI(t, testFarm, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.api.watchRevocations(ctx) }()
	defer func() { cancel(); <-done }()

	tok, tk, err := CreateToken(context.Background(), e.tc.db, "revokee", RoleOperator, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	actor := Principal{Name: tk.Name, TokenID: tk.ID}.Actor()
	if _, err := e.tc.Hold(context.Background(), "sim-a", actor, time.Hour, "debugging"); err != nil {
		t.Fatal(err)
	}
	other, _, err := e.wsDial("/api/v1/boards/sim-b/console", bearer(e.tokens[RoleViewer]))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var conns []*websocket.Conn
	for _, path := range []string{"/api/v1/boards/sim-a/terminal", "/api/v1/boards/sim-b/console"} {
		c, _, err := e.wsDial(path, bearer(tok))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	if err := e.tc.db.RevokeToken(context.Background(), tk.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		var err error
		for err == nil {
			_, _, err = c.ReadMessage()
		}
		if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
			t.Errorf("websocket %d of the revoked token ended with %v, want 1008", i, err)
		}
	}
	if h := e.tc.HolderOf("sim-a"); h != "" {
		t.Errorf("sim-a still held by %s after the holder's token was revoked", h)
	}
	recs, _ := e.tc.db.AuditLog(context.Background(), 100)
	found := false
	for _, r := range recs {
		found = found || (r.Action == "release" && r.Target == "sim-a" && strings.Contains(r.Detail, "revoked"))
	}
	if !found {
		t.Errorf("no audited release of sim-a: %+v", recs)
	}
	// Someone else's websocket stays open.
	other.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	for {
		if _, _, err := other.ReadMessage(); err != nil {
			if !isTimeoutErr(err) {
				t.Errorf("another token's websocket ended: %v", err)
			}
			break
		}
	}
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestDiskFullModeReserveAndRecovery(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(context.Background(), filepath.Join(dir, "hilfarm.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	open := func(context.Context, specs.Board) (BoardHandle, error) { return nil, errors.New("no boards") }
	c, err := New(Config{Farm: &specs.Farm{}, DataDir: dir, Store: db, OpenBoard: open})
	if err != nil {
		t.Fatal(err)
	}
	defer c.disk.close()
	enospc := &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}
	// The first failure enters disk-full mode and releases the reserve;
	// the retry succeeds.
	calls := 0
	err = c.mustWrite(context.Background(), "final state", func(context.Context) error {
		calls++
		if calls == 1 {
			return enospc
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("mustWrite = %v after %d calls, want nil after 2", err, calls)
	}
	if !c.disk.Full() {
		t.Error("not in disk-full mode after ENOSPC")
	}
	if _, err := os.Stat(filepath.Join(dir, reserveFile)); !os.IsNotExist(err) {
		t.Errorf("reserve after a full write: %v, want released", err)
	}
	// Without a reserve it retries until the write goes through.
	calls = 0
	err = c.mustWrite(context.Background(), "final state", func(context.Context) error {
		calls++
		if calls < 3 {
			return enospc
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("mustWrite without a reserve = %v after %d calls, want nil after 3", err, calls)
	}
	// Another error is returned at once.
	if err := c.mustWrite(context.Background(), "x", func(context.Context) error { return io.ErrUnexpectedEOF }); err != io.ErrUnexpectedEOF {
		t.Errorf("mustWrite of another error = %v", err)
	}
	// The probe finds space: the reserve is back and the mode ends.
	c.disk.tryRecover()
	if c.disk.Full() {
		t.Error("still in disk-full mode with space")
	}
	if fi, err := os.Stat(filepath.Join(dir, reserveFile)); err != nil || fi.Size() != reserveBytes {
		t.Errorf("reserve after recovery: %v", err)
	}
	select {
	case <-c.disk.spaceBack():
	default:
		t.Error("spaceBack not closed after recovery")
	}
}

// TestBodyDeadline: a slow body is cut off with 408; a handler that works
// longer than the deadline after reading its whole body keeps its context.
func TestBodyDeadline(t *testing.T) {
	const d = 300 * time.Millisecond
	ctxErr := make(chan error, 1)
	h := bodyDeadlineAfter(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in map[string]string
		if err := decodeJSON(r.Body, &in, false); err != nil {
			e := bodyError(err, "want JSON")
			status, msg, _ := statusOf(e)
			writeJSONError(w, status, msg, nil)
			return
		}
		time.Sleep(2 * d) // the handler's work outlasts the body deadline
		ctxErr <- r.Context().Err()
		w.WriteHeader(http.StatusNoContent)
	}), d)
	srv := httptest.NewServer(h)
	defer srv.Close()

	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(`{"a":"b"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := <-ctxErr; err != nil || resp.StatusCode != http.StatusNoContent {
		t.Errorf("after a whole body: status %d, handler context %v", resp.StatusCode, err)
	}

	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	b := make([]byte, 12)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "HTTP/1.1 408" {
		t.Errorf("slow body: %q, %v; want 408", b, err)
	}
}
