// Package bounds runs the real hilfarm binary on the worst inputs of issue
// 10 and measures what they cost: `hilfarm validate` of any input up to
// 1 MiB stays under 64 MB of RSS (and about 1 s of CPU, printed by the
// benchmark), and hostile sim models and console input leave `hilfarm
// run` unharmed.
package bounds

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hilfarm/hilfarm/internal/testrig"
)

var binary string

func TestMain(m *testing.M) {
	// Built as `make build` builds it (no -race: the figures are the product's).
	testrig.MainWithBinary(m, &binary, "CGO_ENABLED=0")
}

// usage is what one run of the binary cost.
type usage struct {
	code   int
	maxRSS int64 // bytes, the largest of the process and the children it waited for
	cpu    time.Duration
	out    string
}

// runBinary runs hilfarm under GNU time, which forks (a copy of its own
// small image) before exec: Go starts children with vfork semantics,
// sharing the test's memory until exec, so the kernel's maximum RSS of a
// child Go starts directly includes the test's own.
func runBinary(t testing.TB, dir string, args ...string) usage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stats := filepath.Join(t.TempDir(), "time")
	cmd := exec.CommandContext(ctx, "/usr/bin/time", append([]string{"-f", "%M %e %U %S", "-o", stats, binary}, args...)...)
	cmd.Dir = dir
	out, _ := cmd.CombinedOutput()
	st := cmd.ProcessState
	if st == nil {
		t.Fatalf("hilfarm %v did not run", args)
	}
	raw, err := os.ReadFile(stats)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	var kb int64
	var elapsed, user, sys float64
	if _, err := fmt.Sscanf(lines[len(lines)-1], "%d %f %f %f", &kb, &elapsed, &user, &sys); err != nil {
		t.Fatalf("GNU time said %q: %v", raw, err)
	}
	cpu := time.Duration((user + sys) * float64(time.Second))
	return usage{code: st.ExitCode(), maxRSS: kb << 10, cpu: cpu, out: string(out)}
}

// The validate budget (issue 10): RSS is bounded with margin, CPU is
// printed (the benchmark reports both).
const validateRSS = 64 << 20

func TestValidateWorstInputs(t *testing.T) {
	dir := t.TempDir()
	for _, in := range worstInputs() {
		t.Run(in.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, in.name), []byte(in.src), 0o644); err != nil {
				t.Fatal(err)
			}
			u := runBinary(t, dir, "validate", in.name)
			t.Logf("%s: %d bytes, exit %d, max RSS %.1f MB, CPU %s", in.name, len(in.src), u.code, float64(u.maxRSS)/1e6, u.cpu.Round(time.Millisecond))
			if u.code != 0 && u.code != 1 {
				t.Fatalf("exit %d (a crash?):\n%.2000s", u.code, u.out)
			}
			if u.maxRSS > validateRSS {
				t.Errorf("max RSS %d bytes, over the budget of %d", u.maxRSS, validateRSS)
			}
			if u.code == 1 && !strings.Contains(u.out, in.name+":") {
				t.Errorf("the diagnostics do not name the file and place:\n%.2000s", u.out)
			}
		})
	}
}

func BenchmarkValidateWorst(b *testing.B) {
	dir := b.TempDir()
	ins := worstInputs()
	for _, in := range ins {
		if err := os.WriteFile(filepath.Join(dir, in.name), []byte(in.src), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	var worstRSS int64
	var worstCPU time.Duration
	var rssName, cpuName string
	for b.Loop() {
		for _, in := range ins {
			u := runBinary(b, dir, "validate", in.name)
			if u.maxRSS > worstRSS {
				worstRSS, rssName = u.maxRSS, in.name
			}
			if u.cpu > worstCPU {
				worstCPU, cpuName = u.cpu, in.name
			}
		}
	}
	b.ReportMetric(float64(worstRSS)/1e6, "max-RSS-MB")
	b.ReportMetric(worstCPU.Seconds(), "max-CPU-s")
	fmt.Printf("validate worst case over %d inputs ≤ 1 MiB: max RSS %.1f MB (%s), max CPU %s (%s); budget 64 MB, 1 s\n",
		len(ins), float64(worstRSS)/1e6, rssName, worstCPU.Round(time.Millisecond), cpuName)
}
