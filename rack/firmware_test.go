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
)

// The case: a 50 MB firmware fetched by a rack with a 10 s silent
// cut in the middle of the transfer. The fetch completes after the link
// returns, the image's sha256 matches, and the job runs once.
func TestFirmware50MBCut10s(t *testing.T) {
	t.Parallel()
	f := newTestFarm(t, 3*time.Second, map[string][]string{"r1": {"stm32"}})
	b := newTestBoard("b1", "stm32")
	r1 := f.addRack("r1", f.pw["r1"], b)
	waitFor(t, 15*time.Second, "leaf link", r1.agent.LinkUp)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	const size = 50_000_000
	image := make([]byte, size)
	if _, err := rand.Read(image); err != nil { // incompressible: the leaf link compresses
		t.Fatal(err)
	}
	sum := sha256.Sum256(image)
	digest, err := f.hub.PutFirmware(ctx, bytes.NewReader(image))
	if err != nil {
		t.Fatal(err)
	}
	if digest != hex.EncodeToString(sum[:]) {
		t.Fatalf("digest %s is not the image's sha256", digest)
	}
	image = nil
	// 8 MiB/s each way: the 50 MB take ~6 s, so the cut lands mid-transfer.
	r1.proxy.SetRate(8 << 20)
	down := r1.proxy.Down.Load()
	start := time.Now()
	if _, err := f.hub.Submit(ctx, Job{ID: "j1", Type: "stm32", Firmware: digest}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "15 MB of the download to cross the link", func() bool { return r1.proxy.Down.Load()-down > 15_000_000 })
	cutAt := r1.proxy.Down.Load() - down
	r1.proxy.SetMode(linkproxy.Blackhole)
	cut := time.Now()
	const cutFor = 10 * time.Second
	noticed := time.Duration(0)
	for time.Since(cut) < cutFor {
		if noticed == 0 && !r1.agent.LinkUp() {
			noticed = time.Since(cut)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(b.started) != 0 || r1.proxy.Down.Load()-down >= size {
		t.Fatal("the download finished over a black-holed link")
	}
	r1.proxy.SetMode(linkproxy.Pass)
	back := time.Now()
	t.Logf("link black-holed for %v after %.1f MB of the download (%v into it); the rack noticed the cut after %v (0 = not during the cut)",
		back.Sub(cut).Round(10*time.Millisecond), float64(cutAt)/1e6, cut.Sub(start).Round(10*time.Millisecond), noticed.Round(10*time.Millisecond))
	recv(t, b.started, 90*time.Second, "j1 to start with its firmware")
	t.Logf("job started %v after the link returned (%d bytes crossed hub→rack in all)", time.Since(back).Round(10*time.Millisecond), r1.proxy.Down.Load()-down)
	b.verdicts <- "pass"
	rec, err := f.hub.WaitJob(ctx, "j1", decided)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Verdict != "pass" || !strings.Contains(rec.Detail, digest) {
		t.Fatalf("job record %+v", rec)
	}
	b.mu.Lock()
	runs := b.runs
	b.mu.Unlock()
	if runs != 1 {
		t.Fatalf("the board ran the job %d times, want once", runs)
	}
	path, err := r1.agent.Firmware(ctx, digest) // from the cache: no download
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fileSHA256(path); err != nil || got != digest {
		t.Fatalf("cached image sha256 %s (%v), want %s", got, err, digest)
	}
	// One download that resumed after the cut, not one restarted by a
	// retried attempt: nothing was fetched twice.
	if n := r1.agent.FirmwareFetches(); n != 1 {
		t.Fatalf("firmware downloads %d, want 1 (resumed after the cut)", n)
	}
	if len(rec.Attempts) != 1 || rec.DecidedBy != "j1#1" {
		t.Fatalf("attempts %+v, want one that decided", rec.Attempts)
	}
	t.Logf("hub→rack bytes %d for a %d-byte image", r1.proxy.Down.Load()-down, size)
	waitFor(t, 10*time.Second, "JOBS empty", func() bool { return jobsLeft(t, f.hub) == 0 })
	checkLedger(t, f.hub)
}
