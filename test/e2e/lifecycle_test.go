package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestKill9RetriesOnTheSameBoardThenPoison: a job interrupted by kill -9 is
// not kept off the board it ran on (a restart is not the board's fault):
// with the other board in maintenance it runs there again at once. A
// second kill -9 during it makes it a poison job: it ends error, saying
// so, and is not run a third time.
func TestKill9RetriesOnTheSameBoardThenPoison(t *testing.T) {
	f := newFarm(t, 2)
	s := f.serve(t)
	tok := f.token(t, "submitter")
	op := f.token(t, "operator")
	if _, err := f.hilfarm(t, "board", "--server", "http://"+f.addr, "--token", op, "sim-01", "maintenance", "on", "--reason", "relay swap"); err != nil {
		t.Fatal(err)
	}
	id := f.submit(t, tok, "hang.hcl")
	f.waitState(t, tok, id, "running")
	if j := f.job(t, tok, id); j.Board != "sim-00" {
		t.Fatalf("job runs on %s, want sim-00", j.Board)
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done

	s = f.serve(t)
	f.waitAttempt(t, tok, id, 2) // never happened before the fix: it waited for sim-01
	if j := f.job(t, tok, id); j.Board != "sim-00" || len(j.Attempts) != 2 {
		t.Fatalf("after the restart: %s on %s with %d attempts, want running on sim-00 (attempt 2)", j.State, j.Board, len(j.Attempts))
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done

	f.serve(t)
	j := f.job(t, tok, id)
	if j.State != "error" || !strings.Contains(j.Reason, "controller restarts cut its attempts short twice") || len(j.Attempts) != 2 {
		t.Fatalf("after the second kill: %s (%q) with %d attempts; want error saying restarts cut it short twice", j.State, j.Reason, len(j.Attempts))
	}
	out, err := f.hilfarm(t, "boards", "--server", "http://"+f.addr, "--token", tok, "--json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `"name": "sim-00"`) || strings.Contains(out, "quarantined") {
		t.Errorf("boards after two restarts:\n%s", out)
	}
}

// TestSIGTERMSubmitWaitGetsTheVerdict: serve stopped with SIGTERM while
// `hilfarm submit --wait` follows a running job: the job's final state
// (error "controller shutting down") reaches the client, which prints it
// with its reason and exits 2 at once, instead of reconnecting for minutes.
func TestSIGTERMSubmitWaitGetsTheVerdict(t *testing.T) {
	f := newFarm(t, 1)
	s := f.serve(t)
	tok := f.token(t, "submitter")
	cmd := exec.Command(binary, "submit", "--server", "http://"+f.addr, "--token", tok, "--quiet",
		"--firmware", filepath.Join(f.dir, "fw.hcl"), "--spec", filepath.Join(f.dir, "hang.hcl"), "--wait")
	var out, errb lockedBuffer
	cmd.Stderr = &errb
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The job's URL is the first line, printed once it is queued.
	first := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		r := bufio.NewReader(stdout)
		line, err := r.ReadString('\n')
		out.Write([]byte(line))
		first <- strings.TrimSpace(line)
		if err == nil {
			io.Copy(&out, r)
		}
	}()
	done := make(chan error, 1)
	go func() {
		<-copied // Wait closes the pipe: read it all first
		done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-done
		}
	})
	var id string
	select {
	case u := <-first:
		id = u[strings.LastIndex(u, "/")+1:]
	case <-time.After(60 * time.Second):
		t.Fatalf("submit printed no job URL: %q", errb.String())
	}
	if id == "" {
		t.Fatalf("submit printed no job URL: %q", errb.String())
	}
	f.waitState(t, tok, id, "running")
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("submit --wait exit: %v, want status 2\n%s%s", err, out.String(), errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("submit --wait still running 30 s after the server's SIGTERM:\n%s%s", out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "job "+id+" error: controller shutting down") {
		t.Errorf("submit --wait output lacks the verdict and its reason:\n%s\nstderr:\n%s", out.String(), errb.String())
	}
	<-s.done
}

// waitAttempt follows the job's events until attempt n is running.
func (f *farmDir) waitAttempt(t testing.TB, token, id string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	hdr := http.Header{"Authorization": {"Bearer " + token}}
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+f.addr+"/api/v1/jobs/"+url.PathEscape(id)+"/events", hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() { <-ctx.Done(); conn.Close() }()
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("job %s: attempt %d never ran: %v (now %s)", id, n, err, f.job(t, token, id).State)
		}
		var ev struct {
			Type string `json:"type"`
			Data struct {
				State   string `json:"state"`
				Attempt int    `json:"attempt"`
			} `json:"data"`
		}
		json.Unmarshal(msg, &ev)
		if ev.Type == "state" && ev.Data.State == "running" && ev.Data.Attempt == n {
			return
		}
	}
}
