// Package hostile is the hostile-submitter suite (issue 10): the real
// `hilfarm serve` as a process, with sim boards, receives everything a
// submitter (or a client with no token at all) can send: slow and
// oversized bodies, connection floods, bad UTF-8, huge names and
// priorities, spec and sim-model bombs, catastrophic regexes, a revoked
// token's websockets and a full data disk. Each case asserts the clean
// 4xx or the named outcome, that the server still answers GET
// /api/v1/boards, and that its peak RSS (VmHWM) stayed under rssBound.
//
// The figures (peak RSS over the suite, API latency under load, cancel
// latency) are printed by the benchmarks (make bench-hostile).
package hostile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hilfarm/hilfarm/internal/testrig"
)

// rssBound is the controller's peak RSS bound over the suite (issue 10's
// target for the whole suite).
const rssBound = 256 << 20

var binary string

func TestMain(m *testing.M) {
	testrig.MainWithBinary(m, &binary)
}

const farmTemplate = `
farm "hostile" {
  listen     = "%s"
  data_dir   = "%s"
  max_upload = "1MiB"
}
board_type "sim" {}
%s`

func simBoards(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "board \"sim-%02d\" {\n  type = \"sim\"\n  emulator \"sim\" {}\n}\n", i+1)
	}
	return b.String()
}

// goodModel is a sim firmware model that boots at once.
const goodModel = "version = \"2.0.0\"\nboot_time = \"5ms\"\n"

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

// server is a running `hilfarm serve` and its farm directory.
type server struct {
	dir, farm, addr, data string
	cmd                   *exec.Cmd
	log                   *syncBuffer
	done                  chan error
	tokens                map[string]string // role -> token
	peak                  int64             // highest VmHWM seen by healthy, over restarts
	owner                 testing.TB        // the test that stops every process of this server
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer writes a farm with two sim boards (data dir: dataDir, or one
// in the farm dir) and runs serve on it, with a token of each role.
func startServer(t testing.TB, dataDir string) *server {
	return startServerN(t, dataDir, 2)
}

// startServerN is startServer with n sim boards (sim-01 ... sim-NN).
func startServerN(t testing.TB, dataDir string, n int) *server {
	t.Helper()
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if dataDir == "" {
		dataDir = filepath.Join(dir, "data")
	}
	s := &server{dir: dir, farm: filepath.Join(dir, "farm.hcl"), addr: addr, data: dataDir, tokens: map[string]string{}, owner: t}
	files := map[string]string{
		"farm.hcl":  fmt.Sprintf(farmTemplate, addr, dataDir, simBoards(n)),
		"fw.hcl":    goodModel,
		"quick.hcl": quickSpec,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s.start(t)
	for _, role := range []string{"viewer", "submitter", "operator", "admin"} {
		s.tokens[role] = s.newToken(t, "hostile-"+role, role)
	}
	return s
}

func (s *server) start(t testing.TB) {
	t.Helper()
	// A safety net for the machine, not the bound under test: a controller
	// that does not bound a bomb dies at 4 GiB of address space instead of
	// taking the host's memory (the cases then fail: the server died).
	args := []string{"serve", "--farm", s.farm}
	cmd := exec.Command(binary, args...)
	if p, err := exec.LookPath("prlimit"); err == nil {
		cmd = exec.Command(p, append([]string{"--as=4294967296", "--", binary}, args...)...)
	}
	cmd.Dir = s.dir
	s.cmd, s.log, s.done = cmd, &syncBuffer{}, make(chan error, 1)
	log := s.log
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := s.done
	go func() { done <- cmd.Wait() }()
	// The server outlives the subtest that restarted it: its owner stops it.
	s.owner.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		}
		if s.owner.Failed() {
			s.owner.Logf("hilfarm serve log (tail):\n%s", tail(log.String(), 8000))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + s.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("hilfarm serve exited: %v\n%s", err, s.log.String())
		case <-time.After(20 * time.Millisecond): // another process is starting to listen
		}
		if time.Now().After(deadline) {
			t.Fatalf("hilfarm serve not ready after 60s:\n%s", s.log.String())
		}
	}
}

// stop stops serve with SIGTERM and waits.
func (s *server) stop(t testing.TB) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		t.Fatalf("serve did not stop within 60s of SIGTERM")
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func (s *server) hilfarm(args ...string) (string, error) {
	cmd := exec.Command(binary, args...)
	cmd.Dir = s.dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("hilfarm %s: %w\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func (s *server) newToken(t testing.TB, name, role string) string {
	t.Helper()
	out, err := s.hilfarm("token", "create", "--farm", s.farm, "--name", name, "--role", role)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// otherClient talks to the server from 127.0.0.2, so that the per-address
// connection cap of a flood from 127.0.0.1 does not apply to it.
var otherClient = &http.Client{
	Timeout: 15 * time.Second, // every answer is quick; a wedged server fails the case
	Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext,
	},
}

// answer is an HTTP answer.
type answer struct {
	status int
	body   []byte
}

func (a answer) String() string { return fmt.Sprintf("%d %s", a.status, tail(string(a.body), 500)) }

func (s *server) do(t testing.TB, method, path, token, ctype string, body io.Reader) answer {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.addr+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := otherClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return answer{resp.StatusCode, b}
}

func (s *server) postJSON(t testing.TB, path, token string, body []byte) answer {
	t.Helper()
	return s.do(t, "POST", path, token, "application/json", bytes.NewReader(body))
}

// part is one multipart part of a submission.
type part struct {
	name, filename string
	body           []byte
}

// multipartBody builds a submission body by hand, so that file names are
// sent exactly as given (mime/multipart would escape them).
func multipartBody(parts ...part) (string, []byte) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		cd := fmt.Sprintf(`form-data; name="%s"`, p.name)
		if p.filename != "" {
			cd += fmt.Sprintf(`; filename="%s"`, p.filename)
		}
		h.Set("Content-Disposition", cd)
		w, _ := mw.CreatePart(h)
		w.Write(p.body)
	}
	mw.Close()
	return mw.FormDataContentType(), b.Bytes()
}

