package rack

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A rack agent as its own process: the test binary re-executes itself with
// childEnv naming a JSON config, and TestMain runs agentChild instead of
// the tests. The child reports on stdout (one JSON event a line) and takes
// orders on stdin ("release <job> <verdict>", "quit"); when its stdin
// closes (the test ended or died) it stops, so it never outlives the test.
const childEnv = "HILFARM_RACK_TEST_AGENT"

func TestMain(m *testing.M) {
	if p := os.Getenv(childEnv); p != "" {
		os.Exit(agentChild(p))
	}
	os.Exit(m.Run())
}

type childConfig struct {
	Name       string        `json:"name"`
	DataDir    string        `json:"data_dir"`
	HubURL     string        `json:"hub_url"`
	ServerName string        `json:"server_name"`
	Password   string        `json:"password"`
	CAPEM      []byte        `json:"ca_pem"`
	CertPEM    []byte        `json:"cert_pem"`
	KeyPEM     []byte        `json:"key_pem"`
	Boards     int           `json:"boards"`
	BoardType  string        `json:"board_type"`
	AckWait    time.Duration `json:"ack_wait"`
}

// childEvent is one line of the child's stdout.
type childEvent struct {
	Ev      string `json:"ev"` // ready, link, started, outbox
	Up      bool   `json:"up,omitempty"`
	Job     string `json:"job,omitempty"`
	Board   string `json:"board,omitempty"`
	Pending int    `json:"pending,omitempty"`
	Err     string `json:"err,omitempty"`
}

// procBoard runs a job until the parent releases it with a verdict.
type procBoard struct {
	name, typ string
	c         *childCtl
}

func (b *procBoard) Name() string  { return b.name }
func (b *procBoard) Type() string  { return b.typ }
func (b *procBoard) Healthy() bool { return true }
func (b *procBoard) Run(ctx context.Context, j Job, fw string) (string, string) {
	ch := b.c.waiter(j.ID)
	b.c.emit(childEvent{Ev: "started", Job: j.ID, Board: b.name})
	select {
	case v := <-ch:
		return v, "board=" + b.name
	case <-ctx.Done():
		return "error", "cancelled"
	}
}

type childCtl struct {
	mu       sync.Mutex
	out      *json.Encoder
	waiters  map[string]chan string
	released map[string]string
}

func (c *childCtl) emit(e childEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.out.Encode(e)
}

func (c *childCtl) waiter(job string) chan string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan string, 1)
	if v, ok := c.released[job]; ok {
		ch <- v
	}
	c.waiters[job] = ch
	return ch
}

func (c *childCtl) release(job, verdict string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.waiters[job]; ok {
		select {
		case ch <- verdict:
		default:
		}
		return
	}
	c.released[job] = verdict
}

func agentChild(cfgPath string) int {
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agent child:", err)
		return 2
	}
	var cfg childConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "agent child: config:", err)
		return 2
	}
	c := &childCtl{out: json.NewEncoder(os.Stdout), waiters: map[string]chan string{}, released: map[string]string{}}
	tlsc, err := RackTLS(cfg.CAPEM, cfg.CertPEM, cfg.KeyPEM, cfg.ServerName)
	if err != nil {
		c.emit(childEvent{Ev: "error", Err: err.Error()})
		return 2
	}
	var boards []Board
	for i := range cfg.Boards {
		boards = append(boards, &procBoard{name: fmt.Sprintf("b%d", i+1), typ: cfg.BoardType, c: c})
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	a, err := NewAgent(context.Background(), AgentConfig{
		Name: cfg.Name, DataDir: cfg.DataDir, HubURL: cfg.HubURL, TLS: tlsc, Password: cfg.Password,
		Boards: boards, AckWait: cfg.AckWait, Logger: log,
	})
	if err != nil {
		c.emit(childEvent{Ev: "error", Err: err.Error()})
		return 2
	}
	defer a.Close()
	c.emit(childEvent{Ev: "ready"})
	done := make(chan struct{})
	go func() { // link and outbox as the parent sees them
		link, pending := false, 0
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			if up := a.LinkUp(); up != link {
				link = up
				log.Info("test agent: leaf link", "up", up)
				c.emit(childEvent{Ev: "link", Up: up})
			}
			if n, err := a.OutboxPending(); err == nil && n != pending {
				pending = n
				c.emit(childEvent{Ev: "outbox", Pending: n})
			}
		}
	}()
	defer close(done)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 3 && f[0] == "release":
			c.release(f[1], f[2])
		case len(f) == 1 && f[0] == "quit":
			return 0
		}
	}
	return 0 // stdin closed: the parent is gone
}

