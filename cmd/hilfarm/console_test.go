package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/internal/testrig"
	"go.uber.org/goleak"
)

// watched is an io.Writer whose content can be waited for.
type watched struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	kick chan struct{}
}

func newWatched() *watched { return &watched{kick: make(chan struct{}, 1)} }

func (w *watched) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
	return w.buf.Write(p)
}

func (w *watched) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitFor waits until the text from offset from on contains want.
func (w *watched) waitFor(t *testing.T, from int, want string) {
	t.Helper()
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	for {
		s := w.String()
		if strings.Contains(s[min(from, len(s)):], want) {
			return
		}
		select {
		case <-w.kick:
		case <-deadline.C:
			t.Fatalf("waiting for %q; have %q", want, s)
		}
	}
}

func TestConsoleAttach(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) }) // after the server stopped
	srv := startCLIServer(t)
	ctx := context.Background()
	op, err := newClient(srv.url, srv.tokens["operator"])
	if err != nil {
		t.Fatal(err)
	}
	// The terminal websocket comes with the UI's routes (farm.API.uiRoutes).
	req, _ := op.newRequest(ctx, http.MethodGet, "/api/v1/boards/sim-a/terminal", nil)
	if resp, err := op.http.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			msg := "hilfarm serve does not mount the UI's routes yet (farm.API.routes must call a.uiRoutes())"
			if testrig.InCI() {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}

	// A job flashes the good firmware onto a board; nobody holds it yet.
	job, err := op.submit(ctx, examples+"/firmware/sim-good.hcl", examples+"/specs/boot-smoke.hcl", submitOptions{}, "")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := op.follow(ctx, job.ID, 0, true, func(store.Event) error { return nil }); err != nil || st != store.StatePassed {
		t.Fatalf("flash job: %s %v", st, err)
	}
	var done0 jobJSON
	if err := op.call(ctx, http.MethodGet, "/api/v1/jobs/"+job.ID, nil, &done0); err != nil {
		t.Fatal(err)
	}
	board := done0.Board
	// A viewer attaches read-only, and its keys are not sent.
	viewer, _ := newClient(srv.url, srv.tokens["viewer"])
	vin, vkeys := io.Pipe()
	vout, verr := newWatched(), newWatched()
	vdone := make(chan error, 1)
	go func() { vdone <- viewer.attach(ctx, board, newKeys(vin), vout, verr) }()
	verr.waitFor(t, 0, "read-only (hold it with --hold to type)")
	vkeys.Write([]byte("reboot\r"))
	verr.waitFor(t, 0, "keystrokes are not sent")

	// The operator holds the board, powers it and types through attach.
	if err := op.call(ctx, http.MethodPost, "/api/v1/boards/"+board+"/hold", map[string]string{"duration": "5m", "reason": "console test"}, nil); err != nil {
		t.Fatal(err)
	}
	in, keys := io.Pipe()
	out, errw := newWatched(), newWatched()
	done := make(chan error, 1)
	go func() { done <- op.attach(ctx, board, newKeys(in), out, errw) }()
	errw.waitFor(t, 0, "you hold it")
	out.waitFor(t, 0, "-- hold ")
	from := strings.Index(out.String(), "-- hold ")
	if err := op.call(ctx, http.MethodPost, "/api/v1/boards/"+board+"/power", map[string]string{"action": "cycle"}, nil); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, from, "Booting hilfarm-sim v1.1.0\r\nsim> ")
	keys.Write([]byte("echo via-cli\r"))
	out.waitFor(t, from, "via-cli\r\nsim> ")
	vout.waitFor(t, 0, "via-cli\r\nsim> ")
	// Ctrl-] detaches; attach returns without an error.
	keys.Write([]byte{'x', detachKey})
	if err := <-done; err != nil {
		t.Errorf("attach: %v", err)
	}
	errw.waitFor(t, 0, "detached from "+board)
	keys.Close()
	vkeys.Write([]byte{detachKey})
	if err := <-vdone; err != nil {
		t.Errorf("viewer attach: %v", err)
	}
	vkeys.Close()
	if err := op.call(ctx, http.MethodDelete, "/api/v1/boards/"+board+"/hold", nil, nil); err != nil {
		t.Fatal(err)
	}

	// console --log from a script: stdin at EOF at once (as </dev/null)
	// does not detach; the console goes to the file until ctx ends.
	t.Run("--log with stdin at EOF", func(t *testing.T) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
		oldStdin := os.Stdin
		os.Stdin = r
		defer func() { os.Stdin = oldStdin; r.Close() }()
		logPath := filepath.Join(t.TempDir(), "console.log")
		lctx, cancel := context.WithCancel(ctx)
		defer cancel()
		lout, lerr := newWatched(), newWatched()
		ldone := make(chan error, 1)
		go func() {
			ldone <- runConsole(lctx, []string{board, "--log", logPath, "--server", srv.url, "--token", srv.tokens["viewer"]}, lout, lerr)
		}()
		lout.waitFor(t, 0, "via-cli")
		lerr.waitFor(t, 0, "read-only")
		from := len(lout.String())
		// Still attached after stdin's end: a new hold shows up live.
		if err := op.call(ctx, http.MethodPost, "/api/v1/boards/"+board+"/hold", map[string]string{"duration": "5m", "reason": "log test"}, nil); err != nil {
			t.Fatal(err)
		}
		lout.waitFor(t, from, "log test")
		if err := op.call(ctx, http.MethodDelete, "/api/v1/boards/"+board+"/hold", nil, nil); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := <-ldone; err != nil {
			t.Errorf("console --log: %v", err)
		}
		if strings.Contains(lerr.String(), "detached") {
			t.Errorf("console --log detached at stdin EOF: %q", lerr.String())
		}
		logged, err := os.ReadFile(logPath)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(lout.String(), string(logged)) || !strings.Contains(string(logged), "log test") || strings.Contains(string(logged), "\x1b[36m") {
			t.Errorf("log file %q does not hold the console as shown (%q), uncoloured", logged, lout.String())
		}
	})

	// Bad use.
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"console", "--server", srv.url}, exitInfra, "one board name"},
		{[]string{"console", "--server", srv.url, "--hold", "5m", "sim-a"}, exitInfra, "--hold needs --reason"},
		// Refused by the farm, and would be again: exit 3, with what to do.
		{[]string{"console", "--server", srv.url, "--token", srv.tokens["viewer"], "--hold", "5m", "--reason", "x", "sim-a"}, exitRejected, "needs role operator"},
	} {
		code, _, stderr := runCLI(c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, stderr, c.code, c.want)
		}
	}
}
