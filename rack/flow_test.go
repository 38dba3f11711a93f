package rack

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/hilfarm/hilfarm/rack/linkproxy"
	"github.com/nats-io/nats.go/jetstream"
)

func eventCount(t testing.TB, h *Hub, rack string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := h.js.Stream(ctx, EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter("farm.evt."+rack+".>"))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

func jobsLeft(t testing.TB, h *Hub) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := h.jobs.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func decided(r JobRecord) bool { return r.Verdict != "" }

// A silent cut (black hole, no FIN/RST) in the middle of a job: the rack
// notices within PingInterval×MaxPingsOut, keeps running the job, and its
// result reaches the hub exactly once after the link returns. The job's
// firmware came once from the hub's object store and then from the cache.
func TestSilentCutMidJob(t *testing.T) {
	t.Parallel()
	f := newTestFarm(t, 60*time.Second, map[string][]string{"r1": {"stm32"}})
	b := newTestBoard("b1", "stm32")
	r1 := f.addRack("r1", f.pw["r1"], b)
	waitFor(t, 15*time.Second, "leaf link", r1.agent.LinkUp)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	image := bytes.Repeat([]byte("firmware!"), 100_000) // 900 kB
	digest, err := f.hub.PutFirmware(ctx, bytes.NewReader(image))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(image); hex.EncodeToString(sum[:]) != digest {
		t.Fatalf("digest %s is not the image's sha256", digest)
	}
	if _, err := f.hub.Submit(ctx, Job{ID: "j1", Type: "stm32", Firmware: digest}); err != nil {
		t.Fatal(err)
	}
	recv(t, b.started, 20*time.Second, "j1 to start")
	if _, err := f.hub.WaitJob(ctx, "j1", func(r JobRecord) bool { return len(r.Attempts) == 1 }); err != nil {
		t.Fatal(err)
	}

	// Cut silently. The production ping settings (2 s × 3) detect it.
	cut := time.Now()
	r1.proxy.SetMode(linkproxy.Blackhole)
	waitFor(t, 30*time.Second, "the rack to notice the silent cut", func() bool { return !r1.agent.LinkUp() })
	t.Logf("silent cut detected by the rack after %v (PingInterval %v × MaxPingsOut %d)", time.Since(cut).Round(10*time.Millisecond), DefaultPingInterval, DefaultMaxPingsOut)
	b.verdicts <- "pass" // the job ends while the link is down
	waitFor(t, 10*time.Second, "the result in the outbox", func() bool { n, _ := r1.agent.OutboxPending(); return n == 1 })
	if rec, _ := f.hub.Job("j1"); rec.Verdict != "" {
		t.Fatalf("verdict %q arrived over a cut link", rec.Verdict)
	}
	r1.proxy.SetMode(linkproxy.Pass)
	back := time.Now()
	rec, err := f.hub.WaitJob(ctx, "j1", decided)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("result at the hub %v after the link returned", time.Since(back).Round(10*time.Millisecond))
	if rec.Verdict != "pass" || rec.DecidedBy != "j1#1" || len(rec.Attempts) != 1 {
		t.Fatalf("job record %+v", rec)
	}
	if !strings.Contains(rec.Detail, digest) {
		t.Errorf("the board ran %q, not the cached firmware %s", rec.Detail, digest)
	}
	waitFor(t, 10*time.Second, "outbox drained", func() bool { n, _ := r1.agent.OutboxPending(); return n == 0 })
	if n := eventCount(t, f.hub, "r1"); n != 1 {
		t.Fatalf("EVENTS holds %d results from r1, want exactly 1", n)
	}
	if st := f.hub.Stats(); st.Results != 1 || st.Duplicates != 0 || st.Rejected != 0 {
		t.Fatalf("ingest stats %+v", st)
	}
	waitFor(t, 10*time.Second, "the decided job's message to leave JOBS", func() bool { return jobsLeft(t, f.hub) == 0 })

	// A second job with the same firmware does not download it again.
	if _, err := f.hub.Submit(ctx, Job{ID: "j2", Type: "stm32", Firmware: digest}); err != nil {
		t.Fatal(err)
	}
	recv(t, b.started, 20*time.Second, "j2 to start")
	b.verdicts <- "fail"
	if rec, err := f.hub.WaitJob(ctx, "j2", decided); err != nil || rec.Verdict != "fail" {
		t.Fatalf("j2: %+v %v", rec, err)
	}
	if n := r1.agent.FirmwareFetches(); n != 1 {
		t.Fatalf("firmware downloaded %d times for one digest, want 1", n)
	}
	checkLedger(t, f.hub)
}

// The PubAck of a result is lost (the hub→rack direction is black-holed
// after the result was stored): the outbox publishes the row again with the
// same Nats-Msg-Id and the hub keeps exactly one copy.
func TestLostPubAckNoDuplicate(t *testing.T) {
	t.Parallel()
	f := newTestFarm(t, 60*time.Second, map[string][]string{"r1": {"stm32"}})
	b := newTestBoard("b1", "stm32")
	r1 := f.addRack("r1", f.pw["r1"], b)
	waitFor(t, 15*time.Second, "leaf link", r1.agent.LinkUp)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if _, err := f.hub.Submit(ctx, Job{ID: "j1", Type: "stm32"}); err != nil {
		t.Fatal(err)
	}
	recv(t, b.started, 20*time.Second, "j1 to start")
	r1.proxy.SetMode(linkproxy.BlackholeDown)
	b.verdicts <- "pass"
	// The result crosses rack→hub and is stored, but its PubAck never comes back.
	if _, err := f.hub.WaitJob(ctx, "j1", decided); err != nil {
		t.Fatal(err)
	}
	if n, _ := r1.agent.OutboxPending(); n != 1 {
		t.Fatalf("outbox pending %d while the PubAck cannot arrive, want 1", n)
	}
	r1.proxy.SetMode(linkproxy.Pass)
	waitFor(t, 60*time.Second, "outbox drained after the link returns", func() bool { n, _ := r1.agent.OutboxPending(); return n == 0 })
	if n := eventCount(t, f.hub, "r1"); n != 1 {
		t.Fatalf("EVENTS holds %d results, want exactly 1 (dedupe by Nats-Msg-Id)", n)
	}
	if st := f.hub.Stats(); st.Results != 1 || st.Duplicates != 0 {
		t.Fatalf("ingest stats %+v", st)
	}
	checkLedger(t, f.hub)
}

// A rack killed mid-job: after AckWait its job goes to another rack, whose
// attempt decides; the first attempt stays recorded as superseded.
func TestRackKilledMidJob(t *testing.T) {
	t.Parallel()
	ackWait := 3 * time.Second
	f := newTestFarm(t, ackWait, map[string][]string{"r1": {"stm32"}, "r2": {"stm32"}})
	b1 := newTestBoard("b1", "stm32")
	r1 := f.addRack("r1", f.pw["r1"], b1)
	waitFor(t, 15*time.Second, "r1 link", r1.agent.LinkUp)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if _, err := f.hub.Submit(ctx, Job{ID: "j1", Type: "stm32"}); err != nil {
		t.Fatal(err)
	}
	recv(t, b1.started, 20*time.Second, "j1 on r1")
	b2 := newTestBoard("b2", "stm32")
	r2 := f.addRack("r2", f.pw["r2"], b2)
	waitFor(t, 15*time.Second, "r2 link", r2.agent.LinkUp)
	killed := time.Now()
	r1.agent.Close() // the rack dies: no result, no more heartbeats
	recv(t, b2.started, 30*time.Second, "j1 redelivered to r2")
	t.Logf("redelivered %v after the kill (AckWait %v)", time.Since(killed).Round(10*time.Millisecond), ackWait)
	b2.verdicts <- "pass"
	rec, err := f.hub.WaitJob(ctx, "j1", decided)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Verdict != "pass" || rec.DecidedBy != "j1#2" || len(rec.Attempts) != 2 ||
		rec.Attempts[0].Rack != "r1" || rec.Attempts[0].State != "superseded" || rec.Attempts[1].Rack != "r2" {
		t.Fatalf("job record %+v", rec)
	}
	waitFor(t, 10*time.Second, "JOBS empty", func() bool { return jobsLeft(t, f.hub) == 0 })
	checkLedger(t, f.hub)
}

// A rack partitioned longer than AckWait: the job is retried on another
// rack, which decides the verdict. The stale attempt's late result arrives
// when the link returns; it is recorded as that attempt's and does not
// overwrite the verdict. The stale rack never acks, so it cannot delete the
// retried attempt's message (nats-server#4786).
func TestStaleAttemptFenced(t *testing.T) {
	t.Parallel()
	ackWait := 3 * time.Second
	f := newTestFarm(t, ackWait, map[string][]string{"r1": {"stm32"}, "r2": {"stm32"}})
	b1 := newTestBoard("b1", "stm32")
	r1 := f.addRack("r1", f.pw["r1"], b1)
	waitFor(t, 15*time.Second, "r1 link", r1.agent.LinkUp)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if _, err := f.hub.Submit(ctx, Job{ID: "j1", Type: "stm32"}); err != nil {
		t.Fatal(err)
	}
	recv(t, b1.started, 20*time.Second, "j1 on r1")
	r1.proxy.SetMode(linkproxy.Blackhole)
	b2 := newTestBoard("b2", "stm32")
	r2 := f.addRack("r2", f.pw["r2"], b2)
	recv(t, b2.started, 30*time.Second, "j1 retried on r2")
	if _, err := f.hub.WaitJob(ctx, "j1", func(r JobRecord) bool { return r.Current == 2 }); err != nil {
		t.Fatal(err)
	}
	// The stale attempt finishes first, during the partition, with another verdict.
	b1.verdicts <- "fail"
	waitFor(t, 10*time.Second, "r1's result in its outbox", func() bool { n, _ := r1.agent.OutboxPending(); return n == 1 })
	b2.verdicts <- "pass"
	if rec, err := f.hub.WaitJob(ctx, "j1", decided); err != nil || rec.Verdict != "pass" {
		t.Fatalf("j1: %+v %v", rec, err)
	}
	r1.proxy.SetMode(linkproxy.Pass)
	rec, err := f.hub.WaitJob(ctx, "j1", func(r JobRecord) bool { return r.Attempts[0].Verdict != "" })
	if err != nil {
		t.Fatal(err)
	}
	if rec.Verdict != "pass" || rec.DecidedBy != "j1#2" {
		t.Fatalf("the late result of a superseded attempt changed the verdict: %+v", rec)
	}
	if a := rec.Attempts[0]; a.Rack != "r1" || a.Verdict != "fail" || a.State != "superseded" {
		t.Fatalf("stale attempt recorded as %+v", a)
	}
	_ = r2
	waitFor(t, 10*time.Second, "JOBS empty", func() bool { return jobsLeft(t, f.hub) == 0 })
	checkLedger(t, f.hub)
}

// The hub restarts while a rack runs a job: the ledger (attempts) comes back
// from its store, the rack relinks by itself, and the result decides the job
// exactly once.
func TestHubRestartMidJob(t *testing.T) {
	t.Parallel()
	f := newTestFarm(t, 60*time.Second, map[string][]string{"r1": {"stm32"}})
	b := newTestBoard("b1", "stm32")
	r1 := f.addRack("r1", f.pw["r1"], b)
	waitFor(t, 15*time.Second, "leaf link", r1.agent.LinkUp)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if _, err := f.hub.Submit(ctx, Job{ID: "j1", Type: "stm32"}); err != nil {
		t.Fatal(err)
	}
	recv(t, b.started, 20*time.Second, "j1 to start")
	if _, err := f.hub.WaitJob(ctx, "j1", func(r JobRecord) bool { return len(r.Attempts) == 1 }); err != nil {
		t.Fatal(err)
	}
	f.restartHub()
	if rec, ok := f.hub.Job("j1"); !ok || len(rec.Attempts) != 1 || rec.Attempts[0].State != "running" {
		t.Fatalf("ledger after restart: %+v %v", rec, ok)
	}
	waitFor(t, 15*time.Second, "the rack to relink to the restarted hub", r1.agent.LinkUp)
	b.verdicts <- "pass"
	rec, err := f.hub.WaitJob(ctx, "j1", decided)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Verdict != "pass" || rec.DecidedBy != "j1#1" || len(rec.Attempts) != 1 {
		t.Fatalf("job record %+v", rec)
	}
	if n := eventCount(t, f.hub, "r1"); n != 1 {
		t.Fatalf("EVENTS holds %d results, want 1", n)
	}
	waitFor(t, 10*time.Second, "JOBS empty", func() bool { return jobsLeft(t, f.hub) == 0 })
	checkLedger(t, f.hub)
}

// Firmware over a rate-limited link that is cut mid-transfer: the image
// arrives intact (sha256 checked at the rack) and the job ends with one
// verdict, whether the download resumed or the attempt lapsed and was
// retried.
func TestFirmwareCutMidTransfer(t *testing.T) {
	t.Parallel()
	f := newTestFarm(t, 3*time.Second, map[string][]string{"r1": {"stm32"}})
	b := newTestBoard("b1", "stm32")
	r1 := f.addRack("r1", f.pw["r1"], b)
	waitFor(t, 15*time.Second, "leaf link", r1.agent.LinkUp)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	image := make([]byte, 4<<20)
	if _, err := rand.Read(image); err != nil { // incompressible: the leaf link compresses
		t.Fatal(err)
	}
	digest, err := f.hub.PutFirmware(ctx, bytes.NewReader(image))
	if err != nil {
		t.Fatal(err)
	}
	r1.proxy.SetRate(1 << 20) // 1 MiB/s each way: the download takes seconds
	down := r1.proxy.Down.Load()
	if _, err := f.hub.Submit(ctx, Job{ID: "j1", Type: "stm32", Firmware: digest}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the download to be under way", func() bool { return r1.proxy.Down.Load()-down > 1<<20 })
	r1.proxy.SetMode(linkproxy.Blackhole)
	waitFor(t, 30*time.Second, "the rack to notice the cut", func() bool { return !r1.agent.LinkUp() })
	r1.proxy.SetRate(0)
	r1.proxy.SetMode(linkproxy.Pass)
	recv(t, b.started, 60*time.Second, "j1 to start with its firmware")
	b.verdicts <- "pass"
	rec, err := f.hub.WaitJob(ctx, "j1", decided)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Verdict != "pass" || !strings.Contains(rec.Detail, digest) {
		t.Fatalf("job record %+v", rec)
	}
	path, err := r1.agent.Firmware(ctx, digest)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fileSHA256(path); err != nil || got != digest {
		t.Fatalf("cached image sha256 %s (%v), want %s", got, err, digest)
	}
	t.Logf("attempts %d, downloads %d", len(rec.Attempts), r1.agent.FirmwareFetches())
	checkLedger(t, f.hub)
}
