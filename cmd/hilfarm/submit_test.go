package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hilfarm/hilfarm/farm"
	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/specs"
	"go.uber.org/goleak"
)

const cliTestFarm = `
farm "cli-test" {
  anonymous_read = false
}
board_type "sim" {}
board "sim-a" {
  type = "sim"
  emulator "sim" {}
  gpio "button" {
    output = true
  }
  gpio "led" {}
}
board "sim-b" {
  type = "sim"
  emulator "sim" {}
  gpio "button" {
    output = true
  }
  gpio "led" {}
}
`

// cliServer runs serve() in-process on a free port with two sim boards
// and returns its URL and an admin, a submitter and a viewer token.
type cliServer struct {
	url     string
	dataDir string
	tokens  map[string]string
}

func startCLIServer(t *testing.T) *cliServer {
	t.Helper()
	dir := t.TempDir()
	farmPath := filepath.Join(dir, "farm.hcl")
	if err := os.WriteFile(farmPath, []byte(cliTestFarm), 0o644); err != nil {
		t.Fatal(err)
	}
	f, diags := specs.LoadFarm(farmPath)
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	type ready struct {
		url    string
		tokens map[string]string
	}
	readyc := make(chan ready, 1)
	done := make(chan error, 1)
	dataDir := filepath.Join(dir, "data")
	go func() {
		done <- serve(ctx, serveConfig{farm: f, dataDir: dataDir, ln: ln, log: slog.New(slog.DiscardHandler), stdout: io.Discard,
			ready: func(ctx context.Context, url string, db *store.DB) error {
				toks := map[string]string{}
				for _, role := range farm.Roles {
					tok, _, err := farm.CreateToken(ctx, db, "cli-"+role, role, time.Now())
					if err != nil {
						return err
					}
					toks[role] = tok
				}
				readyc <- ready{url, toks}
				return nil
			}})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case r := <-readyc:
		return &cliServer{url: r.url, dataDir: dataDir, tokens: r.tokens}
	case err := <-done:
		t.Fatalf("serve ended before it was ready: %v", err)
	}
	return nil
}

// runCLI runs a hilfarm command line in-process.
func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

const examples = "../../examples"

