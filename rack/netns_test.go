package rack

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const ipCmd = "/usr/sbin/ip"

// vethLink is a network namespace joined to the test's namespace by a veth
// pair with private addresses: the hub listens on hostIP, a rack agent
// process inside ns dials it. Taking hostIf down is a silent cut: no packet
// crosses either way, so neither side gets a FIN or an RST.
type vethLink struct {
	t            testing.TB
	ns           string
	hostIf, nsIf string
	hostIP, nsIP string
}

// needRoot skips a test that needs root, except under CI=true, where CI
// runs as root and a skip would hide a test that no longer runs.
func needRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s needs root; CI runs as root", why)
	}
	t.Skipf("SKIP: %s needs root", why)
}

func ipRun(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(ipCmd, args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// newVethLink makes the namespace and the veth pair, with random names
// and a random 10.213.x.y/30 so parallel runs do not collide. Everything
// is removed on cleanup, also when the test fails.
func newVethLink(t testing.TB) *vethLink {
	t.Helper()
	needRoot(t, "the network-namespace link cut")
	if _, err := os.Stat(ipCmd); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: %v (CI must have iproute2)", ipCmd, err)
		}
		t.Skipf("SKIP: no %s: %v", ipCmd, err)
	}
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	tag := fmt.Sprintf("%02x%02x", b[0], b[1])
	net3, net4 := int(b[0]), int(b[2]&0xfc)
	l := &vethLink{
		t:      t,
		ns:     "hilfarm-cut-" + tag,
		hostIf: "hfh" + tag, // ≤ 15 characters
		nsIf:   "hfr" + tag,
		hostIP: fmt.Sprintf("10.213.%d.%d", net3, net4+1),
		nsIP:   fmt.Sprintf("10.213.%d.%d", net3, net4+2),
	}
	ipRun(t, "netns", "add", l.ns)
	t.Cleanup(func() {
		// Deleting one end removes the pair; the namespace goes last.
		if out, err := exec.Command(ipCmd, "link", "del", l.hostIf).CombinedOutput(); err != nil && !strings.Contains(string(out), "Cannot find device") {
			t.Errorf("ip link del %s: %v: %s", l.hostIf, err, out)
		}
		if out, err := exec.Command(ipCmd, "netns", "del", l.ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", l.ns, err, out)
		}
	})
	ipRun(t, "link", "add", l.hostIf, "type", "veth", "peer", "name", l.nsIf, "netns", l.ns)
	ipRun(t, "addr", "add", l.hostIP+"/30", "dev", l.hostIf)
	ipRun(t, "link", "set", l.hostIf, "up")
	ipRun(t, "-n", l.ns, "addr", "add", l.nsIP+"/30", "dev", l.nsIf)
	ipRun(t, "-n", l.ns, "link", "set", l.nsIf, "up")
	ipRun(t, "-n", l.ns, "link", "set", "lo", "up")
	return l
}

func (l *vethLink) cut()     { l.t.Helper(); ipRun(l.t, "link", "set", l.hostIf, "down") }
func (l *vethLink) restore() { l.t.Helper(); ipRun(l.t, "link", "set", l.hostIf, "up") }

// A real silent cut: the rack agent is its own process in its own network
// namespace, its only way to the hub a veth pair; the hub's end is taken
// down for 20 s while a job runs. The rack notices, the job ends during the
// cut, and its result reaches the hub exactly once after the link returns.
func TestNetnsSilentCutMidJob(t *testing.T) {
	t.Parallel()
	l := newVethLink(t)
	f := newTestFarmAt(t, 60*time.Second, map[string][]string{"r1": {"stm32"}}, l.hostIP, []string{l.hostIP})
	p := startAgentProc(t, f, l.ns, "r1", f.hub.LeafURL(l.hostIP), l.hostIP, 1, "stm32")
	waitFor(t, 20*time.Second, "the rack process's leaf link over the veth", p.linkUp)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	if _, err := f.hub.Submit(ctx, Job{ID: "j1", Type: "stm32"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "j1 to start at the rack", func() bool { return p.hasStarted("j1") })
	if _, err := f.hub.WaitJob(ctx, "j1", func(r JobRecord) bool { return len(r.Attempts) == 1 }); err != nil {
		t.Fatal(err)
	}

	const cutFor = 20 * time.Second
	cut := time.Now()
	l.cut()
	waitFor(t, 30*time.Second, "the rack to notice the silent cut", func() bool { return !p.linkUp() })
	detected := time.Since(cut)
	t.Logf("silent cut detected by the rack process after %v (PingInterval %v × MaxPingsOut %d)", detected.Round(10*time.Millisecond), DefaultPingInterval, DefaultMaxPingsOut)
	p.release("j1", "pass") // the job ends while the link is down
	waitFor(t, 15*time.Second, "j1's result in the rack's outbox", func() bool { return p.outboxLen() == 1 })
	if rec, _ := f.hub.Job("j1"); rec.Verdict != "" {
		t.Fatalf("verdict %q reached the hub over a cut link", rec.Verdict)
	}
	if d := cutFor - time.Since(cut); d > 0 {
		time.Sleep(d)
	}
	if p.linkUp() {
		t.Fatal("the rack's link came back while the veth was down")
	}
	l.restore()
	back := time.Now()
	t.Logf("link down for %v", back.Sub(cut).Round(10*time.Millisecond))
	rec, err := f.hub.WaitJob(ctx, "j1", decided)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("result at the hub %v after the link returned", time.Since(back).Round(10*time.Millisecond))
	if rec.Verdict != "pass" || rec.DecidedBy != "j1#1" || len(rec.Attempts) != 1 {
		t.Fatalf("job record %+v", rec)
	}
	// Attempts as they happened: one, claimed before the cut on r1/b1,
	// reported after the link returned.
	a := rec.Attempts[0]
	if a.Rack != "r1" || a.Board != "b1" || a.State != "final" || a.Verdict != "pass" || !a.Claimed.Before(cut) || a.Reported.Before(back) {
		t.Fatalf("attempt %+v (cut at %v, back at %v)", a, cut.UTC(), back.UTC())
	}
	waitFor(t, 15*time.Second, "the rack's outbox to drain", func() bool { return p.outboxLen() == 0 })
	if n := eventCount(t, f.hub, "r1"); n != 1 {
		t.Fatalf("EVENTS holds %d results from r1, want exactly 1", n)
	}
	if st := f.hub.Stats(); st.Results != 1 || st.Duplicates != 0 || st.Rejected != 0 {
		t.Fatalf("ingest stats %+v", st)
	}
	waitFor(t, 10*time.Second, "the decided job's message to leave JOBS", func() bool { return jobsLeft(t, f.hub) == 0 })
	if _, downs, _, started := p.state(); downs != 1 || len(started) != 1 {
		t.Fatalf("rack saw %d link losses and started %v, want 1 loss and only j1", downs, started)
	}
	// nats-server's own words for a link closed by missed pings.
	stale := p.stderrLines("Leafnode connection closed: Stale Connection")
	if len(stale) != 1 {
		t.Fatalf("rack log has %d stale-connection lines, want 1 (the cut noticed by missed pings)", len(stale))
	}
	for _, sub := range []string{"Stale Connection", "leaf link", "result queued"} {
		for _, line := range p.stderrLines(sub) {
			t.Logf("rack log: %s", line)
		}
	}
	checkLedger(t, f.hub)
}
