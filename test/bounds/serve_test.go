package bounds

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// `hilfarm serve` runs each sim board in a child process of its own
// binary (`hilfarm __sim-board NAME`), with its data limit set, and removes
// a crashed instance's run directory at start while leaving a live one's.
func TestServeRunsSimBoardsAsChildren(t *testing.T) {
	dir := t.TempDir()
	tmp := t.TempDir()
	leftover := filepath.Join(tmp, "hilfarm-run-crashed")
	if err := os.MkdirAll(filepath.Join(leftover, "b"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(leftover, ".lock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	farm := fmt.Sprintf(`farm "bounds" {
  listen   = %q
  data_dir = "data"
}
board_type "sim" {}
board "sim-00" {
  type = "sim"
  emulator "sim" {}
}
board "sim-01" {
  type = "sim"
  emulator "sim" {}
}
`, addr)
	if err := os.WriteFile(filepath.Join(dir, "farm.hcl"), []byte(farm), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "serve", "--farm", "farm.hcl")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("serve log:\n%s", log.String())
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("serve never answered /healthz")
		}
		time.Sleep(20 * time.Millisecond) // polling a process's readiness
	}
	// The boards open in the background; each child limits itself first
	// thing after exec. Poll until both are there and limited.
	var children, limited int
	var last string
	for deadline := time.Now().Add(30 * time.Second); ; {
		children, limited, last = simChildren(cmd.Process.Pid)
		if (children == 2 && limited == 2) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling another process's state
	}
	if children != 2 || limited != 2 {
		t.Errorf("serve has %d sim children, %d with the data limit, want 2; last limits:\n%s", children, limited, last)
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("the crashed instance's run directory is still there: %v", err)
	}
	runDirs, _ := filepath.Glob(filepath.Join(tmp, "hilfarm-run-*"))
	if len(runDirs) != 1 {
		t.Errorf("run directories %v, want serve's own", runDirs)
	}
}

// simChildren counts the `__sim-board` children of pid, and those whose
// data limit is set.
func simChildren(pid int) (children, limited int, lastLimits string) {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		stat, err := os.ReadFile(filepath.Join(p, "stat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(pid) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join(p, "cmdline"))
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if len(args) < 3 || args[1] != "__sim-board" {
			continue
		}
		children++
		limits, _ := os.ReadFile(filepath.Join(p, "limits"))
		lastLimits = string(limits)
		if strings.Contains(lastLimits, fmt.Sprintf("Max data size             %d", 1<<30)) {
			limited++
		}
	}
	return children, limited, lastLimits
}
