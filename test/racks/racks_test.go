// Package racks tests the rack side of a multi-rack farm with the real
// binary: `hilfarm serve` processes whose farm.hcl has a rack block dial a
// hub and run the jobs they pull on their sim boards. TestRacksAsProcesses
// uses an in-process rack.Hub; TestHubAsProcess runs the hub as a third
// `hilfarm serve` (a hub block) that CI reaches over HTTP only.
package racks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hilfarm/hilfarm/internal/testrig"
	"github.com/hilfarm/hilfarm/rack"
)

var binary string

func TestMain(m *testing.M) { testrig.MainWithBinary(m, &binary) }

const examples = "../../examples"

// ackWait is the hub's AckWait: a rack silent this long loses its job.
const ackWait = 4 * time.Second

// slowModel is a sim firmware whose "slow" command answers after 3 s, so a
// rack can be killed while the job runs.
const slowModel = `version   = "1.0.0"
banner    = "Booting hilfarm-sim v${version}"
boot_time = "10ms"
prompt    = "sim> "

command "slow" {
  response = "slow done"
  delay    = "3s"
}
`

const slowSpec = `spec "slow" {
  board { type = "sim" }
  timeout = "1m"
  setup {
    flash {}
    power "cycle" {}
    expect { text = "sim> " }
  }
  test "slow answer" {
    send { line = "slow" }
    expect {
      text   = "slow done"
      within = "30s"
    }
  }
}
`

const rackFarm = `farm %[1]q {
  listen   = %[2]q
  data_dir = "data"
}

board_type "sim" {}

board "sim-a" {
  type = "sim"
  emulator "sim" {}
}

rack %[1]q {
  hub         = %[3]q
  credentials = %[4]q
}
`

// lockedBuffer is a bytes.Buffer a process writes while the test reads it.
type lockedBuffer = testrig.LockedBuffer

// rackProc is one `hilfarm serve` that is a rack.
type rackProc struct {
	name, dir, addr string
	token           string // a viewer token of its API, once made
	cmd             *exec.Cmd
	log             *lockedBuffer
	done            chan error
}

