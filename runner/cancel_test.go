package runner_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hilfarm/hilfarm/runner"
	"github.com/hilfarm/hilfarm/specs"
)

// The worst regex a spec may hold (specs' regex limits: 4096 bytes, 4000
// instructions) costs about a second of CPU per search of the 64 KiB
// window; a cancel or a timeout still ends the step at once.
var worstRegex = runner.CostlyPattern(4096, 4000)

// costlyRun runs one expect of the worst regex while the board prints 64
// KiB that it never matches; at is called (on its own goroutine) once the
// bytes reach the engine. It returns the result and the times the step
// started and finished.
func costlyRun(t testing.TB, within time.Duration, at func(cancel func())) (*runner.Result, time.Time, time.Time) {
	r := newRig()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	spec := &specs.Spec{Name: "costly", Tests: []specs.Test{{Name: "a", Steps: []specs.Step{expectRegex(t, worstRegex, within, "")}}}}
	var once sync.Once
	var mu sync.Mutex
	var started, finished time.Time
	opts := runner.Options{Events: func(ev runner.Event) {
		switch ev := ev.(type) {
		case runner.StepStarted:
			mu.Lock()
			started = time.Now()
			mu.Unlock()
			go r.console.PrintBytes(runner.ConsoleText(runner.RegexWindow))
		case runner.ConsoleOutput:
			once.Do(func() { go at(cancel) })
		case runner.StepFinished:
			mu.Lock()
			finished = time.Now()
			mu.Unlock()
			_ = ev
		}
	}}
	res, err := runner.Run(ctx, runner.Job{Spec: spec, Board: r.board, Firmware: firmware}, opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	return res, started, finished
}

func TestCostlyRegexCancelled(t *testing.T) {
	res, _, _ := costlyRun(t, long, func(cancel func()) { cancel() })
	want(t, res, runner.Cancelled, runner.Cancelled)
}

func TestCostlyRegexWithin(t *testing.T) {
	res, _, _ := costlyRun(t, 50*time.Millisecond, func(func()) {})
	want(t, res, runner.Failed, runner.Failed)
	if k := res.Tests[0].Kind; k != runner.KindExpect {
		t.Errorf("kind %s (%s), want %s", k, res.Tests[0].Message, runner.KindExpect)
	}
}

// BenchmarkCancelCostlyMatch prints the cancel latency of a worst-case
// match (from the cancel to the step's end; target <= 100 ms) and how far
// past its within such a step ends.
func BenchmarkCancelCostlyMatch(b *testing.B) {
	var cancels, overs []time.Duration
	for b.Loop() {
		var t0 time.Time
		var mu sync.Mutex
		_, _, fin := costlyRun(b, long, func(cancel func()) {
			time.Sleep(50 * time.Millisecond) // the search is under way
			mu.Lock()
			t0 = time.Now()
			mu.Unlock()
			cancel()
		})
		mu.Lock()
		cancels = append(cancels, fin.Sub(t0))
		mu.Unlock()
		const within = 200 * time.Millisecond
		_, start, fin := costlyRun(b, within, func(func()) {})
		overs = append(overs, fin.Sub(start)-within)
	}
	slices.Sort(cancels)
	slices.Sort(overs)
	b.ReportMetric(float64(cancels[len(cancels)-1].Microseconds())/1000, "max-cancel-ms")
	b.ReportMetric(float64(overs[len(overs)-1].Microseconds())/1000, "max-within-over-ms")
	var s strings.Builder
	s.WriteString("worst-case match (a regex at the specs limits, 64 KiB of console):\n")
	s.WriteString("  cancel latency: median " + cancels[len(cancels)/2].String() + ", max " + cancels[len(cancels)-1].String() + " (target <= 100ms)\n")
	s.WriteString("  end past within: median " + overs[len(overs)/2].String() + ", max " + overs[len(overs)-1].String())
	b.Log(s.String())
}