func TestSubmitWaitEndToEnd(t *testing.T) {
	// Registered first, so it runs after the server's cleanup.
	t.Cleanup(func() { goleak.VerifyNone(t) })
	s := startCLIServer(t)
	sub := s.tokens[farm.RoleSubmitter]
	dir := t.TempDir()

	t.Run("good candidate passes: exit 0", func(t *testing.T) {
		junit, js := filepath.Join(dir, "good.xml"), filepath.Join(dir, "good.json")
		code, out, errs := runCLI("submit", "--server", s.url, "--token", sub,
			"--firmware", examples+"/firmware/sim-good.hcl", "--fw-version", "1.1.0",
			"--spec", examples+"/specs/measure.hcl", "--label", "commit=abc", "--wait", "--junit", junit, "--json", js)
		if code != exitOK {
			t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out, errs)
		}
		first, _, _ := strings.Cut(out, "\n")
		if !strings.HasPrefix(first, s.url+"/jobs/") {
			t.Errorf("first line %q is not the job URL", first)
		}
		for _, want := range []string{"== job queued", "== job running on sim-", "measure temp_c = 23.5 degC (pass)", "temp=23.5C", "== job passed", "passed\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		x, err := os.ReadFile(junit)
		if err != nil || !bytes.Contains(x, []byte("<testsuite")) {
			t.Errorf("junit file: %v %q", err, x)
		}
		var j jobJSON
		b, err := os.ReadFile(js)
		if err != nil || json.Unmarshal(b, &j) != nil || j.State != store.StatePassed || j.Labels["commit"] != "abc" || len(j.Attempts) != 1 {
			t.Errorf("json file: %v %s", err, b)
		}
	})

	t.Run("regressed candidate fails: exit 1", func(t *testing.T) {
		code, out, errs := runCLI("submit", "--server", s.url, "--token", sub,
			"--firmware", examples+"/firmware/sim-regressed.hcl", "--spec", examples+"/specs/measure.hcl", "--wait")
		if code != exitFailed {
			t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errs)
		}
		if !strings.Contains(out, "temp_c = 87 degC (fail)") || !strings.Contains(out, "failed") {
			t.Errorf("output:\n%s", out)
		}
	})

	t.Run("bad spec is rejected: exit 3 with diagnostics", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.hcl")
		os.WriteFile(bad, []byte("spec \"x\" {\n  board { type = \"sim\" }\n  timeuot = \"1m\"\n}\n"), 0o644)
		code, out, errs := runCLI("submit", "--server", s.url, "--token", sub, "--firmware", examples+"/firmware/sim-good.hcl", "--spec", bad, "--wait")
		if code != exitRejected {
			t.Fatalf("exit %d, want 3\nstdout:\n%s\nstderr:\n%s", code, out, errs)
		}
		if !strings.Contains(errs, "bad.hcl:3:3: error: Unsupported argument") || !strings.Contains(errs, "3 |   timeuot = \"1m\"\n       |   ^^^^^^^\n") {
			t.Errorf("stderr lacks the diagnostic:\n%s", errs)
		}
	})

	t.Run("viewer may not submit: exit 3", func(t *testing.T) {
		code, _, errs := runCLI("submit", "--server", s.url, "--token", s.tokens[farm.RoleViewer], "--firmware", examples+"/firmware/sim-good.hcl", "--spec", examples+"/specs/boot-smoke.hcl")
		if code != exitRejected || !strings.Contains(errs, "403") {
			t.Errorf("exit %d, stderr %q; want 3 and a 403", code, errs)
		}
	})

	t.Run("jobs, job, boards, maintenance, cancel", func(t *testing.T) {
		t.Setenv("HILFARM_SERVER", s.url)
		t.Setenv("HILFARM_TOKEN", s.tokens[farm.RoleOperator])
		code, out, errs := runCLI("jobs", "--state", "passed")
		if code != 0 || !strings.Contains(out, "measure") || strings.Count(out, "\n") != 2 {
			t.Errorf("jobs: %d %q %q", code, out, errs)
		}
		code, out, _ = runCLI("boards")
		if code != 0 || !strings.Contains(out, "sim-a") || !strings.Contains(out, "idle") {
			t.Errorf("boards: %d %q", code, out)
		}
		for _, b := range []string{"sim-a", "sim-b"} {
			code, out, errs = runCLI("board", b, "maintenance", "on", "--reason", "rewiring")
			if code != 0 || !strings.Contains(out, "maintenance") {
				t.Fatalf("maintenance on: %d %q %q", code, out, errs)
			}
		}
		code, out, _ = runCLI("board", "sim-a")
		if code != 0 || !strings.Contains(out, "rewiring") {
			t.Errorf("board: %d %q", code, out)
		}
		// With every board in maintenance a job stays queued; cancel it.
		code, out, errs = runCLI("submit", "--firmware", examples+"/firmware/sim-good.hcl", "--spec", examples+"/specs/boot-smoke.hcl")
		if code != 0 {
			t.Fatalf("submit: %d %q %q", code, out, errs)
		}
		id := strings.TrimPrefix(strings.TrimSpace(out), s.url+"/jobs/")
		code, out, _ = runCLI("job", id)
		if code != 0 || !strings.Contains(out, "queued") || !strings.Contains(out, "position 1") {
			t.Errorf("job: %d %q", code, out)
		}
		code, out, errs = runCLI("cancel", id)
		if code != 0 || !strings.Contains(out, "cancelled") {
			t.Errorf("cancel: %d %q %q", code, out, errs)
		}
		code, out, _ = runCLI("job", "--wait", id)
		if code != exitInfra || !strings.Contains(out, "cancelled") {
			t.Errorf("job --wait of a cancelled job: %d %q", code, out)
		}
		code, _, errs = runCLI("cancel", id)
		if code != exitRejected || !strings.Contains(errs, "409") {
			t.Errorf("second cancel: %d %q", code, errs)
		}
		code, _, errs = runCLI("job", "nope")
		if code != exitRejected || !strings.Contains(errs, "404") {
			t.Errorf("unknown job: %d %q", code, errs)
		}
		for _, b := range []string{"sim-a", "sim-b"} {
			if code, out, errs = runCLI("board", b, "maintenance", "off"); code != 0 || !strings.Contains(out, "idle") {
				t.Errorf("maintenance off: %d %q %q", code, out, errs)
			}
		}
	})

	t.Run("token create, list, revoke", func(t *testing.T) {
		code, tok, errs := runCLI("token", "create", "--name", "ci-main", "--role", "submitter", "--data", s.dataDir)
		if code != 0 || !strings.HasPrefix(tok, "hf_") {
			t.Fatalf("create: %d %q %q", code, tok, errs)
		}
		tok = strings.TrimSpace(tok)
		code, _, _ = runCLI("boards", "--server", s.url, "--token", tok)
		if code != 0 {
			t.Fatalf("the new token does not work: %d", code)
		}
		code, out, _ := runCLI("token", "list", "--data", s.dataDir)
		if code != 0 || !strings.Contains(out, "ci-main") || strings.Contains(out, tok) {
			t.Errorf("list: %d %q", code, out)
		}
		if code, out, errs = runCLI("token", "revoke", "--data", s.dataDir, tok); code != 0 {
			t.Fatalf("revoke: %d %q %q", code, out, errs)
		}
		code, _, errs = runCLI("boards", "--server", s.url, "--token", tok)
		if code != exitRejected || !strings.Contains(errs, "401") {
			t.Errorf("revoked token: %d %q", code, errs)
		}
		if code, _, _ = runCLI("token", "create", "--name", "x", "--role", "root", "--data", s.dataDir); code == 0 {
			t.Error("a token with role root was created")
		}
	})
}

