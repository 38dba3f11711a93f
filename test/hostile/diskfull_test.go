package hostile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitSpec fails after 3 s: a job that finishes while the disk is full.
const waitSpec = `
spec "wait" {
  board { type = "sim" }
  setup {
    flash {}
    power "cycle" {}
    expect { text = "sim> " }
  }
  test "waits" {
    expect {
      text   = "this is never printed"
      within = "3s"
    }
  }
}
`

// mountTmpfs mounts an 8 MiB tmpfs for the data dir (root only; CI runs as
// root, where a skip is a failure).
func mountTmpfs(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the disk-full case mounts a tmpfs and needs root; CI runs as root")
		}
		t.Skip("SKIP: the disk-full case mounts a tmpfs and needs root")
	}
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount tmpfs: %v: %s", err, out)
		}
		t.Skipf("SKIP: cannot mount a tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// cpuTime is a process's user + system CPU time (/proc/PID/stat).
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	var utime, stime int64
	fmt.Sscan(f[11], &utime) // fields 14 and 15 of stat, counted after the name
	fmt.Sscan(f[12], &stime)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// fill writes a file until the disk is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	// Fill the last partial block too.
	for {
		if _, err := f.Write(buf[:512]); err != nil {
			break
		}
	}
}

// TestDiskFull: with the data dir on an 8 MiB tmpfs, filled while two jobs
// run and one is queued: submissions get 507 with a JSON message; the
// server does not spin or flood its log; cancel works; the running jobs'
// final states are written; when space returns, jobs run again; after a
// restart no job runs a second time.
func TestDiskFull(t *testing.T) {
	data := mountTmpfs(t)
	s := startServer(t, data)
	sub, admin := s.tokens["submitter"], s.tokens["admin"]
	var running []string
	for range 2 {
		a := s.submit(t, sub, `{}`, waitSpec, []byte(goodModel), "fw.hcl")
		wantStatus(t, "submit", a, 201)
		running = append(running, jobOf(t, a).ID)
	}
	queued := jobOf(t, s.submit(t, sub, `{}`, quickSpec, []byte(goodModel), "fw.hcl")).ID
	for _, id := range running {
		s.waitState(t, id, time.Minute, "running")
	}
	logBefore := strings.Count(s.log.String(), "\n")
	cpuBefore, wallBefore := cpuTime(t, s.cmd.Process.Pid), time.Now()
	filler := filepath.Join(data, "filler")
	fill(t, filler)

	a := s.submit(t, sub, `{}`, quickSpec, []byte(goodModel), "fw2.hcl")
	wantJSONError(t, "submit on a full disk", a, 507)
	if !strings.Contains(string(a.body), "disk") {
		t.Errorf("507 answer does not say the disk is full: %s", a)
	}
	// The jobs that were running end, and their final state is stored.
	for _, id := range running {
		j := s.waitFinal(t, id, time.Minute)
		if j.State != "failed" {
			t.Errorf("job %s finished on a full disk: %s (%s), want failed", id, j.State, j.Reason)
		}
	}
	// The queued one is still queued (nothing starts on a full disk) and
	// cancel works.
	if j := s.job(t, queued); j.State != "queued" {
		t.Errorf("queued job on a full disk: %s (%s)", j.State, j.Reason)
	}
	wantStatus(t, "cancel on a full disk", s.do(t, "POST", "/api/v1/jobs/"+queued+"/cancel", admin, "", nil), 200)
	if j := s.job(t, queued); j.State != "cancelled" {
		t.Errorf("cancelled job on a full disk: %s", j.State)
	}
	a = s.submit(t, sub, `{}`, quickSpec, []byte(goodModel), "fw3.hcl")
	wantJSONError(t, "second submit on a full disk", a, 507)
	if a := s.do(t, "GET", "/healthz", "", "", nil); !strings.Contains(string(a.body), `"disk_full":true`) {
		t.Errorf("/healthz on a full disk: %s", a)
	}
	s.healthy(t)
	lines := strings.Count(s.log.String(), "\n") - logBefore
	cpu, wall := cpuTime(t, s.cmd.Process.Pid)-cpuBefore, time.Since(wallBefore)
	t.Logf("while the disk was full: %d log lines, %s of CPU in %s", lines, cpu, wall.Round(time.Millisecond))
	if cpu > wall/2 {
		t.Errorf("the server used %s of CPU in %s of a full disk: it spins", cpu, wall)
	}
	if lines > 60 {
		t.Errorf("%d log lines while the disk was full; want a rate-limited few:\n%s", lines, tail(s.log.String(), 4000))
	}

	// Space returns: submissions and scheduling resume.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	var id string
	deadline := time.Now().Add(30 * time.Second)
	for {
		a = s.submit(t, sub, `{}`, quickSpec, []byte(goodModel), "fw4.hcl")
		if a.status != 507 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond) // the server's probe backs off up to 5 s
	}
	wantStatus(t, "submit after space returned", a, 201)
	if a.status == 201 {
		id = jobOf(t, a).ID
		if j := s.waitFinal(t, id, time.Minute); j.State != "passed" {
			t.Errorf("job after space returned: %s (%s)", j.State, j.Reason)
		}
	}

	// After a restart, the jobs finished on the full disk stay finished
	// (one attempt each): none runs twice.
	s.stop(t)
	s.start(t)
	for _, jid := range running {
		a := s.do(t, "GET", "/api/v1/jobs/"+jid, s.tokens["viewer"], "", nil)
		if n := strings.Count(string(a.body), `"job":"`+jid+`"`); n != 1 || !strings.Contains(string(a.body), `"state":"failed"`) {
			t.Errorf("job %s after a restart: %d attempts: %s", jid, n, a)
		}
	}
	s.healthy(t)
}
