// Package campaignbench measures campaigns as a user runs them: the real
// `hilfarm run` binary on sim boards (make bench: mk/campaign.mk).
//
//   - BenchmarkPowerCutCampaign: examples/specs/update-powercut.hcl, 200
//     iterations, on the A/B candidate and on the in-place one: pass rates,
//     bricking delays and wall time.
//   - BenchmarkBootSoak: examples/specs/boot-soak.hcl, 500 power cycles,
//     beside a bare baseline in the same run: the same sim board (a child
//     process of this test binary, as hilfarm runs it) cycled 500 times
//     through its Go API, with go.bug.st/serial reading its console until
//     the prompt. The overhead per iteration is the campaign's mean
//     iteration time minus the baseline's mean (target <= 5 ms).
package campaignbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"go.bug.st/serial"

	"github.com/hilfarm/hilfarm/fixtures/sim"
	"github.com/hilfarm/hilfarm/internal/testrig"
	"github.com/hilfarm/hilfarm/runner"
	"github.com/hilfarm/hilfarm/specs"
)

var binary string

func TestMain(m *testing.M) { testrig.MainWithBinary(m, &binary) }

const farm = `farm "bench" {
  listen   = "127.0.0.1:0"
  data_dir = "data"
}
board_type "sim" {}
board "sim-00" {
  type = "sim"
  emulator "sim" {}
}
`

func examples(p ...string) string {
	a, _ := filepath.Abs(filepath.Join(append([]string{"..", "..", "examples"}, p...)...))
	return a
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}

// run runs SPEC with the real binary and returns its campaign and wall time.
func run(b *testing.B, spec, fw string, vars ...string) (*runner.Campaign, time.Duration, int) {
	b.Helper()
	dir := b.TempDir()
	farmPath := filepath.Join(dir, "farm.hcl")
	if err := os.WriteFile(farmPath, []byte(farm), 0o644); err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(dir, "result.json")
	args := []string{"run", "--farm", farmPath, "--board", "sim-00", "--firmware", fw, "--quiet", "--json", out}
	for _, v := range vars {
		args = append(args, "--var", v)
	}
	cmd := exec.Command(binary, append(args, spec)...)
	cmd.Dir = dir
	var outb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outb, &outb
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		b.Fatal(err)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		b.Fatalf("no result (exit %d): %v\n%s", code, err, outb.String())
	}
	var r runner.Result
	if err := json.Unmarshal(raw, &r); err != nil {
		b.Fatal(err)
	}
	if len(r.Tests) == 0 || r.Tests[len(r.Tests)-1].Campaign == nil {
		b.Fatalf("no campaign in the result (exit %d):\n%s", code, outb.String())
	}
	return r.Tests[len(r.Tests)-1].Campaign, wall, code
}

func BenchmarkPowerCutCampaign(b *testing.B) {
	for _, fw := range []string{"sim-ab.hcl", "sim-ab-inplace.hcl"} {
		b.Run(strings.TrimSuffix(fw, ".hcl"), func(b *testing.B) {
			for b.Loop() {
				c, wall, code := run(b, examples("specs", "update-powercut.hcl"), examples("firmware", fw))
				var bricked []string
				for _, it := range c.Iterations {
					if it.Outcome == runner.Failed && len(it.CutDelays) > 0 {
						bricked = append(bricked, time.Duration(it.CutDelays[0]).Round(time.Millisecond).String())
					}
				}
				if len(bricked) > 12 {
					bricked = append(bricked[:12], "...")
				}
				fmt.Printf("power-cut campaign %s: exit %d, %d iterations, %d passed, pass rate %.3f [%.3f, %.3f], wall %s (%.0f ms/iteration), bricking cut delays: %v (load %s)\n",
					fw, code, c.Run, c.Passed, c.PassRate, c.PassRateLow, c.PassRateHigh, wall.Round(time.Millisecond),
					float64(wall.Milliseconds())/float64(max(c.Run, 1)), bricked, loadavg())
				b.ReportMetric(c.PassRate, "pass-rate")
				b.ReportMetric(wall.Seconds(), "s-wall")
			}
		})
	}
}

const soakCycles = 500

func BenchmarkBootSoak(b *testing.B) {
	for b.Loop() {
		base := baseline(b, soakCycles)
		c, wall, code := run(b, examples("specs", "boot-soak.hcl"), examples("firmware", "sim-ab.hcl"))
		it := c.IterationTime
		over := it.Mean - base.mean
		verdict := "MET"
		if over > 5 {
			verdict = "NOT MET"
		}
		slow := slowest(c.Iterations, 5)
		fmt.Printf("boot soak: exit %d, %d cycles, %d passed, pass rate %.3f, wall %s, %.1f iterations/s (load %s)\n",
			code, c.Run, c.Passed, c.PassRate, wall.Round(time.Millisecond), float64(c.Run)/wall.Seconds(), loadavg())
		fmt.Printf("  iteration (power cycle to prompt) ms: min %.2f median %.2f p95 %.2f max %.2f mean %.2f; slowest: %s\n",
			it.Min, it.Median, it.P95, it.Max, it.Mean, slow)
		fmt.Printf("  bare baseline (same board, Go API + go.bug.st/serial) ms: min %.2f median %.2f max %.2f mean %.2f\n",
			base.min, base.median, base.max, base.mean)
		fmt.Printf("  overhead per iteration beyond the board's own boot: %.2f ms (target <= 5 ms: %s)\n", over, verdict)
		b.ReportMetric(float64(c.Run)/wall.Seconds(), "iter/s")
		b.ReportMetric(over, "ms-overhead/iter")
	}
}

func slowest(its []runner.Iteration, n int) string {
	its = append([]runner.Iteration(nil), its...)
	sort.Slice(its, func(i, j int) bool { return its[i].Duration > its[j].Duration })
	var parts []string
	for _, it := range its[:min(n, len(its))] {
		parts = append(parts, fmt.Sprintf("#%d %.1fms", it.Number, float64(time.Duration(it.Duration).Microseconds())/1000))
	}
	return strings.Join(parts, ", ")
}

type dist struct{ min, median, max, mean float64 }

// baseline cycles the sim board (off 1 ms, as boot-soak.hcl does) n times
// and times each from the cycle to the prompt on the console.
func baseline(b *testing.B, n int) dist {
	ctx := context.Background()
	dir := b.TempDir()
	p, err := sim.Start(sim.Options{Name: "base", Dir: dir, Config: specs.SimConfig{Firmware: examples("firmware", "sim-ab.hcl")}})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	port, err := serial.Open(p.ConsolePath(), &serial.Mode{BaudRate: 115200})
	if err != nil {
		b.Fatal(err)
	}
	defer port.Close()
	if err := port.SetReadTimeout(10 * time.Second); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 4096)
	var seen []byte
	times := make([]float64, 0, n)
	for range n {
		seen = seen[:0]
		start := time.Now()
		if err := p.Cycle(ctx, time.Millisecond); err != nil {
			b.Fatal(err)
		}
		for !bytes.Contains(seen, []byte("sim> ")) {
			k, err := port.Read(buf)
			if err != nil || k == 0 {
				b.Fatalf("console read: %v (got %q)", err, seen)
			}
			seen = append(seen, buf[:k]...)
		}
		times = append(times, float64(time.Since(start).Microseconds())/1000)
	}
	if err := p.Off(ctx); err != nil {
		b.Fatal(err)
	}
	sort.Float64s(times)
	sum := 0.0
	for _, t := range times {
		sum += t
	}
	return dist{times[0], times[len(times)/2], times[len(times)-1], sum / float64(len(times))}
}
