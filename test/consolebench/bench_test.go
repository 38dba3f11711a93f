// Package consolebench measures the console data path of the real
// `hilfarm` binary against a bare Go loop on the same pty, in the same
// run (issue 12), and prints each target with its figure and whether it is
// met. It has benchmarks only: `make bench` runs them (console-bench).
//
// The board is a pty driven by the benchmark: farm.hcl gives it a serial
// console on the pty's slave and a command power whose "on" writes to a
// FIFO, which tells the benchmark to start printing. The bare loop runs in
// a child process (this test binary, re-executed) so that its CPU time is
// measured the same way as hilfarm's (rusage of a child).
package consolebench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/term"
)

const (
	floodBlock  = 64 << 10
	floodBlocks = 800 // 50 MiB
	floodBytes  = floodBlock * floodBlocks
	floodMarker = "FLOOD-END-MARKER 7f3a"
	// roundTrips: 999 send/expect pairs and the power-on step are 1,999
	// steps, under the language's limit of 2,000 per spec.
	roundTrips = 999
)

var floodBlockText = func() []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < floodBlock; i++ {
		fmt.Fprintf(&b, "[%8d.%06d] sensor: t=%d.%dC rh=%d%% the quick brown fox jumps over the lazy dog\r\n", i/1000, i%1000*997, 20+i%7, i%10, 40+i%13)
	}
	return b.Bytes()[:floodBlock]
}()

// floodData is block i of a flood of n blocks: the last ends with the marker.
func floodData(i, n int) []byte {
	if i < n-1 {
		return floodBlockText
	}
	last := bytes.Clone(floodBlockText)
	tail := "\r\n" + floodMarker + "\r\n"
	copy(last[len(last)-len(tail):], tail)
	return last
}

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// hilfarm returns the binary under test: built from this tree once, or
// CONSOLEBENCH_HILFARM (to compare two builds).
func hilfarm(b *testing.B) string {
	if p := os.Getenv("CONSOLEBENCH_HILFARM"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hilfarm-consolebench-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "hilfarm")
		out, err := exec.Command("go", "build", "-o", binary, "github.com/hilfarm/hilfarm/cmd/hilfarm").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	return binary
}

func TestMain(m *testing.M) {
	switch os.Getenv("CONSOLEBENCH_CHILD") {
	case "flood":
		os.Exit(bareFloodChild(os.Getenv("CONSOLEBENCH_PORT")))
	case "rt":
		os.Exit(bareRoundTripChild(os.Getenv("CONSOLEBENCH_PORT")))
	}
	code := m.Run()
	if binary != "" {
		os.RemoveAll(filepath.Dir(binary))
	}
	os.Exit(code)
}

// openPort opens the pty slave the way a bare Go program would: non-blocking,
// through the runtime poller.
func openPort(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
}

