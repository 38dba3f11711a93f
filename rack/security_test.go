package rack

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A rack may publish only as itself, pull only its own board types and
// cannot administer streams; a wrong password is refused; revoking a rack
// cuts it off without restarting the hub.
func TestSecurity(t *testing.T) {
	t.Parallel()
	f := newTestFarm(t, 30*time.Second, map[string][]string{"r1": {"stm32"}, "r2": {"esp32"}})
	r1 := f.addRack("r1", f.pw["r1"])
	r2 := f.addRack("r2", f.pw["r2"])
	waitFor(t, 15*time.Second, "both leaf links", func() bool { return r1.agent.LinkUp() && r2.agent.LinkUp() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// What reaches the hub on farm.evt.> and console.>.
	got := make(chan string, 100)
	for _, s := range []string{"console.>", "farm.hb.>"} {
		sub, err := f.hub.Conn().Subscribe(s, func(m *nats.Msg) {
			// The agents' own heartbeats (a JSON board list, status.go)
			// are legitimate; the probes and spoofs here are empty.
			if strings.HasPrefix(m.Subject, "farm.hb.") && len(m.Data) > 0 {
				return
			}
			got <- m.Subject
		})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
	}
	_ = f.hub.Conn().Flush()
	nc1 := r1.agent.Conn()
	// Interest crosses the leaf asynchronously, for each subscription on
	// its own: publish r1's own heartbeat and console until both arrive,
	// then the spoof followed by a marker.
	seen := map[string]bool{}
	waitFor(t, 20*time.Second, "interest to cross the link", func() bool {
		_ = nc1.Publish("farm.hb.r1", nil)
		_ = nc1.Publish("console.r1.probe", nil)
		for {
			select {
			case s := <-got:
				seen[s] = true
				continue
			case <-time.After(100 * time.Millisecond):
			}
			return seen["farm.hb.r1"] && seen["console.r1.probe"]
		}
	})
	for len(got) > 0 {
		<-got
	}
	_ = nc1.Publish("console.r2.b1", []byte("spoofed"))
	_ = nc1.Publish("farm.hb.r2", nil)
	_ = nc1.Publish("console.r1.b1", []byte("mine"))
	for {
		s := recv(t, got, 10*time.Second, "r1's own console")
		if s == "console.r1.b1" {
			break
		}
		if s != "farm.hb.r1" && s != "console.r1.probe" { // late copies of the probes above are fine
			t.Fatalf("hub received %q from r1: a spoofed subject crossed the link", s)
		}
	}

	// r1 reads only its own board types' work and has no admin rights.
	js1 := r1.agent.JetStream()
	if _, err := js1.Consumer(ctx, JobsStream, consumerName("stm32")); err != nil {
		t.Fatalf("r1 cannot bind its own consumer: %v", err)
	}
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 2*time.Second) }
	c, cc := short()
	if _, err := js1.Consumer(c, JobsStream, consumerName("esp32")); err == nil {
		t.Error("r1 bound the esp32 consumer it has no board for")
	}
	cc()
	c, cc = short()
	if err := js1.DeleteStream(c, JobsStream); err == nil {
		t.Error("r1 deleted the JOBS stream")
	}
	cc()
	c, cc = short()
	if _, err := js1.CreateStream(c, jetstream.StreamConfig{Name: "EVIL", Subjects: []string{"evil.>"}}); err == nil {
		t.Error("r1 created a stream")
	}
	cc()
	if _, err := f.hub.js.Stream(ctx, JobsStream); err != nil {
		t.Fatalf("JOBS gone: %v", err)
	}
	// r1 cannot publish a result as r2 (the subject carries the identity).
	c, cc = short()
	if _, err := js1.Publish(c, "farm.evt.r2.result", []byte(`{}`)); err == nil {
		t.Error("r1 published an event as r2")
	}
	cc()

	// Wrong password: refused.
	bad := f.addRack("r1", "not-the-password")
	waitFor(t, 15*time.Second, "the hub to refuse the wrong password", func() bool {
		return f.hubLog.count(`authentication error - User "r1"`) > 0
	})
	if bad.agent.LinkUp() {
		t.Fatal("a rack with a wrong password got a link")
	}

	// Revocation: r2's link is cut at once and it cannot come back.
	before := f.hubLog.count(`authentication error - User "r2"`)
	if err := f.hub.Revoke(ctx, "r2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "r2's link to drop", func() bool { return !r2.agent.LinkUp() })
	waitFor(t, 15*time.Second, "r2's reconnect to be refused", func() bool {
		return f.hubLog.count(`authentication error - User "r2"`) >= before+2
	})
	if r2.agent.LinkUp() {
		t.Fatal("revoked rack r2 is linked again")
	}
	// Every leaf link is closed on a revocation (see Hub.SetRecords); r1
	// comes back by itself.
	waitFor(t, 10*time.Second, "r1 to relink after r2's revocation", r1.agent.LinkUp)
	if _, err := f.hub.Submit(ctx, Job{ID: "j-esp", Type: "esp32"}); err == nil {
		t.Error("a job for a type only the revoked rack had was accepted")
	}
}

// A revocation written to the racks directory (what `hilfarm rack revoke`
// does) reaches a running hub through WatchRacks, told by inotify.
func TestRevokeByRacksDir(t *testing.T) {
	t.Parallel()
	f := newTestFarm(t, 30*time.Second, map[string][]string{"r1": {"stm32"}})
	// Move the farm's records to a directory and restart the hub on it.
	dir := t.TempDir()
	for _, r := range f.hubCfg.Racks {
		if err := SaveRecord(dir, r); err != nil {
			t.Fatal(err)
		}
	}
	f.hubCfg.Racks, f.hubCfg.RacksDir = nil, dir
	f.restartHub()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// An hour: the change must come through inotify, not a look.
	go func() { done <- f.hub.WatchRacks(ctx, time.Hour) }()
	defer func() { cancel(); <-done }()
	r1 := f.addRack("r1", f.pw["r1"])
	waitFor(t, 15*time.Second, "leaf link", r1.agent.LinkUp)
	recs, err := LoadRecords(dir)
	if err != nil || len(recs) != 1 {
		t.Fatalf("%v %v", recs, err)
	}
	recs[0].Revoked = true
	if err := SaveRecord(dir, recs[0]); err != nil {
		t.Fatal(err)
	}
	before := f.hubLog.count(`authentication error - User "r1"`)
	waitFor(t, 10*time.Second, "r1's link to drop", func() bool { return !r1.agent.LinkUp() })
	waitFor(t, 15*time.Second, "r1's reconnect to be refused", func() bool {
		return f.hubLog.count(`authentication error - User "r1"`) >= before+1
	})
	if r1.agent.LinkUp() {
		t.Fatal("revoked rack relinked")
	}
}
