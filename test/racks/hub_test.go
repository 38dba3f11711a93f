package racks

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

const hubFarm = `farm "front" {
  listen   = %q
  data_dir = "data"
}

hub {
  listen = %q
  dir    = %q
}
`

// hubProc is the `hilfarm serve` whose farm.hcl has a hub block.
type hubProc struct {
	dir, addr, leaf string
	cmd             *exec.Cmd
	log             *lockedBuffer
	done            chan error
}

// startHub starts `hilfarm serve` as the hub (no boards of its own) and
// returns once it serves.
func startHub(t testing.TB, caDir string) *hubProc {
	t.Helper()
	h := &hubProc{dir: t.TempDir(), addr: freeAddr(t), leaf: freeAddr(t)}
	if err := os.WriteFile(filepath.Join(h.dir, "farm.hcl"), fmt.Appendf(nil, hubFarm, h.addr, h.leaf, caDir), 0o644); err != nil {
		t.Fatal(err)
	}
	h.start(t, t)
	return h
}

// start runs `hilfarm serve` in the hub's directory (again, after a stop)
// and returns once it serves. The process is killed at owner's cleanup if
// still there (owner: the test the hub outlives a subtest of).
func (h *hubProc) start(t, owner testing.TB) {
	t.Helper()
	h.log, h.done = &lockedBuffer{}, make(chan error, 1)
	cmd := exec.Command(binary, "serve", "--farm", "farm.hcl")
	cmd.Dir = h.dir
	cmd.Env = append(os.Environ(), "TMPDIR="+owner.TempDir())
	log, done := h.log, h.done
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.cmd = cmd
	go func() { done <- cmd.Wait() }()
	owner.Cleanup(func() {
		_ = cmd.Process.Kill() // ErrProcessDone once it exited
		err := <-done
		done <- err
		if owner.Failed() {
			owner.Logf("hub serve log:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(log.String(), "hilfarm serving") {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("hub: hilfarm serve exited: %v\n%s", err, log.String())
		case <-time.After(20 * time.Millisecond): // waiting for another process
		}
		if time.Now().After(deadline) {
			t.Fatalf("hub: not serving after 60s:\n%s", log.String())
		}
	}
}

// stop SIGTERMs the hub as an operator would and waits for a clean exit.
func (h *hubProc) stop(t testing.TB) {
	t.Helper()
	if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-h.done:
		h.done <- err
		if err != nil {
			t.Errorf("hub serve after SIGTERM: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatalf("hub serve still running 1 min after SIGTERM")
	}
}

// cli runs the real hilfarm in the hub's directory and returns its exit
// code and output.
func (h *hubProc) cli(t testing.TB, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = h.dir
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("hilfarm %s: %v", strings.Join(args, " "), err)
	return 0, ""
}

// hubJob is a job as the hub's API shows it.
type hubJob struct {
	ID       string            `json:"id"`
	State    string            `json:"state"`
	Board    string            `json:"board"`
	Reason   string            `json:"reason"`
	Labels   map[string]string `json:"labels"`
	Attempts []struct {
		N      int    `json:"n"`
		Board  string `json:"board"`
		State  string `json:"state"`
		Reason string `json:"reason"`
	} `json:"attempts"`
}

// TestHubAsProcess: the hub and two racks are real `hilfarm serve`
// processes, and CI talks to the hub only, with `hilfarm submit --wait`
// over HTTP. A good firmware passes and a regressed one fails on a rack's
// sim board, each verdict with the rack and board that ran it; a type no
// rack and no local board has is rejected naming the types there are; the
// hub lists the racks' boards; a running rack job cannot be cancelled (and
// says so); a hub restarted mid-job follows the job again to its verdict;
// every process ends.
func TestHubAsProcess(t *testing.T) {
	parent := t
	t0 := time.Now()
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	hilfarm(t, dir, "ca", "init", "--dir", caDir, "--host", "127.0.0.1")
	for _, n := range []string{"r1", "r2"} {
		hilfarm(t, dir, "rack", "add", n, "--type", "sim", "--dir", caDir)
	}
	hub := startHub(t, caDir)
	racks := map[string]*rackProc{}
	for _, n := range []string{"r1", "r2"} {
		racks[n] = startRack(t, n, "tls://"+hub.leaf, filepath.Join(caDir, "bundles", n))
	}
	t.Logf("hub and 2 racks up in %v", time.Since(t0).Round(time.Millisecond))
	token := strings.TrimSpace(hilfarm(t, hub.dir, "token", "create", "--farm", "farm.hcl", "--name", "ci", "--role", "submitter"))
	server := "http://" + hub.addr
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	measure := abs(examples + "/specs/measure.hcl")
	detail := regexp.MustCompile(`^(passed|failed) on (r[12])/sim-a \(job [^)]+\)`)

	for _, c := range []struct {
		fw, state string
		code      int
	}{
		{"sim-good.hcl", "passed", 0},
		{"sim-regressed.hcl", "failed", 1},
	} {
		t.Run(c.fw, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "job.json")
			start := time.Now()
			code, log := hub.cli(t, "submit", "--server", server, "--token", token,
				"--firmware", abs(examples+"/firmware/"+c.fw), "--spec", measure, "--wait", "--json", out)
			t.Logf("submit --wait of %s: exit %d after %v", c.fw, code, time.Since(start).Round(time.Millisecond))
			if code != c.code {
				t.Fatalf("hilfarm submit --wait (%s): exit %d, want %d:\n%s", c.fw, code, c.code, log)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			var j hubJob
			if err := json.Unmarshal(b, &j); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			m := detail.FindStringSubmatch(j.Reason)
			if j.State != c.state || m == nil || m[1] != c.state || j.Board != m[2]+"/sim-a" || j.Labels["hub-job"] != j.ID ||
				len(j.Attempts) != 1 || j.Attempts[0].State != c.state || j.Attempts[0].Board != j.Board {
				t.Fatalf("job at the hub: %s; want %s on rN/sim-a, one attempt, the detail naming rack and board", b, c.state)
			}
			// The rack that ran it has the local job of it.
			if lj := racks[m[2]].jobsLabelled(t, "hub-job="+j.ID); len(lj) != 1 || lj[0].State != c.state {
				t.Errorf("rack %s's local jobs of %s: %+v; want one, %s", m[2], j.ID, lj, c.state)
			}
		})
	}

	// submitSlow submits a job whose "slow" command answers after 3 s,
	// without waiting, and returns its id.
	submitSlow := func(t *testing.T) string {
		t.Helper()
		slow := filepath.Join(t.TempDir(), "slow.hcl")
		spec := filepath.Join(t.TempDir(), "slow-spec.hcl")
		if err := os.WriteFile(slow, []byte(slowModel), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(spec, []byte(slowSpec), 0o644); err != nil {
			t.Fatal(err)
		}
		code, log := hub.cli(t, "submit", "--server", server, "--token", token, "--firmware", slow, "--spec", spec)
		if code != 0 {
			t.Fatalf("submit: exit %d:\n%s", code, log)
		}
		m := regexp.MustCompile(`/jobs/([A-Za-z0-9_-]+)`).FindStringSubmatch(log)
		if m == nil {
			t.Fatalf("submit printed no job URL:\n%s", log)
		}
		return m[1]
	}

	t.Run("the hub lists the racks' boards", func(t *testing.T) {
		start := time.Now()
		for {
			req, _ := http.NewRequest("GET", server+"/api/v1/boards", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var boards []struct{ Name, Type, Rack, State string }
			if err := json.Unmarshal(b, &boards); err != nil {
				t.Fatalf("GET /api/v1/boards: %s: %v", b, err)
			}
			got := map[string]string{}
			for _, bd := range boards {
				got[bd.Name] = bd.Rack + " " + bd.Type
			}
			if got["r1/sim-a"] == "r1 sim" && got["r2/sim-a"] == "r2 sim" && len(boards) == 2 {
				t.Logf("both racks' boards listed at the hub %v after the check began", time.Since(start).Round(time.Millisecond))
				return
			}
			if time.Since(start) > time.Minute {
				t.Fatalf("GET /api/v1/boards at the hub after 1 min: %s; want r1/sim-a and r2/sim-a of type sim with their rack", b)
			}
			time.Sleep(100 * time.Millisecond) // polling another process's API
		}
	})

	t.Run("a type neither local nor on a rack is rejected", func(t *testing.T) {
		src, err := os.ReadFile(measure)
		if err != nil {
			t.Fatal(err)
		}
		spec := filepath.Join(t.TempDir(), "stm32.hcl")
		if err := os.WriteFile(spec, []byte(strings.Replace(string(src), `type = "sim"`, `type = "stm32"`, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		code, log := hub.cli(t, "submit", "--server", server, "--token", token,
			"--firmware", abs(examples+"/firmware/sim-good.hcl"), "--spec", spec)
		if code != 3 || !strings.Contains(log, "racks linked to this hub have board types sim") {
			t.Errorf("submit --type stm32: exit %d:\n%s\nwant 3 and the rack types", code, log)
		}
	})

	t.Run("a running rack job is cancelled at its rack", func(t *testing.T) {
		id := submitSlow(t)
		var ran *rackProc
		for ran == nil {
			for _, r := range racks {
				if r.logged("rack: job from the hub running", "hub_job="+id) {
					ran = r
				}
			}
			select {
			case <-hub.done:
				t.Fatal("hub exited")
			case <-time.After(20 * time.Millisecond): // waiting for another process
			}
		}
		start := time.Now()
		req, _ := http.NewRequest("POST", server+"/api/v1/jobs/"+id+"/cancel", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var j hubJob
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &j) != nil || j.State != "cancelled" {
			t.Fatalf("cancel of rack job %s: %s %s; want 200 and the job cancelled", id, resp.Status, body)
		}
		t.Logf("cancel answered in %v: %s", time.Since(start).Round(time.Millisecond), j.Reason)
		// The rack stopped its run: its agent says so and its local job of
		// it ends cancelled (the slow command would take 3 s).
		for !ran.logged("attempt cancelled at the hub", id) || !ran.logged("result queued", "verdict=cancelled") {
			if time.Since(start) > time.Minute {
				t.Fatalf("rack %s did not stop the cancelled attempt of %s in 1 min:\n%s", ran.name, id, ran.log.String())
			}
			time.Sleep(20 * time.Millisecond) // waiting for another process
		}
		t.Logf("rack %s stopped the run %v after the cancel", ran.name, time.Since(start).Round(time.Millisecond))
		code, b := hub.cli(t, "job", "--server", server, "--token", token, "--json", id)
		if err := json.Unmarshal([]byte(b), &j); code != 0 || err != nil || j.State != "cancelled" {
			t.Errorf("rack job %s after its cancel: exit %d, %s (%v); want cancelled", id, code, b, err)
		}
	})

	t.Run("hub restarted mid-job: the job is followed again and decided once", func(t *testing.T) {
		id := submitSlow(t)
		// Restart the hub once the job runs at a rack; the slow command
		// takes 3 s, so the restart lands mid-job.
		for !racks["r1"].logged("rack: job from the hub running", "hub_job="+id) && !racks["r2"].logged("rack: job from the hub running", "hub_job="+id) {
			select {
			case <-hub.done:
				t.Fatal("hub exited")
			case <-time.After(20 * time.Millisecond): // waiting for another process
			}
		}
		start := time.Now()
		hub.stop(t)
		hub.start(t, parent)
		t.Logf("hub restarted in %v", time.Since(start).Round(time.Millisecond))
		if code, log := hub.cli(t, "job", "--server", server, "--token", token, "--wait", id); code != 0 {
			t.Fatalf("hilfarm job --wait %s after the hub restarted: exit %d, want 0 (passed):\n%s", id, code, log)
		}
		t.Logf("job %s passed %v after the hub's restart began", id, time.Since(start).Round(time.Millisecond))
		code, b := hub.cli(t, "job", "--server", server, "--token", token, "--json", id)
		var j hubJob
		if err := json.Unmarshal([]byte(b), &j); code != 0 || err != nil || j.State != "passed" || len(j.Attempts) != 2 ||
			j.Attempts[0].State != "error" || j.Attempts[0].Reason != "controller restarted" || j.Attempts[1].State != "passed" ||
			!strings.HasSuffix(j.Board, "/sim-a") {
			t.Errorf("rack job %s after the hub's restart: exit %d, %s (%v); want passed on rN/sim-a, attempt 1 error (controller restarted), attempt 2 passed", id, code, b, err)
		}
	})

	// Stop the hub as an operator would: SIGTERM, a clean exit, its leaf
	// listener closed. The racks are stopped and reaped by their cleanups.
	hub.stop(t)
	if c, err := net.Dial("tcp", hub.leaf); err == nil {
		c.Close()
		t.Errorf("hub leaf listener %s accepts after serve exited", hub.leaf)
	}
	t.Logf("whole test %v", time.Since(t0).Round(time.Millisecond))
}