// bareFloodChild reads CONSOLEBENCH_BYTES bytes from the port, then prints the time of
// the last read (unix ns).
func bareFloodChild(path string) int {
	f, err := openPort(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Println("ready")
	want, err := strconv.Atoi(os.Getenv("CONSOLEBENCH_BYTES"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	buf := make([]byte, 32<<10)
	for got := 0; got < want; {
		n, err := f.Read(buf)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		got += n
	}
	fmt.Println(time.Now().UnixNano())
	return 0
}

// bareRoundTripChild writes "ping i" and reads until "pong i", roundTrips
// times, and prints each round trip in ns.
func bareRoundTripChild(path string) int {
	f, err := openPort(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	buf := make([]byte, 4096)
	out := bufio.NewWriter(os.Stdout)
	for i := range roundTrips {
		want := []byte("pong " + strconv.Itoa(i) + "\r\n")
		t0 := time.Now()
		if _, err := f.Write([]byte("ping " + strconv.Itoa(i) + "\n")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		var got []byte
		for !bytes.Contains(got, want) {
			n, err := f.Read(buf)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
			got = append(got, buf[:n]...)
		}
		fmt.Fprintln(out, time.Since(t0).Nanoseconds())
	}
	out.Flush()
	return 0
}

func newPty(b *testing.B) (*os.File, *os.File) {
	m, s, err := pty.Open()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close(); s.Close() })
	if _, err := term.MakeRaw(int(s.Fd())); err != nil {
		b.Fatal(err)
	}
	return m, s
}

func writeFlood(master *os.File, blocks int) error {
	for i := range blocks {
		if _, err := master.Write(floodData(i, blocks)); err != nil {
			return err
		}
	}
	return nil
}

// wrapped is exec.Command, with the words of CONSOLEBENCH_WRAP (when set)
// in front: e.g. CONSOLEBENCH_WRAP="strace -c -f -o /tmp/sc" counts the
// system calls of each measured process (hilfarm and the bare loop alike).
// Set HILFARM_CPUPROFILE=FILE to have the binary write its CPU profile.
func wrapped(name string, args ...string) *exec.Cmd {
	w := strings.Fields(os.Getenv("CONSOLEBENCH_WRAP"))
	if len(w) == 0 {
		return exec.Command(name, args...)
	}
	return exec.Command(w[0], append(append(w[1:], name), args...)...)
}

func cpu(ps *os.ProcessState) time.Duration { return ps.UserTime() + ps.SystemTime() }

// bareFlood runs the bare loop child on a flood of blocks: MB/s and its
// CPU time.
func bareFlood(b *testing.B, master *os.File, port string, blocks int) (float64, time.Duration) {
	cmd := wrapped(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "CONSOLEBENCH_CHILD=flood", "CONSOLEBENCH_PORT="+port, "CONSOLEBENCH_BYTES="+strconv.Itoa(blocks*floodBlock))
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	r := bufio.NewReader(out)
	if l, err := r.ReadString('\n'); err != nil || l != "ready\n" {
		b.Fatalf("bare child: %q %v", l, err)
	}
	t0 := time.Now()
	if err := writeFlood(master, blocks); err != nil {
		b.Fatal(err)
	}
	l, err := r.ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		b.Fatal(err)
	}
	end, _ := strconv.ParseInt(strings.TrimSpace(l), 10, 64)
	return float64(blocks*floodBlock) / 1e6 / time.Unix(0, end).Sub(t0).Seconds(), cpu(cmd.ProcessState)
}

// farmFor writes a farm with one board "pty" on port whose power-on
// writes to dir/on (a FIFO).
func farmFor(b *testing.B, dir, port string) string {
	fifo := filepath.Join(dir, "on")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		b.Fatal(err)
	}
	src := fmt.Sprintf(`farm "bench" {}
board_type "pty" {}
board "pty" {
  type = "pty"
  power "command" {
    on  = ["sh", "-c", "echo on > %s"]
    off = ["true"]
  }
  console "serial" {
    port = %q
  }
}
`, fifo, port)
	p := filepath.Join(dir, "farm.hcl")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		b.Fatal(err)
	}
	fw := filepath.Join(dir, "fw.bin")
	if err := os.WriteFile(fw, []byte("fw"), 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}

type report struct {
	Outcome string `json:"outcome"`
	Message string `json:"message"`
	Tests   []struct {
		Attempts []struct {
			Steps []struct {
				Kind     string    `json:"kind"`
				Started  time.Time `json:"started"`
				Duration float64   `json:"duration_ms"`
			} `json:"steps"`
		} `json:"attempts"`
	} `json:"tests"`
}

// runHilfarm runs `hilfarm run --quiet --json` with spec on the pty board;
// atPowerOn runs (in a goroutine) once the board was powered on.
func runHilfarm(b *testing.B, dir, farm, spec string, atPowerOn func() error) (*report, *os.ProcessState) {
	specPath := filepath.Join(dir, "spec.hcl")
	if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
		b.Fatal(err)
	}
	jsonPath := filepath.Join(dir, "report.json")
	powered := make(chan error, 1)
	go func() {
		f, err := os.Open(filepath.Join(dir, "on")) // blocks until "on" writes
		if err != nil {
			powered <- err
			return
		}
		_, _ = bufio.NewReader(f).ReadString('\n')
		f.Close()
		powered <- atPowerOn()
	}()
	cmd := wrapped(hilfarm(b), "run", "--quiet", "--farm", farm, "--board", "pty", "--firmware", filepath.Join(dir, "fw.bin"), "--json", jsonPath, specPath)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("hilfarm run: %v\n%s", err, stderr.Bytes())
	}
	if err := <-powered; err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		b.Fatal(err)
	}
	var r report
	if err := json.Unmarshal(data, &r); err != nil {
		b.Fatal(err)
	}
	if r.Outcome != "passed" {
		b.Fatalf("hilfarm run: %s: %s", r.Outcome, r.Message)
	}
	return &r, cmd.ProcessState
}

