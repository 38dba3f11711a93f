package consolebench

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// idleBoards and idleWindow: BenchmarkIdleWakeups' farm and how long it
// counts.
const (
	idleBoards = 48
	idleSettle = 5 * time.Second
	idleWindow = 10 * time.Second
)

// procTree returns pid and its descendants (from /proc/*/stat).
func procTree(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		parent[p] = pp
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		for p, pp := range parent {
			if pp == out[i] {
				out = append(out, p)
			}
		}
	}
	return out
}

// switches returns the context switches (voluntary + involuntary) of every
// thread of pid, and its thread count.
func switches(pid int) (n int64, threads int) {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue
		}
		threads++
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "voluntary_ctxt_switches:"); ok {
				x, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += x
			} else if v, ok := strings.CutPrefix(l, "nonvoluntary_ctxt_switches:"); ok {
				x, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += x
			}
		}
	}
	return n, threads
}

func comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	if len(args) > 1 {
		return filepath.Base(args[0]) + " " + args[1]
	}
	return filepath.Base(args[0])
}

type idleFigures struct {
	switches     int64 // in idleWindow, serve and its children
	children     int64 // of which the children
	processes    int   // serve and its children
	serveThreads int
	top          []string
}

// idleFarm runs serve with n idle sim boards and counts its (and its
// children's) context switches over idleWindow after idleSettle.
func idleFarm(b *testing.B, n int) idleFigures {
	dir := b.TempDir()
	addr := freeAddr(b)
	var farm strings.Builder
	fmt.Fprintf(&farm, "farm \"idle\" {\n  listen   = %q\n  data_dir = %q\n}\nboard_type \"sim\" {}\n", addr, filepath.Join(dir, "data"))
	for i := range n {
		fmt.Fprintf(&farm, "board \"sim-%02d\" {\n  type = \"sim\"\n  emulator \"sim\" {}\n}\n", i)
	}
	fp := filepath.Join(dir, "farm.hcl")
	if err := os.WriteFile(fp, []byte(farm.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	s := startServe(b, dir, fp, addr)
	time.Sleep(idleSettle) // a benchmark measures over time; the boards settle
	pids := procTree(s.cmd.Process.Pid)
	before := map[int]int64{}
	for _, p := range pids {
		before[p], _ = switches(p)
	}
	time.Sleep(idleWindow)
	type row struct {
		name string
		n    int64
		th   int
	}
	var rows []row
	var f idleFigures
	for _, p := range pids {
		c, th := switches(p)
		if th == 0 {
			continue // gone
		}
		d := c - before[p]
		rows = append(rows, row{fmt.Sprintf("pid %d %s", p, comm(p)), d, th})
		f.switches += d
		f.processes++
		if p == s.cmd.Process.Pid {
			f.serveThreads = th
		} else {
			f.children += d
		}
	}
	s.stop(b)
	sort.Slice(rows, func(i, j int) bool { return rows[i].n > rows[j].n })
	for _, r := range rows[:min(3, len(rows))] {
		f.top = append(f.top, fmt.Sprintf("%s: %d switches, %d threads", r.name, r.n, r.th))
	}
	return f
}

// BenchmarkIdleWakeups: `hilfarm serve` with 48 idle sim boards (each a
// child process on a pty) and with 1, each counted over 10 s after 5 s to
// settle: the context switches of serve's threads and of its children's.
// Targets: zero periodic wake-ups per idle board (nothing polls or ticks
// without work): (switches with 48 boards - with 1) / 47 boards / 10 s
// must be below 0.1 per second (a ticker per board, even at 1 s, gives
// ≥ 1; farm-wide tickers, which do not grow with the boards, are printed
// apart). And no OS thread per board blocked in a read or a wait: serve's
// threads must not grow with the boards (fewer than 48 with 48 boards).
func BenchmarkIdleWakeups(b *testing.B) {
	for range b.N {
		load0 := loadavg()
		one := idleFarm(b, 1)
		many := idleFarm(b, idleBoards)
		perBoard := float64(many.switches-one.switches) / float64(idleBoards-1) / idleWindow.Seconds()
		b.ReportMetric(perBoard, "wakeups/board/s")
		fmt.Printf("idle farm, sim boards, %s counted after %s to settle (load before %s, after %s)\n", idleWindow, idleSettle, load0, loadavg())
		for _, f := range []struct {
			n int
			f idleFigures
		}{{1, one}, {idleBoards, many}} {
			fmt.Printf("  %2d boards: %d context switches (%.1f/s; serve %d, its %d child processes %d), serve has %d threads\n",
				f.n, f.f.switches, float64(f.f.switches)/idleWindow.Seconds(), f.f.switches-f.f.children, f.f.processes-1, f.f.children, f.f.serveThreads)
			for _, t := range f.f.top {
				fmt.Printf("      %s\n", t)
			}
		}
		fmt.Printf("  target zero periodic wake-ups per idle board: %.3f per board per second %s (below 0.1)\n", perBoard, verdict(perBoard < 0.1))
		fmt.Printf("  target no OS thread per board blocked in a read: serve has %d threads for %d boards (%d for 1) %s\n", many.serveThreads, idleBoards, one.serveThreads, verdict(many.serveThreads < idleBoards))
	}
}