// TestFollowResumes serves a job's events over a websocket that drops the
// first connection mid-stream: follow reconnects with ?after= and sees every
// event once.
func TestFollowResumes(t *testing.T) {
	defer goleak.VerifyNone(t)
	ev := func(seq int64, typ, data string) store.Event {
		return store.Event{Seq: seq, Type: typ, Data: json.RawMessage(data)}
	}
	all := []store.Event{
		ev(1, "state", `{"state":"queued"}`),
		ev(2, "state", `{"state":"running","board":"sim-a","attempt":1}`),
		ev(3, "console", `{"data":"hello\n"}`),
		ev(4, "console", `{"data":"world\n"}`),
		ev(5, "state", `{"state":"failed"}`),
	}
	var mu sync.Mutex
	var afters []string
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		afters = append(afters, r.URL.Query().Get("after"))
		first := len(afters) == 1
		mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, `{"error":"no"}`, http.StatusUnauthorized)
			return
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		var after int64
		json.Unmarshal([]byte(r.URL.Query().Get("after")), &after)
		for _, e := range all {
			if e.Seq <= after {
				continue
			}
			if first && e.Seq == 4 {
				return // drop the connection without a close frame
			}
			b, _ := json.Marshal(e)
			if c.WriteMessage(websocket.TextMessage, b) != nil {
				return
			}
		}
		c.ReadMessage() // until the client closes
	}))
	defer srv.Close()
	c, err := newClient(srv.URL, "tok")
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	state, err := c.follow(context.Background(), "j1", 0, true, func(e store.Event) error {
		got = append(got, e.Seq)
		return nil
	})
	if err != nil || state != "failed" {
		t.Fatalf("follow = %q, %v; want failed", state, err)
	}
	if want := []int64{1, 2, 3, 4, 5}; !equalSeqs(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	mu.Lock()
	if len(afters) != 2 || afters[0] != "0" || afters[1] != "3" {
		t.Errorf("connections asked after=%v, want [0 3]", afters)
	}
	mu.Unlock()

	bad, _ := newClient(srv.URL, "wrong")
	if _, err := bad.follow(context.Background(), "j1", 0, true, func(store.Event) error { return nil }); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("follow with a bad token = %v, want a 401 at once", err)
	}
}

func equalSeqs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
