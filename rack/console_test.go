package rack

import (
	"crypto/rand"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// Console bytes cross the rack's link only while someone at the hub
// watches; a reset link comes back by itself.
func TestConsoleOnlyWhileWatched(t *testing.T) {
	t.Parallel()
	f := newTestFarm(t, 60*time.Second, map[string][]string{"r1": {"stm32"}})
	r1 := f.addRack("r1", f.pw["r1"])
	waitFor(t, 15*time.Second, "leaf link", r1.agent.LinkUp)
	// Fresh random bytes for every chunk: the leaf link may compress (s2,
	// chosen by RTT), and text or a repeated chunk would shrink.
	const chunkSize, chunks = 4096, 128 // 512 KiB
	chunk := make([]byte, chunkSize)
	fresh := func() []byte {
		if _, err := rand.Read(chunk); err != nil {
			t.Fatal(err)
		}
		return chunk
	}

	before := r1.proxy.Up.Load()
	for range chunks {
		if err := r1.agent.Console("b1", fresh()); err != nil {
			t.Fatal(err)
		}
	}
	if err := r1.agent.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	// The rack's own server drops unwatched messages; a marker the hub does
	// watch shows the link is past them.
	got := make(chan struct{}, 1)
	sub, err := f.hub.Conn().Subscribe("farm.hb.r1", func(*nats.Msg) {
		select {
		case got <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	waitFor(t, 10*time.Second, "a watched marker", func() bool {
		_ = r1.agent.Conn().Publish("farm.hb.r1", nil)
		select {
		case <-got:
			return true
		case <-time.After(100 * time.Millisecond):
			return false
		}
	})
	unwatched := r1.proxy.Up.Load() - before
	if unwatched > 64<<10 {
		t.Fatalf("%d bytes crossed the link with nobody watching (console was %d bytes)", unwatched, chunks*len(chunk))
	}

	var n atomic.Int64
	w, err := f.hub.WatchConsole("r1", "b1", func(b []byte) { n.Add(int64(len(b))) })
	if err != nil {
		t.Fatal(err)
	}
	defer w.Unsubscribe()
	waitFor(t, 10*time.Second, "the watch to reach the rack", func() bool {
		_ = r1.agent.Console("b1", []byte("probe\n"))
		_ = r1.agent.Conn().Flush()
		time.Sleep(50 * time.Millisecond)
		return n.Load() > 0
	})
	base := n.Load()
	before = r1.proxy.Up.Load()
	for range chunks {
		if err := r1.agent.Console("b1", fresh()); err != nil {
			t.Fatal(err)
		}
	}
	want := base + int64(chunks*len(chunk))
	waitFor(t, 20*time.Second, "every watched byte at the hub", func() bool { return n.Load() >= want })
	if crossed := r1.proxy.Up.Load() - before; crossed < int64(chunks*len(chunk)) {
		t.Fatalf("only %d bytes crossed for %d watched", crossed, chunks*len(chunk))
	}
	t.Logf("unwatched: %d bytes crossed for %d of console; watched: all %d arrived", unwatched, chunks*len(chunk), chunks*len(chunk))

	// A reset link (RST) comes back within the reconnect interval.
	r1.proxy.Reset()
	waitFor(t, 10*time.Second, "the link to drop after a reset", func() bool { return !r1.agent.LinkUp() })
	waitFor(t, 15*time.Second, "the link to come back after a reset", r1.agent.LinkUp)
}