// agentProc is the parent's handle on a child agent process.
type agentProc struct {
	t      testing.TB
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	readed chan struct{}

	mu       sync.Mutex
	ready    bool
	link     bool
	linkDown int // how many times the link went from up to down
	pending  int
	started  map[string]string // job → board
	errs     []string
	stderr   bytes.Buffer
}

// startAgentProc starts a rack agent process for rack name of farm f with
// n boards of type typ, dialling hubURL. With netns set it runs inside that
// network namespace (ip netns exec). Cleanup stops it (quit, then kill).
func startAgentProc(t testing.TB, f *testFarm, netns, name, hubURL, serverName string, n int, typ string) *agentProc {
	t.Helper()
	cert, key, err := f.ca.Issue("rack-"+name, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := childConfig{
		Name: name, DataDir: filepath.Join(dir, "data"), HubURL: hubURL, ServerName: serverName,
		Password: f.pw[name], CAPEM: f.ca.PEM, CertPEM: cert, KeyPEM: key,
		Boards: n, BoardType: typ, AckWait: f.ackWait,
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "agent.json")
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{exe, "-test.run=^$"}
	if netns != "" {
		args = append([]string{ipCmd, "netns", "exec", netns}, args...)
	}
	p := &agentProc{t: t, started: map[string]string{}, readed: make(chan struct{})}
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Env = append(os.Environ(), childEnv+"="+cfgPath)
	p.cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start agent process: %v", err)
	}
	t.Cleanup(p.stop)
	go p.read(stdout)
	waitFor(t, 20*time.Second, "the agent process to start", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.errs) > 0 {
			t.Fatalf("agent process: %v\n%s", p.errs, p.stderr.String())
		}
		return p.ready
	})
	return p
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (p *agentProc) read(r io.Reader) {
	defer close(p.readed)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var e childEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			p.mu.Lock()
			p.errs = append(p.errs, "bad event line: "+sc.Text())
			p.mu.Unlock()
			continue
		}
		p.mu.Lock()
		switch e.Ev {
		case "ready":
			p.ready = true
		case "link":
			if p.link && !e.Up {
				p.linkDown++
			}
			p.link = e.Up
		case "outbox":
			p.pending = e.Pending
		case "started":
			p.started[e.Job] = e.Board
		case "error":
			p.errs = append(p.errs, e.Err)
		}
		p.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, r)
}

// state returns a snapshot under the lock.
func (p *agentProc) state() (link bool, linkDown, pending int, started map[string]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := map[string]string{}
	for k, v := range p.started {
		s[k] = v
	}
	return p.link, p.linkDown, p.pending, s
}

func (p *agentProc) linkUp() bool   { l, _, _, _ := p.state(); return l }
func (p *agentProc) outboxLen() int { _, _, n, _ := p.state(); return n }
func (p *agentProc) hasStarted(j string) bool {
	_, _, _, s := p.state()
	_, ok := s[j]
	return ok
}

func (p *agentProc) release(job, verdict string) {
	p.t.Helper()
	if _, err := fmt.Fprintf(p.stdin, "release %s %s\n", job, verdict); err != nil {
		p.t.Fatalf("agent process stdin: %v", err)
	}
}

// stderrLines returns the child's log lines containing sub.
func (p *agentProc) stderrLines(sub string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, l := range strings.Split(p.stderr.String(), "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}

// stop asks the child to quit, kills it if it has not after 10 s, and
// waits for it, so no process outlives the test.
func (p *agentProc) stop() {
	_, _ = io.WriteString(p.stdin, "quit\n")
	_ = p.stdin.Close()
	exited := make(chan error, 1)
	go func() { <-p.readed; exited <- p.cmd.Wait() }()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-exited
		p.t.Errorf("agent process %d did not quit within 10 s; killed", p.cmd.Process.Pid)
	}
	if p.t.Failed() {
		p.mu.Lock()
		p.t.Logf("agent process log:\n%s", p.stderr.String())
		p.mu.Unlock()
	}
}