const floodSpec = `
spec "flood" {
  board { type = "pty" }
  setup {
    power "on" {}
  }
  test "flood" {
    expect {
      text   = "` + floodMarker + `"
      within = "2m"
    }
  }
}
`

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func verdict(ok bool) string {
	if ok {
		return "MET"
	}
	return "NOT MET"
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}

// BenchmarkRunFlood: a 50 MiB flood with an end marker, through
// `hilfarm run` (expect at the end) and a bare Go read loop, interleaved on
// the same pty, 5 rounds each; medians. Targets: ≥ 0.9× the loop's MB/s,
// CPU ≤ 1.2× the loop's.
//
// Like with like: hilfarm's time is from the board's power-on to the end of
// the expect step (from the JSON report), the loop's from the first write
// to its last read; neither counts process start. The CPU figure of the
// target is the flood's own cost on each side: the CPU of a 50 MiB run
// minus that of a run of one 64 KiB block (same marker), so a process
// start, spec and farm parsing, the power commands' sh and the report,
// which cost ~60 ms in hilfarm and ~5 ms in the loop whatever the console
// carries, are not counted as console cost. The totals are printed too.
func BenchmarkRunFlood(b *testing.B) {
	const rounds = 5
	for range b.N {
		master, slave := newPty(b)
		load0 := loadavg()
		var bareMB, runMB, bareCPU, runCPU, bare1CPU, run1CPU []float64
		hilfarmRun := func(blocks int) (float64, float64) {
			dir := b.TempDir()
			farm := farmFor(b, dir, slave.Name())
			var t0 time.Time
			r, ps := runHilfarm(b, dir, farm, floodSpec, func() error {
				t0 = time.Now()
				return writeFlood(master, blocks)
			})
			st := r.Tests[0].Attempts[0].Steps[0]
			end := st.Started.Add(time.Duration(st.Duration * float64(time.Millisecond)))
			return float64(blocks*floodBlock) / 1e6 / end.Sub(t0).Seconds(), ms(cpu(ps))
		}
		for range rounds {
			mb, c := bareFlood(b, master, slave.Name(), floodBlocks)
			bareMB, bareCPU = append(bareMB, mb), append(bareCPU, ms(c))
			mb, cr := hilfarmRun(floodBlocks)
			runMB, runCPU = append(runMB, mb), append(runCPU, cr)
			_, c = bareFlood(b, master, slave.Name(), 1)
			bare1CPU = append(bare1CPU, ms(c))
			_, cr = hilfarmRun(1)
			run1CPU = append(run1CPU, cr)
		}
		mb, mr, cb, cr := median(bareMB), median(runMB), median(bareCPU), median(runCPU)
		cb1, cr1 := median(bare1CPU), median(run1CPU)
		fb, fr := cb-cb1, cr-cr1 // the flood's own CPU
		b.ReportMetric(mr/mb, "x-bare-MB/s")
		b.ReportMetric(fr/fb, "x-bare-CPU")
		fmt.Printf("console flood, 50 MiB, %d rounds (load before %s, after %s)\n", rounds, load0, loadavg())
		fmt.Printf("  bare Go read loop:  %7.1f MB/s  CPU %6.1f ms, of which the flood %6.1f ms (runs %v MB/s)\n", mb, cb, fb, fmtAll(bareMB))
		fmt.Printf("  hilfarm run:        %7.1f MB/s  CPU %6.1f ms, of which the flood %6.1f ms (runs %v MB/s)\n", mr, cr, fr, fmtAll(runMB))
		fmt.Printf("  (a one-block run costs the loop %.1f ms and hilfarm %.1f ms of CPU: process start, parsing, power commands, report)\n", cb1, cr1)
		fmt.Printf("  target flood through hilfarm run >= 0.9x bare: %.2fx %s\n", mr/mb, verdict(mr/mb >= 0.9))
		fmt.Printf("  target CPU of the flood <= 1.2x bare: %.2fx %s (whole processes: %.2fx)\n", fr/fb, verdict(fr/fb <= 1.2), cr/cb)
	}
}

