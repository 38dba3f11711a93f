// Package e2e tests hilfarm as its users run it: the real binary as a
// process (serve, token, submit), killed with SIGKILL and restarted, with
// sim boards on real ptys and the store in a real SQLite file.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hilfarm/hilfarm/farm/store"

	"github.com/hilfarm/hilfarm/internal/testrig"
)

var binary string

func TestMain(m *testing.M) {
	testrig.MainWithBinary(m, &binary)
}

const farmTemplate = `
farm "e2e" {
  listen   = "%s"
  data_dir = "data"
}
board_type "sim" {}
%s`

func simBoards(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "board \"sim-%02d\" {\n  type = \"sim\"\n  emulator \"sim\" {}\n}\n", i)
	}
	return b.String()
}

const hangSpec = `
spec "hang" {
  board { type = "sim" }
  timeout = "10m"
  setup {
    flash {}
    power "cycle" {}
    expect { text = "sim> " }
  }
  test "waits forever" {
    send { line = "version" }
    expect {
      text   = "this is never printed"
      within = "9m"
    }
  }
}
`

const quickSpec = `
spec "quick" {
  board { type = "sim" }
  setup {
    flash {}
    power "cycle" {}
    expect { text = "sim> " }
  }
  test "version" {
    send { line = "version" }
    expect { text = "2.0.0" }
  }
}
`

const model = "version = \"2.0.0\"\nboot_time = \"5ms\"\n"

// farmDir is a farm directory with a farm.hcl, a spec and a firmware model.
type farmDir struct {
	dir, farm, addr string
}

func newFarm(t testing.TB, boards int) *farmDir {
	t.Helper()
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	f := &farmDir{dir: dir, farm: filepath.Join(dir, "farm.hcl"), addr: addr}
	for name, content := range map[string]string{
		"farm.hcl":  fmt.Sprintf(farmTemplate, addr, simBoards(boards)),
		"hang.hcl":  hangSpec,
		"quick.hcl": quickSpec,
		"fw.hcl":    model,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// server is a running `hilfarm serve`.
type server struct {
	cmd  *exec.Cmd
	log  *lockedBuffer
	done chan error
}

// lockedBuffer is a bytes.Buffer a process writes while the test reads it.
type lockedBuffer = testrig.LockedBuffer

func (f *farmDir) serve(t testing.TB) *server {
	t.Helper()
	cmd := exec.Command(binary, "serve", "--farm", f.farm, "--log-level", "debug")
	cmd.Dir = f.dir
	s := &server{cmd: cmd, log: &lockedBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("hilfarm serve log:\n%s", s.log.String())
		}
	})
	// Ready when /healthz answers and the controller has settled the jobs
	// a previous run left (it logs "hilfarm serving" then; /healthz answers
	// before); the process exiting first is a failure.
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + f.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(s.log.String(), "hilfarm serving") {
				return s
			}
		}
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("hilfarm serve exited: %v\n%s", err, s.log.String())
		case <-time.After(20 * time.Millisecond): // waiting for another process to listen
		}
		if time.Now().After(deadline) {
			t.Fatalf("hilfarm serve not ready after 60s:\n%s", s.log.String())
		}
	}
}

func (f *farmDir) hilfarm(t testing.TB, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = f.dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("hilfarm %s: %w\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func (f *farmDir) token(t testing.TB, role string) string {
	t.Helper()
	out, err := f.hilfarm(t, "token", "create", "--farm", f.farm, "--name", "e2e-"+role, "--role", role)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func (f *farmDir) submit(t testing.TB, token, spec string) string {
	t.Helper()
	out, err := f.hilfarm(t, "submit", "--server", "http://"+f.addr, "--token", token,
		"--firmware", filepath.Join(f.dir, "fw.hcl"), "--spec", filepath.Join(f.dir, spec))
	if err != nil {
		t.Fatal(err)
	}
	u := strings.TrimSpace(out)
	return u[strings.LastIndex(u, "/")+1:]
}

type jobJSON struct {
	ID       string          `json:"id"`
	State    string          `json:"state"`
	Reason   string          `json:"reason"`
	Board    string          `json:"board"`
	Attempts []store.Attempt `json:"attempts"`
}

func (f *farmDir) job(t testing.TB, token, id string) jobJSON {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+f.addr+"/api/v1/jobs/"+url.PathEscape(id), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET job %s: %s %s", id, resp.Status, body)
	}
	var j jobJSON
	if err := json.Unmarshal(body, &j); err != nil {
		t.Fatal(err)
	}
	return j
}

// waitState follows the job's event stream until its state is one of want.
func (f *farmDir) waitState(t testing.TB, token, id string, want ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	hdr := http.Header{"Authorization": {"Bearer " + token}, "Origin": {"http://" + f.addr}}
	conn, resp, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+f.addr+"/api/v1/jobs/"+url.PathEscape(id)+"/events", hdr)
	if err != nil {
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("events websocket: %v: %s", err, b)
		}
		t.Fatal(err)
	}
	defer conn.Close()
	go func() { <-ctx.Done(); conn.Close() }()
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("job %s never reached %v: %v (now %s)", id, want, err, f.job(t, token, id).State)
		}
		var ev struct {
			Type string `json:"type"`
			Data struct {
				State string `json:"state"`
			} `json:"data"`
		}
		json.Unmarshal(msg, &ev)
		if ev.Type != "state" {
			continue
		}
		for _, w := range want {
			if ev.Data.State == w {
				return
			}
		}
	}
}