// submit sends a submission (options JSON, spec, firmware model).
func (s *server) submit(t testing.TB, token, options, spec string, fw []byte, fwName string) answer {
	t.Helper()
	ctype, body := multipartBody(part{"options", "", []byte(options)}, part{"spec", "spec.hcl", []byte(spec)}, part{"firmware", fwName, fw})
	return s.do(t, "POST", "/api/v1/jobs", token, ctype, bytes.NewReader(body))
}

type jobJSON struct {
	ID     string          `json:"id"`
	State  string          `json:"state"`
	Reason string          `json:"reason"`
	Result json.RawMessage `json:"result"`
}

func jobOf(t testing.TB, a answer) jobJSON {
	t.Helper()
	var j jobJSON
	if err := json.Unmarshal(a.body, &j); err != nil || j.ID == "" {
		t.Fatalf("not a job: %v: %s", err, a)
	}
	return j
}

func (s *server) job(t testing.TB, id string) jobJSON {
	t.Helper()
	a := s.do(t, "GET", "/api/v1/jobs/"+url.PathEscape(id), s.tokens["viewer"], "", nil)
	if a.status != 200 {
		t.Fatalf("GET job %s: %s", id, a)
	}
	return jobOf(t, a)
}

func final(state string) bool {
	switch state {
	case "passed", "failed", "error", "cancelled":
		return true
	}
	return false
}

// waitFinal follows the job's event stream until it is final (bounded).
func (s *server) waitFinal(t testing.TB, id string, within time.Duration) jobJSON {
	t.Helper()
	s.waitState(t, id, within, "passed", "failed", "error", "cancelled")
	j := s.job(t, id)
	if !final(j.State) {
		t.Fatalf("job %s not final after %s: %s", id, within, j.State)
	}
	return j
}

// waitState follows the job's event stream until a state event says one
// of states, the stream ends, or within passes.
func (s *server) waitState(t testing.TB, id string, within time.Duration, states ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	hdr := http.Header{"Authorization": {"Bearer " + s.tokens["viewer"]}}
	d := websocket.Dialer{NetDialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}
	conn, _, err := d.DialContext(ctx, "ws://"+s.addr+"/api/v1/jobs/"+url.PathEscape(id)+"/events", hdr)
	if err != nil {
		t.Fatalf("events of %s: %v", id, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			return // closed after the final state, or the deadline
		}
		var ev struct {
			Type string `json:"type"`
			Data struct {
				State string `json:"state"`
			} `json:"data"`
		}
		json.Unmarshal(msg, &ev)
		for _, st := range states {
			if ev.Type == "state" && ev.Data.State == st {
				return
			}
		}
	}
}

// procStatus reads VmHWM and VmRSS of a process.
func procStatus(t testing.TB, pid int) (hwm, rss int64) {
	t.Helper()
	fh, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("the server process is gone: %v", err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		var kb int64
		if n, _ := fmt.Sscanf(sc.Text(), "VmHWM: %d kB", &kb); n == 1 {
			hwm = kb << 10
		}
		if n, _ := fmt.Sscanf(sc.Text(), "VmRSS: %d kB", &kb); n == 1 {
			rss = kb << 10
		}
	}
	return hwm, rss
}

// revive restarts the server if a previous case killed it (that case has
// failed already), so that one unbounded bomb does not fail the next ones.
func (s *server) revive(t testing.TB) {
	t.Helper()
	select {
	case err := <-s.done:
		t.Logf("the server had died (%v); restarting it", err)
		s.start(t)
		return
	default:
	}
	c := http.Client{Timeout: 5 * time.Second, Transport: otherClient.Transport}
	resp, err := c.Get("http://" + s.addr + "/healthz")
	if err == nil {
		resp.Body.Close()
		return
	}
	select { // it does not answer: it is dying
	case err := <-s.done:
		t.Logf("the server had died (%v); restarting it", err)
		s.start(t)
	case <-time.After(5 * time.Second):
		t.Logf("the server neither answers nor exits: killed and restarted")
		s.cmd.Process.Kill()
		<-s.done
		s.start(t)
	}
}

// healthy asserts the server process is alive, answers GET /api/v1/boards
// (from another address than any flood) and stayed under rssBound.
func (s *server) healthy(t testing.TB) time.Duration {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err
		t.Fatalf("hilfarm serve died: %v", err)
	default:
	}
	start := time.Now()
	a := s.do(t, "GET", "/api/v1/boards", s.tokens["viewer"], "", nil)
	took := time.Since(start)
	if a.status != 200 {
		t.Fatalf("GET /api/v1/boards: %s", a)
	}
	hwm, rss := procStatus(t, s.cmd.Process.Pid)
	s.peak = max(s.peak, hwm)
	t.Logf("server: GET /api/v1/boards in %s; VmHWM %.1f MB, VmRSS %.1f MB", took.Round(time.Microsecond), float64(hwm)/(1<<20), float64(rss)/(1<<20))
	if hwm > rssBound {
		t.Errorf("server peak RSS %d MB, bound %d MB", hwm>>20, rssBound>>20)
	}
	return took
}