// BenchmarkRunRoundTrip: 1000 send "ping i" / expect "pong i" through
// `hilfarm run --json` (send + expect step durations) and a bare Go
// write-then-read loop, against a responder on the pty master. Targets:
// median ≤ 1.3×, p99 ≤ 3× the loop's.
func BenchmarkRunRoundTrip(b *testing.B) {
	for range b.N {
		master, slave := newPty(b)
		stop := responder(master, slave)
		load0 := loadavg()
		cmd := wrapped(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "CONSOLEBENCH_CHILD=rt", "CONSOLEBENCH_PORT="+slave.Name())
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			b.Fatal(err)
		}
		var bare []time.Duration
		for _, l := range strings.Fields(string(out)) {
			n, _ := strconv.ParseInt(l, 10, 64)
			bare = append(bare, time.Duration(n))
		}
		var spec strings.Builder
		spec.WriteString("spec \"ping\" {\n  board { type = \"pty\" }\n  setup {\n    power \"on\" {}\n  }\n  test \"ping\" {\n")
		for i := range roundTrips {
			fmt.Fprintf(&spec, "    send { line = \"ping %d\" }\n    expect {\n      text = \"pong %d\\r\\n\"\n    }\n", i, i)
		}
		spec.WriteString("  }\n}\n")
		dir := b.TempDir()
		farm := farmFor(b, dir, slave.Name())
		r, _ := runHilfarm(b, dir, farm, spec.String(), func() error { return nil })
		steps := r.Tests[0].Attempts[0].Steps
		var rt []time.Duration
		for i := 0; i+1 < len(steps); i += 2 {
			rt = append(rt, time.Duration((steps[i].Duration+steps[i+1].Duration)*float64(time.Millisecond)))
		}
		stop()
		if len(rt) != roundTrips || len(bare) != roundTrips {
			b.Fatalf("%d hilfarm and %d bare round trips, want %d", len(rt), len(bare), roundTrips)
		}
		us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
		bm, b99, rm, r99 := pct(bare, 0.5), pct(bare, 0.99), pct(rt, 0.5), pct(rt, 0.99)
		b.ReportMetric(float64(rm)/float64(bm), "x-bare-median")
		b.ReportMetric(float64(r99)/float64(b99), "x-bare-p99")
		fmt.Printf("round trip, %d x send/expect (load before %s, after %s)\n", roundTrips, load0, loadavg())
		fmt.Printf("  bare Go write-then-read loop:        median %7.1f us  p99 %7.1f us\n", us(bm), us(b99))
		fmt.Printf("  hilfarm run (send + expect steps):   median %7.1f us  p99 %7.1f us\n", us(rm), us(r99))
		fmt.Printf("  target median <= 1.3x bare: %.2fx %s\n", float64(rm)/float64(bm), verdict(float64(rm) <= 1.3*float64(bm)))
		fmt.Printf("  target p99 <= 3x bare: %.2fx %s\n", float64(r99)/float64(b99), verdict(float64(r99) <= 3*float64(b99)))
	}
}

// responder answers "ping N" lines on the master with "pong N\r\n" until
// stop, which closes the slave (the last one open: the master's blocking
// read then fails with EIO).
func responder(master, slave *os.File) (stop func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := bufio.NewReader(master)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if n, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "ping "); ok {
				if _, err := master.WriteString("pong " + n + "\r\n"); err != nil {
					return
				}
			}
		}
	}()
	return func() { slave.Close(); wg.Wait() }
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func pct(v []time.Duration, p float64) time.Duration {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

func fmtAll(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(parts, "/")
}
