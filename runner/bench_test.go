package runner_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/hilfarm/hilfarm/fixtures/fake"
	"github.com/hilfarm/hilfarm/fixtures/serial"
	"github.com/hilfarm/hilfarm/runner"
	"github.com/hilfarm/hilfarm/specs"
	bugserial "go.bug.st/serial"
	"golang.org/x/term"
)

// The benchmarks the issue asks for, on a pty board, side by side with a
// bare go.bug.st/serial read loop on the same pty (the ceiling):
//
//	go test -run '^$' -bench . -benchtime 1x ./runner/   (make bench)
//
// BenchmarkFlood: a 50 MiB unpaced flood with the expected pattern at its
// end, read by Run (expect + per-test console slice + three fail_on
// patterns + a console event sink that checksums every byte) and by the bare
// loop (which checksums too); MB/s, % of bare, byte-identical check.
// BenchmarkRoundTrip: 1000 × send "ping i" / expect "pong i" against a
// responder goroutine on the pty master; median and p99.
// BenchmarkFloodPeakRSS: the peak RSS (VmHWM) of a process that runs the
// flood through Run, measured in a child process.

const (
	floodBlock  = 64 << 10
	floodBlocks = 800 // 50 MiB
	floodMarker = "FLOOD-END-MARKER 7f3a"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// floodBlockText is a 64 KiB block of console-like lines.
var floodBlockText = func() []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < floodBlock; i++ {
		fmt.Fprintf(&b, "[%8d.%06d] sensor: t=%d.%dC rh=%d%% the quick brown fox jumps over the lazy dog\r\n", i/1000, i%1000*997, 20+i%7, i%10, 40+i%13)
	}
	return b.Bytes()[:floodBlock]
}()

// floodData returns block i of the flood; the last one ends with the marker.
func floodData(i int) []byte {
	if i < floodBlocks-1 {
		return floodBlockText
	}
	last := bytes.Clone(floodBlockText)
	tail := "\r\n" + floodMarker + "\r\n"
	copy(last[len(last)-len(tail):], tail)
	return last
}

// floodSum is the checksum of the whole flood.
var floodSum = sync.OnceValue(func() uint32 {
	var c uint32
	for i := range floodBlocks {
		c = crc32.Update(c, castagnoli, floodData(i))
	}
	return c
})

const floodBytes = floodBlocks * floodBlock

// benchPty opens a pty pair with a raw slave and returns the master and the
// slave's path.
func benchPty(b testing.TB) (*os.File, string) {
	m, s := benchPtyFiles(b)
	return m, s.Name()
}

