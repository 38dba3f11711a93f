package rack

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hilfarm/hilfarm/rack/linkproxy"
	"golang.org/x/crypto/bcrypt"
)

// testBoard is a board whose jobs end when the test says so.
type testBoard struct {
	name, typ string
	started   chan Job
	verdicts  chan string
	mu        sync.Mutex
	runs      int
}

func newTestBoard(name, typ string) *testBoard {
	return &testBoard{name: name, typ: typ, started: make(chan Job, 16), verdicts: make(chan string, 16)}
}
func (b *testBoard) Name() string  { return b.name }
func (b *testBoard) Type() string  { return b.typ }
func (b *testBoard) Healthy() bool { return true }
func (b *testBoard) Run(ctx context.Context, j Job, fw string) (string, string) {
	b.mu.Lock()
	b.runs++
	b.mu.Unlock()
	b.started <- j
	select {
	case v := <-b.verdicts:
		return v, "fw=" + filepath.Base(fw)
	case <-ctx.Done():
		return "error", "cancelled"
	}
}

// logSink records log lines so a test can wait for the server to say
// something (an auth refusal) and print them all if it fails.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

type sinkHandler struct {
	s      *logSink
	prefix string
}

func (h sinkHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h sinkHandler) Handle(_ context.Context, r slog.Record) error {
	line := h.prefix + r.Message
	r.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
	h.s.mu.Lock()
	h.s.lines = append(h.s.lines, line)
	h.s.mu.Unlock()
	return nil
}
func (h sinkHandler) WithAttrs(as []slog.Attr) slog.Handler {
	for _, a := range as {
		h.prefix += a.String() + " "
	}
	return h
}
func (h sinkHandler) WithGroup(string) slog.Handler { return h }

func (s *logSink) handler() slog.Handler { return sinkHandler{s: s} }

func (s *logSink) count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.lines {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

type testFarm struct {
	t       testing.TB
	ca      *CA
	hub     *Hub
	hubLog  *logSink
	dir     string
	ackWait time.Duration
	pw      map[string]string
	hubCfg  HubConfig
}

// restartHub stops the hub and starts it again on the same store and port.
func (f *testFarm) restartHub() {
	f.t.Helper()
	f.hub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h, err := NewHub(ctx, f.hubCfg)
	if err != nil {
		f.t.Fatal(err)
	}
	f.hub = h
}

type testRack struct {
	agent  *Agent
	proxy  *linkproxy.Proxy
	boards []*testBoard
}

func init() { passwordCost = bcrypt.MinCost }

func newTestFarm(t testing.TB, ackWait time.Duration, racks map[string][]string) *testFarm {
	t.Helper()
	return newTestFarmAt(t, ackWait, racks, "127.0.0.1", []string{"127.0.0.1", "localhost"})
}

// newTestFarmAt is newTestFarm with the hub's leaf listener on leafHost and
// its certificate valid for hosts (a netns test dials it on a veth address).
func newTestFarmAt(t testing.TB, ackWait time.Duration, racks map[string][]string, leafHost string, hosts []string) *testFarm {
	t.Helper()
	ca, err := NewCA("test farm CA")
	if err != nil {
		t.Fatal(err)
	}
	hubCert, hubKey, err := ca.Issue("hub", hosts)
	if err != nil {
		t.Fatal(err)
	}
	tlsc, err := HubTLS(ca.PEM, hubCert, hubKey)
	if err != nil {
		t.Fatal(err)
	}
	f := &testFarm{t: t, ca: ca, dir: t.TempDir(), ackWait: ackWait, pw: map[string]string{}, hubLog: &logSink{}}
	var recs []Record
	for name, types := range racks {
		pw, hash, err := NewPassword()
		if err != nil {
			t.Fatal(err)
		}
		f.pw[name] = pw
		recs = append(recs, Record{Name: name, Types: types, PassHash: hash})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f.hubCfg = HubConfig{
		DataDir: filepath.Join(f.dir, "hub"), LeafHost: leafHost, LeafPort: -1, TLS: tlsc,
		Racks: recs, AckWait: ackWait, Logger: slog.New(f.hubLog.handler()),
	}
	f.hub, err = NewHub(ctx, f.hubCfg)
	if err != nil {
		t.Fatal(err)
	}
	f.hubCfg.LeafPort = f.hub.LeafPort() // a restarted hub listens where racks dial
	t.Cleanup(func() { f.hub.Close() })
	t.Cleanup(func() {
		if t.Failed() {
			f.hubLog.mu.Lock()
			for _, l := range f.hubLog.lines {
				t.Log(l)
			}
			f.hubLog.mu.Unlock()
		}
	})
	if strings.Contains(f.hub.opts.StoreDir, os.TempDir()+"/nats") {
		t.Fatalf("store dir %s is the $TMPDIR default", f.hub.opts.StoreDir)
	}
	return f
}

// addRack starts a rack agent dialling the hub through its own proxy.
func (f *testFarm) addRack(name, password string, boards ...*testBoard) *testRack {
	f.t.Helper()
	var bs []Board
	for _, b := range boards {
		bs = append(bs, b)
	}
	r := f.addRackBoards(name, password, bs)
	r.boards = boards
	return r
}

// addRackBoards is addRack for any Board.
func (f *testFarm) addRackBoards(name, password string, bs []Board) *testRack {
	f.t.Helper()
	p, err := linkproxy.New(fmt.Sprintf("127.0.0.1:%d", f.hub.LeafPort()))
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(p.Close)
	cert, key, err := f.ca.Issue("rack-"+name, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	tlsc, err := RackTLS(f.ca.PEM, cert, key, "127.0.0.1")
	if err != nil {
		f.t.Fatal(err)
	}
	a, err := NewAgent(context.Background(), AgentConfig{
		Name: name, DataDir: f.t.TempDir(), HubURL: "tls://" + p.Addr(),
		TLS: tlsc, Password: password, Boards: bs, AckWait: f.ackWait, Logger: slog.New(f.hubLog.handler()).With("rack", name),
	})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(a.Close)
	return &testRack{agent: a, proxy: p}
}

// waitFor polls cond (every 20 ms) until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func recv[T any](t testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
		panic("unreachable")
	}
}

// checkLedger asserts the invariants every test ends with: each job has at
// most one verdict, decided by exactly one final attempt, and no attempt
// has two results.
func checkLedger(t testing.TB, h *Hub) {
	t.Helper()
	for _, j := range h.Jobs() {
		finals := 0
		for _, a := range j.Attempts {
			if a.State == "final" {
				finals++
				if j.DecidedBy != a.ID || j.Verdict != a.Verdict {
					t.Errorf("job %s: final attempt %s (%s) but job decided by %s (%s)", j.ID, a.ID, a.Verdict, j.DecidedBy, j.Verdict)
				}
			}
		}
		if finals > 1 {
			t.Errorf("job %s has %d final attempts", j.ID, finals)
		}
	}
}
