package procwait

import (
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
)

// TestExitedHoldsNoThread: while Exited waits for a child, no goroutine is
// in a system call waiting for it (it is parked in the poller); once the
// child exits, Exited returns and Wait reaps it at once.
func TestExitedHoldsNoThread(t *testing.T) {
	cmd := exec.Command("sh", "-c", "read x || true")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Exited(cmd.Process.Pid) }()
	// Wait until the goroutine is parked: its stack shows the poller.
	for parked := false; !parked; {
		var b strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
		for _, g := range strings.Split(b.String(), "\n\n") {
			if !strings.Contains(g, "procwait.Exited") {
				continue
			}
			if strings.Contains(g, "Waitid") || strings.Contains(g, "[syscall") {
				t.Fatalf("Exited holds a thread in a system call:\n%s", g)
			}
			parked = strings.Contains(g, "[IO wait]")
		}
		select {
		case err := <-done:
			t.Fatalf("Exited returned before the child exited: %v", err)
		default:
		}
		runtime.Gosched()
	}
	stdin.Close() // the child reads EOF and exits
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestExitedAfterExit(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Exited of a child that may already be a zombie returns.
	if err := Exited(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestExitedNotAChild(t *testing.T) {
	if err := Exited(1 << 30); err == nil {
		t.Fatal("Exited of no process: no error")
	}
}
