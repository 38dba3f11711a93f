package rack

// Benchmarks for the figures issue 13 asks `make bench` to print. Each
// runs its scenario once (use -benchtime 1x, as `make rack-bench` does)
// and prints every target with its figure, MET or NOT MET, and the load.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hilfarm/hilfarm/rack/linkproxy"
)

func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "loadavg unavailable"
	}
	return "loadavg " + strings.Join(strings.Fields(string(data))[:3], " ")
}

func verdict(ok bool) string {
	if ok {
		return "MET"
	}
	return "NOT MET"
}

// target prints one issue target with its figure.
func target(b *testing.B, name, figure, goal string, ok bool) {
	b.Helper()
	fmt.Printf("rack: %-62s %-28s (target %s) %s  [%s, %d cores]\n", name, figure, goal, verdict(ok), loadavg(), runtime.NumCPU())
}

func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return s[i]
}

// simBoard ends each job after a short simulated run; it records when each
// job started and how often each job ran.
type simBoard struct {
	name, typ string
	runFor    time.Duration
	starts    *sync.Map // job id → time.Time of the first Run
	runs      *sync.Map // job id → *atomic.Int32
}

func (s *simBoard) Name() string  { return s.name }
func (s *simBoard) Type() string  { return s.typ }
func (s *simBoard) Healthy() bool { return true }
func (s *simBoard) Run(ctx context.Context, j Job, _ string) (string, string) {
	s.starts.LoadOrStore(j.ID, time.Now())
	n, _ := s.runs.LoadOrStore(j.ID, new(atomic.Int32))
	n.(*atomic.Int32).Add(1)
	t := time.NewTimer(s.runFor)
	defer t.Stop()
	select {
	case <-t.C:
		return "pass", ""
	case <-ctx.Done():
		return "error", "cancelled"
	}
}