// TestKill9Recovery kills `hilfarm serve` with SIGKILL during a job: after
// a restart the job is error "controller restarted", the queued job is
// intact and runs, and the database passes its integrity check.
func TestKill9Recovery(t *testing.T) {
	f := newFarm(t, 1)
	s := f.serve(t)
	tok := f.token(t, "submitter")
	running := f.submit(t, tok, "hang.hcl")
	f.waitState(t, tok, running, "running")
	queued := f.submit(t, tok, "quick.hcl")
	if j := f.job(t, tok, queued); j.State != "queued" {
		t.Fatalf("second job: %s, want queued behind the first", j.State)
	}

	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done

	f.serve(t)
	// The interrupted attempt is an error "controller restarted"; the job
	// itself is retried (attempts left) and runs again, still first in line.
	j := f.job(t, tok, running)
	if len(j.Attempts) == 0 || j.Attempts[0].State != "error" || j.Attempts[0].Reason != "controller restarted" {
		t.Fatalf("attempts of the job running at the kill: %+v", j.Attempts)
	}
	if j.State != "queued" && j.State != "running" {
		t.Errorf("job running at the kill: %s, want it retried", j.State)
	}
	if q := f.job(t, tok, queued); q.State != "queued" {
		t.Errorf("queued job right after the restart: %s", q.State)
	}
	f.waitState(t, tok, running, "running")
	if _, err := f.hilfarm(t, "cancel", "--server", "http://"+f.addr, "--token", tok, running); err != nil {
		t.Fatal(err)
	}
	f.waitState(t, tok, queued, "passed", "failed", "error", "cancelled")
	if q := f.job(t, tok, queued); q.State != "passed" {
		t.Errorf("queued job after the restart: %s (%s)", q.State, q.Reason)
	}
	if j := f.job(t, tok, running); j.State != "cancelled" || len(j.Attempts) != 2 {
		t.Errorf("retried job after cancel: %s with %d attempts", j.State, len(j.Attempts))
	}
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(f.dir, "data", "hilfarm.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := db.IntegrityCheck(ctx); err != nil || v != "ok" {
		t.Errorf("integrity_check = %q, %v", v, err)
	}
}

// TestSIGTERMShutdown stops serve with SIGTERM during a job: the job ends as
// error "controller shutting down" and the process exits 0.
func TestSIGTERMShutdown(t *testing.T) {
	f := newFarm(t, 1)
	s := f.serve(t)
	tok := f.token(t, "submitter")
	id := f.submit(t, tok, "hang.hcl")
	f.waitState(t, tok, id, "running")
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v\n%s", err, s.log.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not stop within 60s of SIGTERM\n%s", s.log.String())
	}
	db, err := store.Open(context.Background(), filepath.Join(f.dir, "data", "hilfarm.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	j, err := db.Job(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != "error" || j.Reason != "controller shutting down" {
		t.Errorf("job after SIGTERM: %s (%q)", j.State, j.Reason)
	}
}

// BenchmarkIdleRSS reports the resident memory of an idle `hilfarm serve`
// with 48 sim boards (target <= 40 MB) and the binary's size.
func BenchmarkIdleRSS(b *testing.B) {
	for b.Loop() {
		f := newFarm(b, 48)
		s := f.serve(b)
		// Let the boards settle: one full round trip through the API.
		resp, err := http.Get("http://" + f.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		rss := vmRSS(b, s.cmd.Process.Pid)
		s.cmd.Process.Signal(syscall.SIGTERM)
		<-s.done
		b.ReportMetric(float64(rss)/(1<<20), "MB-RSS")
	}
	if st, err := os.Stat(binary); err == nil {
		b.ReportMetric(float64(st.Size())/(1<<20), "MB-binary")
	}
}

func vmRSS(b *testing.B, pid int) int64 {
	fh, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		var kb int64
		if n, _ := fmt.Sscanf(sc.Text(), "VmRSS: %d kB", &kb); n == 1 {
			return kb << 10
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// TestSecondServeRefused: a second controller on the same data dir stops at
// once with a clear error instead of taking over the first one's jobs.
func TestSecondServeRefused(t *testing.T) {
	f := newFarm(t, 1)
	f.serve(t)
	cmd := exec.Command(binary, "serve", "--farm", f.farm, "--listen", "127.0.0.1:0")
	cmd.Dir = f.dir
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is in use by process") {
		t.Errorf("second serve: %v\n%s", err, out)
	}
}
