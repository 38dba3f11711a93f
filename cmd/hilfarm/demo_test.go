package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// verdictWriter collects the demo's output and says when n verdicts came.
type verdictWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	n    int
	done chan struct{}
}

func (w *verdictWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Count(w.buf.String(), "\nverdict ") >= w.n && w.done != nil {
		close(w.done)
		w.done = nil
	}
	return len(p), nil
}

func (w *verdictWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestDemo runs `hilfarm demo` on the example farm's sim boards until every
// example job has its verdict, then interrupts it.
func TestDemo(t *testing.T) {
	defer goleak.VerifyNone(t)
	done := make(chan struct{})
	out := &verdictWriter{n: 8, done: done}
	var errb bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"demo", "--farm", examples + "/farm.hcl", "--listen", "127.0.0.1:0", "--no-qemu"}, out, &errb)
	}()
	select {
	case <-done:
	case c := <-code:
		t.Fatalf("demo exited %d early\nstdout:\n%s\nstderr:\n%s", c, out.String(), errb.String())
	}
	cancel() // Ctrl-C
	if c := <-code; c != 0 {
		t.Errorf("demo exited %d after the interrupt, want 0\nstderr:\n%s", c, errb.String())
	}
	s := out.String()
	for _, want := range []string{"URL:    http://127.0.0.1:", "token:  hf_", "sim-01", "sim-02"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	for _, bad := range []string{"nucleo-01", "esp32-01", "UNEXPECTED"} {
		if strings.Contains(s, bad) {
			t.Errorf("output has %q:\n%s", bad, s)
		}
	}
	for _, want := range []string{
		"verdict   measure.hcl        sim-good.hcl           passed",
		"verdict   measure.hcl        sim-regressed.hcl      failed",
		"verdict   shell.hcl          sim-regressed.hcl      failed",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}