func hilfarm(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("hilfarm %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startRack writes a farm.hcl with one sim board and a rack block and
// starts `hilfarm serve` on it; it returns once the rack agent runs.
func startRack(t testing.TB, name, hubURL, bundle string) *rackProc {
	t.Helper()
	r := &rackProc{name: name, dir: t.TempDir(), addr: freeAddr(t)}
	if err := os.WriteFile(filepath.Join(r.dir, "farm.hcl"), fmt.Appendf(nil, rackFarm, name, r.addr, hubURL, bundle), 0o644); err != nil {
		t.Fatal(err)
	}
	r.start(t)
	return r
}

// start runs `hilfarm serve` in the rack's directory (again, after a kill)
// and returns once its rack agent runs. The process is killed at cleanup.
func (r *rackProc) start(t testing.TB) {
	t.Helper()
	r.log, r.done = &lockedBuffer{}, make(chan error, 1)
	cmd := exec.Command(binary, "serve", "--farm", "farm.hcl", "--log-level", "debug")
	cmd.Dir = r.dir
	// Its run directory (sim ptys) goes under the test's temp dir: a
	// SIGKILLed serve cannot remove its own.
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	log, done := r.log, r.done
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.cmd = cmd
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // ErrProcessDone if it was killed or exited before
		err := <-done
		done <- err
		if t.Failed() {
			t.Logf("rack %s serve log:\n%s", r.name, log.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(log.String(), "rack agent started") {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("rack %s: hilfarm serve exited: %v\n%s", r.name, err, log.String())
		case <-time.After(20 * time.Millisecond): // waiting for another process
		}
		if time.Now().After(deadline) {
			t.Fatalf("rack %s: no rack agent after 60s:\n%s", r.name, log.String())
		}
	}
}

// kill SIGKILLs the process (if it still runs) and waits until it is reaped.
func (r *rackProc) kill() {
	_ = r.cmd.Process.Kill() // ErrProcessDone if it already exited
	err := <-r.done
	r.done <- err
}

// logged reports whether one line of the rack's log holds every part.
func (r *rackProc) logged(parts ...string) bool {
	for _, l := range strings.Split(r.log.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			return true
		}
	}
	return false
}

// jobsLabelled lists the rack's local jobs with label key=value.
func (r *rackProc) jobsLabelled(t testing.TB, kv string) []localJob {
	t.Helper()
	var out []localJob
	if err := json.Unmarshal(r.get(t, "/api/v1/jobs?label="+url.QueryEscape(kv)), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// localJob reads a job and its console from the rack's own API.
func (r *rackProc) localJob(t testing.TB, id string) localJob {
	t.Helper()
	var j localJob
	if err := json.Unmarshal(r.get(t, "/api/v1/jobs/"+url.PathEscape(id)), &j); err != nil {
		t.Fatal(err)
	}
	j.Console = string(r.get(t, "/api/v1/jobs/"+url.PathEscape(id)+"/console"))
	return j
}

// get GETs path from the rack's API with a viewer token.
func (r *rackProc) get(t testing.TB, path string) []byte {
	t.Helper()
	if r.token == "" {
		r.token = strings.TrimSpace(hilfarm(t, r.dir, "token", "create", "--farm", "farm.hcl", "--name", "test", "--role", "viewer"))
	}
	req, _ := http.NewRequest("GET", "http://"+r.addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("rack %s: GET %s: %s %s", r.name, path, resp.Status, body)
	}
	return body
}

// localJob is a job as a rack's API shows it, with its console.
type localJob struct {
	ID      string            `json:"id"`
	State   string            `json:"state"`
	Board   string            `json:"board"`
	Labels  map[string]string `json:"labels"`
	Started time.Time         `json:"started"`
	Console string            `json:"-"`
}

// detailRE reads the rack, board and local job from a verdict's detail.
var detailRE = regexp.MustCompile(`^(\w+) on ([a-z0-9_-]+)/([a-z0-9_-]+) \(job ([^)]+)\)`)

// farmOf starts a hub in-process (AckWait ackWait) and one `hilfarm serve`
// rack process per name, with credentials from `hilfarm ca init` and
// `hilfarm rack add`, and returns once every rack is linked.
func farmOf(t testing.TB, ctx context.Context, names ...string) (*rack.Hub, map[string]*rackProc) {
	t.Helper()
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	hilfarm(t, dir, "ca", "init", "--dir", caDir, "--host", "127.0.0.1")
	for _, n := range names {
		hilfarm(t, dir, "rack", "add", n, "--type", "sim", "--dir", caDir)
	}
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tlsc, err := rack.HubTLS(read(filepath.Join(caDir, rack.CACertFile)), read(filepath.Join(caDir, rack.HubCertFile)), read(filepath.Join(caDir, rack.HubKeyFile)))
	if err != nil {
		t.Fatal(err)
	}
	hubLog := &lockedBuffer{}
	hub, err := rack.NewHub(ctx, rack.HubConfig{
		DataDir: filepath.Join(dir, "hub"), LeafHost: "127.0.0.1", LeafPort: -1, TLS: tlsc,
		RacksDir: filepath.Join(caDir, "racks"), AckWait: ackWait,
		Logger: slog.New(slog.NewTextHandler(hubLog, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		hub.Close()
		if t.Failed() {
			t.Logf("hub log:\n%s", hubLog.String())
		}
	})
	hubURL := hub.LeafURL("127.0.0.1")
	racks := map[string]*rackProc{}
	for _, n := range names {
		racks[n] = startRack(t, n, hubURL, filepath.Join(caDir, "bundles", n))
	}
	for hub.Server().NumLeafNodes() < len(names) {
		select {
		case <-ctx.Done():
			t.Fatalf("the racks did not link to the hub: %d leaf links", hub.Server().NumLeafNodes())
		case <-time.After(20 * time.Millisecond): // waiting for other processes to dial
		}
	}
	return hub, racks
}

// TestRacksAsProcesses: a hub and two racks that are real `hilfarm serve`
// processes. A passing and a failing example job get their verdicts once,
// the console stays recorded at the rack that ran the job, and a rack
// SIGKILLed mid-job has its job retried on the other rack, decided once.
func TestRacksAsProcesses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	hub, racks := farmOf(t, ctx, "r1", "r2")
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	put := func(path string, src []byte) string {
		if src == nil {
			src = read(path)
		}
		d, err := hub.PutFirmware(ctx, bytes.NewReader(src))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	good := put(examples+"/firmware/sim-good.hcl", nil)
	regressed := put(examples+"/firmware/sim-regressed.hcl", nil)
	slow := put("", []byte(slowModel))
	measure := read(examples + "/specs/measure.hcl")

	decided := func(r rack.JobRecord) bool { return r.Verdict != "" }
	submit := func(id, fw string, spec []byte) {
		t.Helper()
		if _, err := hub.Submit(ctx, rack.Job{ID: id, Type: "sim", Firmware: fw, Spec: spec}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("verdicts as the spec dictates, console kept at the rack", func(t *testing.T) {
		submit("pass-1", good, measure)
		submit("fail-1", regressed, measure)
		for id, want := range map[string]string{"pass-1": "pass", "fail-1": "fail"} {
			rec, err := hub.WaitJob(ctx, id, decided)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Verdict != want || len(rec.Attempts) != 1 || rec.Attempts[0].State != "final" ||
				rec.DecidedBy != id+"#1" || rec.Attempts[0].Verdict != want {
				t.Fatalf("job %s: verdict %q decided by %s, attempts %+v; want %q by %s#1, one final attempt", id, rec.Verdict, rec.DecidedBy, rec.Attempts, want, id)
			}
			m := detailRE.FindStringSubmatch(rec.Detail)
			wantState := map[string]string{"pass": "passed", "fail": "failed"}[want]
			if m == nil || m[1] != wantState || m[2] != rec.Attempts[0].Rack || m[3] != "sim-a" {
				t.Fatalf("job %s: detail %q; want %q on %s/sim-a (job ...)", id, rec.Detail, wantState, rec.Attempts[0].Rack)
			}
			lj := racks[m[2]].localJob(t, m[4])
			state, board, console, labels := lj.State, lj.Board, lj.Console, lj.Labels
			if state != wantState || board != "sim-a" || labels["hub-job"] != id || labels["rack"] != m[2] {
				t.Errorf("job %s at rack %s: local job %s is %s on %q, labels %v", id, m[2], m[4], state, board, labels)
			}
			wantTemp := map[string]string{"pass": "temp=23.5C", "fail": "temp=87.0C"}[want]
			if !strings.Contains(console, "Booting hilfarm-sim") || !strings.Contains(console, wantTemp) {
				t.Errorf("job %s: the rack's console of local job %s lacks the boot banner or %q:\n%s", id, m[4], wantTemp, console)
			}
		}
		if st := hub.Stats(); st.Duplicates != 0 || st.Rejected != 0 {
			t.Errorf("hub stats %+v: want no duplicate or rejected results", st)
		}
	})

	t.Run("rack SIGKILLed mid-job: retried on the other rack, decided once", func(t *testing.T) {
		submit("slow-1", slow, []byte(slowSpec))
		rec, err := hub.WaitJob(ctx, "slow-1", func(r rack.JobRecord) bool { return len(r.Attempts) > 0 })
		if err != nil {
			t.Fatal(err)
		}
		victim := rec.Attempts[0].Rack
		other := map[string]string{"r1": "r2", "r2": "r1"}[victim]
		// Kill once the job runs on the victim's board; its "slow" command
		// takes 3 s, so the kill lands mid-job.
		for !racks[victim].logged("rack: job from the hub running", "hub_job=slow-1") {
			select {
			case <-ctx.Done():
				t.Fatalf("slow-1 never ran at rack %s", victim)
			case <-time.After(20 * time.Millisecond): // waiting for another process
			}
		}
		racks[victim].kill()
		rec, err = hub.WaitJob(ctx, "slow-1", decided)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Verdict != "pass" || len(rec.Attempts) != 2 || rec.DecidedBy != "slow-1#2" {
			t.Fatalf("slow-1: verdict %q by %s, attempts %+v; want pass by slow-1#2 after 2 attempts", rec.Verdict, rec.DecidedBy, rec.Attempts)
		}
		a1, a2 := rec.Attempts[0], rec.Attempts[1]
		if a1.Rack != victim || a1.State != "superseded" || a1.Verdict != "" {
			t.Errorf("attempt 1 %+v: want the killed rack %s's, superseded, without a verdict", a1, victim)
		}
		if a2.Rack != other || a2.State != "final" || a2.Verdict != "pass" {
			t.Errorf("attempt 2 %+v: want rack %s's, final, pass", a2, other)
		}

		// The killed rack comes back: it cancels the local job it was
		// running for the hub (the hub retried it), reports nothing for it,
		// and links again.
		racks[victim].start(t)
		for hub.Server().NumLeafNodes() < 2 {
			select {
			case <-ctx.Done():
				t.Fatalf("rack %s did not link again", victim)
			case <-time.After(20 * time.Millisecond): // waiting for another process to dial
			}
		}
		left := racks[victim].jobsLabelled(t, "hub-job=slow-1")
		if len(left) != 1 || left[0].State != "cancelled" {
			t.Errorf("rack %s's local jobs of slow-1 after its restart: %+v; want one, cancelled", victim, left)
		}
		// A job after the restart: decided once, wherever it runs.
		submit("pass-2", good, measure)
		if rec, err := hub.WaitJob(ctx, "pass-2", decided); err != nil || rec.Verdict != "pass" || len(rec.Attempts) != 1 {
			t.Errorf("pass-2 after the restart: %+v, %v; want pass in one attempt", rec, err)
		}
		if rec, _ := hub.Job("slow-1"); rec.Verdict != "pass" || rec.DecidedBy != "slow-1#2" || len(rec.Attempts) != 2 {
			t.Errorf("slow-1 changed after the restart: %+v", rec)
		}
	})

	// Every job: one verdict, decided by its one final attempt.
	for _, j := range hub.Jobs() {
		finals := 0
		for _, a := range j.Attempts {
			if a.State == "final" {
				finals++
				if j.DecidedBy != a.ID || j.Verdict != a.Verdict {
					t.Errorf("job %s: final attempt %s (%s) but decided by %s (%s)", j.ID, a.ID, a.Verdict, j.DecidedBy, j.Verdict)
				}
			}
		}
		if finals != 1 || j.Verdict == "" {
			t.Errorf("job %s: %d final attempts, verdict %q; want exactly one", j.ID, finals, j.Verdict)
		}
	}
	if st := hub.Stats(); st.Duplicates != 0 || st.Rejected != 0 {
		t.Errorf("hub stats %+v: want no duplicate or rejected results", st)
	}
}

// BenchmarkHubToRack measures, with one rack process and one sim board,
// one job at a time (boot-smoke.hcl on sim-good.hcl): hub Submit → the
// rack's claim of the attempt, → the local job's start at the rack (its
// board leased; power-on follows as the spec's first steps), and → the
// verdict at the hub.
func BenchmarkHubToRack(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	hub, racks := farmOf(b, ctx, "r1")
	src, err := os.ReadFile(examples + "/firmware/sim-good.hcl")
	if err != nil {
		b.Fatal(err)
	}
	fw, err := hub.PutFirmware(ctx, bytes.NewReader(src))
	if err != nil {
		b.Fatal(err)
	}
	spec, err := os.ReadFile(examples + "/specs/boot-smoke.hcl")
	if err != nil {
		b.Fatal(err)
	}
	var claim, start, verdict []time.Duration
	n := 0
	for b.Loop() {
		n++
		id := fmt.Sprintf("bench-%d", n)
		t0 := time.Now()
		if _, err := hub.Submit(ctx, rack.Job{ID: id, Type: "sim", Firmware: fw, Spec: spec}); err != nil {
			b.Fatal(err)
		}
		rec, err := hub.WaitJob(ctx, id, func(r rack.JobRecord) bool { return r.Verdict != "" })
		if err != nil {
			b.Fatal(err)
		}
		verdict = append(verdict, time.Since(t0))
		m := detailRE.FindStringSubmatch(rec.Detail)
		if rec.Verdict != "pass" || m == nil {
			b.Fatalf("job %s: %s %q", id, rec.Verdict, rec.Detail)
		}
		claim = append(claim, rec.Attempts[0].Claimed.Sub(t0))
		start = append(start, racks["r1"].localJob(b, m[4]).Started.Sub(t0))
	}
	b.ReportMetric(median(claim), "ms-claim-p50")
	b.ReportMetric(median(start), "ms-start-p50")
	b.ReportMetric(median(verdict), "ms-verdict-p50")
}

func median(ds []time.Duration) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[len(s)/2].Microseconds()) / 1000
}