func benchPtyFiles(b testing.TB) (*os.File, *os.File) {
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

// writeFlood writes the flood into master from a goroutine.
func writeFlood(master *os.File) <-chan error {
	done := make(chan error, 1)
	go func() {
		for i := range floodBlocks {
			if _, err := master.Write(floodData(i)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	return done
}

// bareFlood reads the flood with a bare go.bug.st/serial loop.
func bareFlood(b testing.TB, master *os.File, path string) (time.Duration, uint32) {
	p, err := bugserial.Open(path, &bugserial.Mode{BaudRate: 115200})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	buf := make([]byte, 32<<10)
	var sum uint32
	t0 := time.Now()
	done := writeFlood(master)
	for got := 0; got < floodBytes; {
		n, err := p.Read(buf)
		if err != nil {
			b.Fatal(err)
		}
		sum = crc32.Update(sum, castagnoli, buf[:n])
		got += n
	}
	d := time.Since(t0)
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return d, sum
}

// runFlood reads the flood with Run: an expect for the marker, three
// fail_on patterns, the per-test console slice, and an event sink that
// checksums every console byte.
func runFlood(b testing.TB, master *os.File, path string) (time.Duration, uint32, int64) {
	con, err := serial.Open(context.Background(), specs.Console{Port: path, Baud: 115200}, serial.Options{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer con.Close()
	spec := &specs.Spec{Name: "flood",
		FailOn: []specs.Pattern{text(b, "HardFault"), {Regex: tmpl(b, `Kernel panic - not syncing: .*`)}, {Regex: tmpl(b, `(?i)assert(ion)? failed`)}},
		Tests:  []specs.Test{{Name: "flood", Steps: []specs.Step{expectText(b, floodMarker, time.Minute)}}},
	}
	var (
		sum   uint32
		n     int64
		end   time.Time
		start time.Time
		done  <-chan error
	)
	sink := func(ev runner.Event) {
		switch ev := ev.(type) {
		case runner.ConsoleOutput:
			sum = crc32.Update(sum, castagnoli, ev.Data)
			n += int64(len(ev.Data))
		case runner.StepStarted:
			start = time.Now()
			done = writeFlood(master)
		case runner.StepFinished:
			end = time.Now()
		}
	}
	res, err := runner.Run(context.Background(), runner.Job{Spec: spec, Board: runner.Board{Power: fake.NewPower(nil), Console: con}}, runner.Options{Events: sink})
	if err != nil {
		b.Fatal(err)
	}
	if res.Outcome != runner.Passed {
		b.Fatalf("flood: %s: %s", res.Outcome, res.Message)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return end.Sub(start), sum, n
}

// consoleFlood reads the flood through hilfarm's serial console alone (its
// event stream, checksummed), without the runner: the console's share of
// the cost.
func consoleFlood(b testing.TB, master *os.File, path string) (time.Duration, uint32) {
	con, err := serial.Open(context.Background(), specs.Console{Port: path, Baud: 115200}, serial.Options{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer con.Close()
	var sum uint32
	t0 := time.Now()
	done := writeFlood(master)
	for got := 0; got < floodBytes; {
		ev := <-con.Events()
		if ev.Kind != runner.ConsoleData {
			b.Fatalf("console event %v: %v", ev.Kind, ev.Err)
		}
		sum = crc32.Update(sum, castagnoli, ev.Data)
		got += len(ev.Data)
	}
	d := time.Since(t0)
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return d, sum
}

func mbps(d time.Duration) float64 { return float64(floodBytes) / 1e6 / d.Seconds() }

func BenchmarkFlood(b *testing.B) {
	master, path := benchPty(b)
	const rounds = 5
	var bare, cons, eng []float64
	for range b.N {
		for range rounds {
			d, sum := bareFlood(b, master, path)
			if sum != floodSum() {
				b.Fatalf("bare loop: checksum %08x, want %08x", sum, floodSum())
			}
			bare = append(bare, mbps(d))
			d, sum = consoleFlood(b, master, path)
			if sum != floodSum() {
				b.Fatalf("console: checksum %08x, want %08x", sum, floodSum())
			}
			cons = append(cons, mbps(d))
			d, sum, n := runFlood(b, master, path)
			if sum != floodSum() || n != floodBytes {
				b.Fatalf("Run: %d bytes, checksum %08x; want %d bytes, %08x", n, sum, floodBytes, floodSum())
			}
			eng = append(eng, mbps(d))
		}
	}
	mb, mc, me := median(bare), median(cons), median(eng)
	b.ReportMetric(mb, "bare-MB/s")
	b.ReportMetric(me, "run-MB/s")
	b.ReportMetric(100*me/mb, "%-of-bare")
	b.Logf("\n50 MiB flood, %d rounds each, interleaved on the same pty, byte-identical (crc32c %08x) every time\n"+
		"  %-46s %8s %8s %8s %8s\n"+
		"  %-46s %8.1f %8.1f %8.1f %7.1f%%\n  %-46s %8.1f %8.1f %8.1f %7.1f%%\n  %-46s %8.1f %8.1f %8.1f %7.1f%%",
		rounds, floodSum(), "path (MB/s)", "median", "min", "max", "of bare",
		"bare go.bug.st/serial read loop", mb, slices.Min(bare), slices.Max(bare), 100.0,
		"fixtures/serial console events only", mc, slices.Min(cons), slices.Max(cons), 100*mc/mb,
		"runner.Run: expect + 3 fail_on + recording", me, slices.Min(eng), slices.Max(eng), 100*me/mb)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func percentile(v []time.Duration, p float64) time.Duration {
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

// responder answers "ping N" lines on the pty master with "pong N\r\n".
// stop closes the slave (the last one open), which ends the master's
// blocking read with EIO, and waits for the goroutine.
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

func BenchmarkRoundTrip(b *testing.B) {
	const n = 1000
	for range b.N {
		master, slave := benchPtyFiles(b)
		path := slave.Name()
		stop := responder(master, slave)

		// Bare: write and read until the answer, with go.bug.st/serial.
		p, err := bugserial.Open(path, &bugserial.Mode{BaudRate: 115200})
		if err != nil {
			b.Fatal(err)
		}
		bare := make([]time.Duration, 0, n)
		buf := make([]byte, 4096)
		for i := range n {
			want := "pong " + strconv.Itoa(i) + "\r\n"
			t0 := time.Now()
			if _, err := p.Write([]byte("ping " + strconv.Itoa(i) + "\n")); err != nil {
				b.Fatal(err)
			}
			var got []byte
			for !bytes.Contains(got, []byte(want)) {
				k, err := p.Read(buf)
				if err != nil {
					b.Fatal(err)
				}
				got = append(got, buf[:k]...)
			}
			bare = append(bare, time.Since(t0))
		}
		p.Close()

		// Run: 1000 send/expect pairs through the serial console.
		con, err := serial.Open(context.Background(), specs.Console{Port: path, Baud: 115200}, serial.Options{Name: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		steps := make([]specs.Step, 0, 2*n)
		for i := range n {
			steps = append(steps, sendLine(b, "ping "+strconv.Itoa(i)), expectText(b, "pong "+strconv.Itoa(i)+"\r\n", 10*time.Second))
		}
		spec := &specs.Spec{Name: "ping", FailOn: []specs.Pattern{text(b, "HardFault")}, Tests: []specs.Test{{Name: "ping", Steps: steps}}}
		rt := make([]time.Duration, 0, n)
		var t0 time.Time
		sink := func(ev runner.Event) {
			switch ev := ev.(type) {
			case runner.StepStarted:
				if ev.Kind == specs.StepSend {
					t0 = time.Now()
				}
			case runner.StepFinished:
				if ev.Kind == specs.StepExpect {
					rt = append(rt, time.Since(t0))
				}
			}
		}
		res, err := runner.Run(context.Background(), runner.Job{Spec: spec, Board: runner.Board{Power: fake.NewPower(nil), Console: con}}, runner.Options{Events: sink})
		con.Close()
		stop()
		if err != nil {
			b.Fatal(err)
		}
		if res.Outcome != runner.Passed || len(rt) != n {
			b.Fatalf("ping: %s: %s (%d round trips)", res.Outcome, res.Message, len(rt))
		}
		us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
		b.ReportMetric(us(percentile(rt, 0.5)), "run-median-µs")
		b.ReportMetric(us(percentile(rt, 0.99)), "run-p99-µs")
		b.ReportMetric(us(percentile(bare, 0.5)), "bare-median-µs")
		b.Logf("\n%d × send \"ping i\" / expect \"pong i\" on a pty (responder goroutine on the master)\n"+
			"  %-40s %9s %9s %9s\n  %-40s %9.1f %9.1f %9.1f\n  %-40s %9.1f %9.1f %9.1f",
			n, "path", "median µs", "p99 µs", "max µs",
			"bare go.bug.st/serial write+read", us(percentile(bare, 0.5)), us(percentile(bare, 0.99)), us(slices.Max(bare)),
			"runner.Run send+expect steps", us(percentile(rt, 0.5)), us(percentile(rt, 0.99)), us(slices.Max(rt)))
	}
}

// BenchmarkFloodPeakRSS runs one flood through Run in a child process and
// reports the child's peak RSS (VmHWM), so that the benchmark's own
// allocations do not count.
func BenchmarkFloodPeakRSS(b *testing.B) {
	if os.Getenv("HILFARM_RSS_CHILD") == "1" {
		before := procStatus(b, "VmRSS")
		master, path := benchPty(b)
		_, sum, n := runFlood(b, master, path)
		if sum != floodSum() || n != floodBytes {
			b.Fatalf("flood not byte-identical")
		}
		fmt.Printf("RSS before=%d peak=%d\n", before, procStatus(b, "VmHWM"))
		return
	}
	for range b.N {
		cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^BenchmarkFloodPeakRSS$", "-test.benchtime=1x")
		cmd.Env = append(os.Environ(), "HILFARM_RSS_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("child: %v\n%s", err, out)
		}
		var before, peak int
		for _, l := range strings.Split(string(out), "\n") {
			if _, err := fmt.Sscanf(l, "RSS before=%d peak=%d", &before, &peak); err == nil {
				break
			}
		}
		if peak == 0 {
			b.Fatalf("child printed no RSS:\n%s", out)
		}
		b.ReportMetric(float64(peak)/1024, "peak-RSS-MiB")
		b.Logf("\npeak RSS of a process running a 50 MiB flood through Run: %.1f MiB (%.1f MiB before the flood; the test binary itself holds a 64 KiB flood block)",
			float64(peak)/1024, float64(before)/1024)
	}
}

// procStatus returns a field of /proc/self/status in kB.
func procStatus(b testing.TB, field string) int {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	b.Fatalf("no %s in /proc/self/status", field)
	return 0
}