// BenchmarkRackFarm: 4 racks × 12 sim boards behind one hub (real embedded
// servers, TLS leaf links through TCP proxies, SQLite outboxes). First 200
// jobs one at a time (submit → Board.Run latency), then 1,000 at once.
func BenchmarkRackFarm(b *testing.B) {
	const racks, boards, latencyJobs, jobs = 4, 12, 200, 1000
	spec := map[string][]string{}
	for i := range racks {
		spec[fmt.Sprintf("r%d", i+1)] = []string{"sim"}
	}
	f := newTestFarm(b, 60*time.Second, spec)
	var starts, runs sync.Map
	var rs []*testRack
	for i := range racks {
		name := fmt.Sprintf("r%d", i+1)
		var bs []Board
		for j := range boards {
			bs = append(bs, &simBoard{name: fmt.Sprintf("b%d", j+1), typ: "sim", runFor: 5 * time.Millisecond, starts: &starts, runs: &runs})
		}
		rs = append(rs, f.addRackBoards(name, f.pw[name], bs))
	}
	for _, r := range rs {
		waitFor(b, 20*time.Second, "leaf links", r.agent.LinkUp)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	time.Sleep(2 * time.Second) // every board's first pull request is at the hub

	var lat []time.Duration
	for i := range latencyJobs {
		id := fmt.Sprintf("lat-%04d", i)
		t0 := time.Now()
		if _, err := f.hub.Submit(ctx, Job{ID: id, Type: "sim"}); err != nil {
			b.Fatal(err)
		}
		if _, err := f.hub.WaitJob(ctx, id, decided); err != nil {
			b.Fatal(err)
		}
		v, ok := starts.Load(id)
		if !ok {
			b.Fatalf("job %s decided but never started", id)
		}
		lat = append(lat, v.(time.Time).Sub(t0))
	}
	med := percentile(lat, 0.5)
	target(b, "submit through the hub → Board.Run at a rack, median", fmt.Sprintf("%.2f ms (p90 %.2f, n=%d)", msf(med), msf(percentile(lat, 0.9)), len(lat)), "≤ 10 ms", med <= 10*time.Millisecond)
	b.ReportMetric(msf(med), "submit-to-start-p50-ms")

	before := f.hub.Stats()
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, jobs)
	for w := range 4 { // four submitters
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < jobs; i += 4 {
				if _, err := f.hub.Submit(ctx, Job{ID: fmt.Sprintf("job-%04d", i), Type: "sim"}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	submitted := time.Since(t0)
	allDone := func() bool {
		n := 0
		for _, j := range f.hub.Jobs() {
			if strings.HasPrefix(j.ID, "job-") && j.Verdict != "" {
				n++
			}
		}
		return n == jobs
	}
	deadline := time.Now().Add(5 * time.Minute)
	for !allDone() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	elapsed := time.Since(t0)
	lost, dupVerdicts, dupRuns, retried := 0, 0, 0, 0
	for _, j := range f.hub.Jobs() {
		if !strings.HasPrefix(j.ID, "job-") {
			continue
		}
		if j.Verdict != "pass" {
			lost++
		}
		withVerdict := 0
		for _, a := range j.Attempts {
			if a.Verdict != "" {
				withVerdict++
			}
		}
		if withVerdict > 1 {
			dupVerdicts++
		}
		if len(j.Attempts) > 1 {
			retried++
		}
		if n, ok := runs.Load(j.ID); ok && n.(*atomic.Int32).Load() > 1 {
			dupRuns++
		}
	}
	st := f.hub.Stats()
	dupResults := st.Duplicates - before.Duplicates
	left := jobsLeft(b, f.hub)
	target(b, fmt.Sprintf("%d racks × %d sim boards, %d jobs: lost", racks, boards, jobs), fmt.Sprintf("%d lost", lost), "0", lost == 0)
	target(b, fmt.Sprintf("%d racks × %d sim boards, %d jobs: duplicate verdicts", racks, boards, jobs),
		fmt.Sprintf("%d dup (%d dup results, %d runs twice)", dupVerdicts, dupResults, dupRuns), "0", dupVerdicts == 0 && dupResults == 0 && dupRuns == 0)
	fmt.Printf("rack:   %d jobs submitted in %v, all decided in %v (%.0f jobs/s); %d retried; JOBS left %d; per rack:",
		jobs, submitted.Round(time.Millisecond), elapsed.Round(time.Millisecond), float64(jobs)/elapsed.Seconds(), retried, left)
	perRack := map[string]int{}
	for _, j := range f.hub.Jobs() {
		if strings.HasPrefix(j.ID, "job-") && len(j.Attempts) > 0 {
			perRack[j.Attempts[len(j.Attempts)-1].Rack]++
		}
	}
	for i := range racks {
		n := fmt.Sprintf("r%d", i+1)
		fmt.Printf(" %s=%d", n, perRack[n])
	}
	fmt.Println()
	b.ReportMetric(float64(lost), "lost")
	b.ReportMetric(float64(dupVerdicts+dupResults+dupRuns), "duplicates")
	checkLedger(b, f.hub)
}

// BenchmarkRackConsole: console chunks from a rack to a hub watcher at
// 1 MB/s (1 KiB every millisecond, random bytes so the leaf link's
// compression cannot shrink them); latency from Agent.Console to the
// watcher's callback (one process, one clock).
func BenchmarkRackConsole(b *testing.B) {
	f := newTestFarm(b, 60*time.Second, map[string][]string{"r1": {"sim"}})
	r1 := f.addRackBoards("r1", f.pw["r1"], nil)
	waitFor(b, 20*time.Second, "leaf link", r1.agent.LinkUp)
	var (
		mu   sync.Mutex
		lat  []time.Duration
		seen atomic.Int64
	)
	w, err := f.hub.WatchConsole("r1", "b1", func(p []byte) {
		now := time.Now()
		seen.Add(1)
		if len(p) < 9 || p[0] != 'T' {
			return
		}
		sent := time.Unix(0, int64(binary.BigEndian.Uint64(p[1:9])))
		mu.Lock()
		lat = append(lat, now.Sub(sent))
		mu.Unlock()
	})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = w.Unsubscribe() }()
	waitFor(b, 10*time.Second, "the watch to reach the rack", func() bool {
		_ = r1.agent.Console("b1", []byte("probe"))
		_ = r1.agent.Conn().Flush()
		time.Sleep(50 * time.Millisecond)
		return seen.Load() > 0
	})
	// Every millisecond, send what the 1 MB/s schedule says is due (about
	// 1 KB; more after a late tick, so the rate holds under load).
	const bytesPerSec, dur = 1_000_000, 5 * time.Second
	buf := make([]byte, 64<<10)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	sent, sentBytes := 0, 0
	start := time.Now()
	for time.Since(start) < dur {
		<-tick.C
		due := min(int(time.Since(start).Seconds()*bytesPerSec)-sentBytes, len(buf))
		if due < 16 {
			continue
		}
		if _, err := rand.Read(buf[:due]); err != nil {
			b.Fatal(err)
		}
		buf[0] = 'T'
		binary.BigEndian.PutUint64(buf[1:9], uint64(time.Now().UnixNano()))
		if err := r1.agent.Console("b1", buf[:due]); err != nil {
			b.Fatal(err)
		}
		sent++
		sentBytes += due
	}
	rate := float64(sentBytes) / time.Since(start).Seconds() / 1e6
	waitFor(b, 10*time.Second, "every chunk at the watcher", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(lat) >= sent
	})
	mu.Lock()
	p50, p99 := percentile(lat, 0.5), percentile(lat, 0.99)
	n := len(lat)
	mu.Unlock()
	target(b, fmt.Sprintf("console rack → hub watcher at %.2f MB/s, p50", rate), fmt.Sprintf("%.3f ms (p99 %.3f, n=%d)", msf(p50), msf(p99), n), "≤ 2 ms", p50 <= 2*time.Millisecond)
	b.ReportMetric(msf(p50), "console-p50-ms")
}

// BenchmarkRackCutRecovery: 12 jobs run on a rack's 12 boards; the link is
// black-holed (silent) for 20 s, the jobs end during the cut, and the time
// from the link's return until every result is at the hub is measured.
func BenchmarkRackCutRecovery(b *testing.B) {
	const n, cutFor = 12, 20 * time.Second
	f := newTestFarm(b, 60*time.Second, map[string][]string{"r1": {"sim"}})
	var boards []*testBoard
	for i := range n {
		boards = append(boards, newTestBoard(fmt.Sprintf("b%d", i+1), "sim"))
	}
	r1 := f.addRack("r1", f.pw["r1"], boards...)
	waitFor(b, 20*time.Second, "leaf link", r1.agent.LinkUp)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for i := range n {
		if _, err := f.hub.Submit(ctx, Job{ID: fmt.Sprintf("cut-%02d", i), Type: "sim"}); err != nil {
			b.Fatal(err)
		}
	}
	for _, bd := range boards {
		recv(b, bd.started, 30*time.Second, bd.name+" to start a job")
	}
	cut := time.Now()
	r1.proxy.SetMode(linkproxy.Blackhole)
	waitFor(b, 30*time.Second, "the rack to notice the cut", func() bool { return !r1.agent.LinkUp() })
	detected := time.Since(cut)
	for _, bd := range boards {
		bd.verdicts <- "pass"
	}
	waitFor(b, 30*time.Second, "every result in the outbox", func() bool { k, _ := r1.agent.OutboxPending(); return k == n })
	if d := cutFor - time.Since(cut); d > 0 {
		time.Sleep(d)
	}
	r1.proxy.SetMode(linkproxy.Pass)
	back := time.Now()
	var relinked time.Duration
	for {
		if relinked == 0 && r1.agent.LinkUp() {
			relinked = time.Since(back)
		}
		done := 0
		for _, j := range f.hub.Jobs() {
			if j.Verdict != "" {
				done++
			}
		}
		if done == n {
			break
		}
		if time.Since(back) > 2*time.Minute {
			b.Fatalf("only %d of %d results at the hub 2 min after the link returned", done, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(back)
	target(b, fmt.Sprintf("%d results complete at the hub after a %v silent cut", n, cutFor), fmt.Sprintf("%.2f s after the link returned", took.Seconds()), "≤ 15 s", took <= 15*time.Second)
	fmt.Printf("rack:   cut noticed by the rack after %.2f s (target ≤ 10 s: %s); link back after %.2f s\n", detected.Seconds(), verdict(detected <= 10*time.Second), relinked.Seconds())
	if st := f.hub.Stats(); st.Results != n || st.Duplicates != 0 {
		b.Fatalf("ingest stats %+v, want %d results and no duplicates", st, n)
	}
	b.ReportMetric(took.Seconds(), "results-after-cut-s")
	checkLedger(b, f.hub)
}

// BenchmarkRackAgentIdleRSS: a rack agent with 12 boards as its own
// process (the test binary re-executed, see proc_test.go), linked to the
// hub and idle; its VmRSS from /proc.
func BenchmarkRackAgentIdleRSS(b *testing.B) {
	f := newTestFarm(b, 60*time.Second, map[string][]string{"r1": {"sim"}})
	p := startAgentProc(b, f, "", "r1", f.hub.LeafURL("127.0.0.1"), "127.0.0.1", 12, "sim")
	waitFor(b, 20*time.Second, "the agent process's link", p.linkUp)
	time.Sleep(5 * time.Second) // idle: 12 boards waiting on pull requests
	var rss []int
	for range 3 {
		kb, err := vmRSS(p.cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		rss = append(rss, kb)
		time.Sleep(time.Second)
	}
	slices.Sort(rss)
	mb := float64(rss[1]) / 1024
	target(b, "idle RSS of a rack agent process with 12 boards (median of 3)", fmt.Sprintf("%.1f MiB", mb), "≤ 40 MB", float64(rss[1])*1024 <= 40e6)
	b.ReportMetric(mb, "agent-idle-rss-MiB")
}

func vmRSS(pid int) (int, error) {
	fh, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "VmRSS:" {
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// rackProbe is added to package main of cmd/hilfarm through `go build
// -overlay` (the source tree is not touched): it links the hub and the
// agent in, behind a branch the linker cannot remove.
const rackProbe = `package main

import (
	"context"
	"os"

	"github.com/hilfarm/hilfarm/rack"
)

func init() {
	if os.Getenv("HILFARM_RACK_SIZE_PROBE") == "never-set" {
		h, _ := rack.NewHub(context.Background(), rack.HubConfig{})
		a, _ := rack.NewAgent(context.Background(), rack.AgentConfig{})
		println(h, a)
	}
}
`

// BenchmarkRackBinarySizeArm64: the stripped linux/arm64 hilfarm binary as
// it is, and the same binary with rack.NewHub and rack.NewAgent linked in.
func BenchmarkRackBinarySizeArm64(b *testing.B) {
	dir := b.TempDir()
	probe := filepath.Join(dir, "zz_rack_probe.go")
	if err := os.WriteFile(probe, []byte(rackProbe), 0o600); err != nil {
		b.Fatal(err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		b.Fatal(err)
	}
	overlay := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlay, fmt.Appendf(nil, `{"Replace":{%q:%q}}`, filepath.Join(root, "cmd/hilfarm/zz_rack_probe.go"), probe), 0o600); err != nil {
		b.Fatal(err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		b.Fatalf("the go command is needed to build the probe: %v", err)
	}
	build := func(out string, extra ...string) int64 {
		args := append([]string{"build", "-trimpath", "-ldflags", "-s -w", "-o", out}, extra...)
		cmd := exec.Command(goBin, append(args, "./cmd/hilfarm")...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		st, err := os.Stat(out)
		if err != nil {
			b.Fatal(err)
		}
		return st.Size()
	}
	base := build(filepath.Join(dir, "hilfarm"))
	with := build(filepath.Join(dir, "hilfarm-rack"), "-overlay", overlay)
	list := exec.Command(goBin, "list", "-deps", "./cmd/hilfarm")
	list.Dir = root
	deps, _ := list.Output()
	importsRack := strings.Contains(string(deps), "github.com/hilfarm/hilfarm/rack\n")
	mib := func(n int64) float64 { return float64(n) / (1 << 20) }
	fmt.Printf("rack: %-62s %.2f MiB as it is (imports package rack today: %v), %.2f MiB with rack.NewHub+NewAgent: %+.2f MiB  (reported; no target)  [%s]\n",
		"stripped linux/arm64 cmd/hilfarm", mib(base), importsRack, mib(with), mib(with-base), loadavg())
	b.ReportMetric(mib(with-base), "arm64-growth-MiB")
}
