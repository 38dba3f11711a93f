package farm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hilfarm/hilfarm/fixtures/sim"
)

// bootedAndHeld flashes sim-a, holds it and power-cycles it, and returns
// once it booted (seen through a viewer that is closed again).
func bootedAndHeld(t *testing.T, e *uiEnv) {
	t.Helper()
	e.flashAndHold(t, "sim-a", "r1")
	op := e.tokens[RoleOperator]
	w, _, err := e.dial(t, "/api/v1/boards/sim-a/terminal", dialOpts{token: op})
	if err != nil {
		t.Fatal(err)
	}
	watch := &termReader{conn: w}
	watch.readUntil(t, "sim> ")
	from := len(watch.data)
	if st := e.call(t, "POST", "/api/v1/boards/sim-a/power", op, map[string]string{"action": "cycle"}, nil); st != 200 {
		t.Fatalf("power cycle: %d", st)
	}
	watch.readUntilFrom(t, from, "Booting hilfarm-sim v1.1.0\r\nsim> ")
	w.Close()
}

// floodOf returns the bytes between "MARK\r\nsim> " and the flood's end
// line in a viewer's console, or why they are not there.
func floodOf(data []byte, mark string, n int) ([]byte, error) {
	start := []byte(mark + "\r\nsim> ")
	i := bytes.Index(data, start)
	if i < 0 {
		return nil, fmt.Errorf("no %q in %d bytes", mark, len(data))
	}
	body := data[i+len(start):]
	end := bytes.Index(body, fmt.Appendf(nil, "\r\nflood done %d", n))
	if end < 0 {
		return body, fmt.Errorf("no end of the flood after %d bytes", len(body))
	}
	return body[:end], nil
}

// slowConn reads at most 2 KiB at a time and pauses before each read: a
// viewer on a slow link that keeps reading.
type slowConn struct{ net.Conn }

func (c slowConn) Read(p []byte) (int, error) {
	time.Sleep(100 * time.Microsecond)
	return c.Conn.Read(p[:min(len(p), 2<<10)])
}

// TestTerminalViewersUnderBurst: 16 viewers that read at full speed and one
// that reads slowly all get every byte of a 4 MiB flood, identical, in
// order, without a gap; none is cut (the slow one is far behind the live
// console for most of the flood: it makes progress, so it stays).
func TestTerminalViewersUnderBurst(t *testing.T) {
	leakCheck(t)
	e := startUI(t, testFarm, func(c *Config) { c.Recorder.ViewerStall = 10 * time.Second })
	bootedAndHeld(t, e)
	const path = "/api/v1/boards/sim-a/terminal"
	var readers []*termReader
	for range 16 {
		c, _, err := e.dial(t, path, dialOpts{token: e.tokens[RoleViewer]})
		if err != nil {
			t.Fatal(err)
		}
		readers = append(readers, &termReader{conn: c})
	}
	slowDialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second, NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return slowConn{c}, nil
	}}
	sc, _, err := slowDialer.Dial(e.wsURL(path), bearer(e.tokens[RoleViewer]))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	slow := &termReader{conn: sc}
	readers = append(readers, slow)

	const n = 4 << 20
	done := fmt.Sprintf("flood done %d", n)
	errs := make([]error, len(readers))
	var wg sync.WaitGroup
	for i, r := range readers {
		wg.Go(func() {
			_ = r.conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
			for !bytes.Contains(r.data[max(0, len(r.data)-4096):], []byte(done)) {
				if err := r.next(); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	if err := e.tc.TypeInto(context.Background(), "sim-a", e.actors[RoleOperator], fmt.Appendf(nil, "echo burst-1\rflood %d\r", n)); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	want := sim.FloodBytes(n)
	for i, r := range readers {
		name := fmt.Sprintf("viewer %d", i)
		if r == slow {
			name = "the slow viewer"
		}
		if errs[i] != nil {
			t.Errorf("%s: %v after %d bytes", name, errs[i], len(r.data))
			continue
		}
		got, err := floodOf(r.data, "burst-1", n)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: the flood is not every byte in order (%d bytes; %v)", name, len(got), err)
		}
		for _, m := range r.markers {
			if m.Kind == MarkGap {
				t.Errorf("%s: gap marker %+v", name, m)
			}
		}
	}
	if st := e.tc.slots["sim-a"].rec.Stats(); st.ViewersDropped != 0 || st.ViewerGaps != 0 {
		t.Errorf("recorder stats %+v: a viewer that reads was cut or skipped", st)
	}
}

// TestTerminalStoppedViewerCut: a viewer that stops reading during a flood
// is cut by the progress rule (no byte accepted for the stall time while
// records wait), counted in the metrics; what it got before is the console
// in order, and the board goes on for everyone else.
func TestTerminalStoppedViewerCut(t *testing.T) {
	leakCheck(t)
	e := startUI(t, testFarm, func(c *Config) { c.Recorder.ViewerStall = 200 * time.Millisecond })
	bootedAndHeld(t, e)
	const path = "/api/v1/boards/sim-a/terminal"
	rec := e.tc.slots["sim-a"].rec
	cuts0, _ := rec.viewerCuts()
	sc, _, err := e.dial(t, path, dialOpts{token: e.tokens[RoleViewer], rcvBuf: 4096})
	if err != nil {
		t.Fatal(err)
	}
	stalled := &termReader{conn: sc}
	if err := stalled.next(); err != nil { // hello; then it stops reading
		t.Fatal(err)
	}
	const n = 8 << 20
	if err := e.tc.TypeInto(context.Background(), "sim-a", e.actors[RoleOperator], fmt.Appendf(nil, "echo stall-1\rflood %d\r", n)); err != nil {
		t.Fatal(err)
	}
	guard := time.After(2 * time.Minute) // not a timing assertion: a hang guard
	for {
		cuts, next := rec.viewerCuts()
		if cuts > cuts0 {
			break
		}
		select {
		case <-next:
		case <-guard:
			t.Fatal("the stopped viewer was not cut")
		}
	}
	// Only now does it read again: some of the console, then the end of
	// the connection (reset: no close frame can reach a viewer that does
	// not read).
	_ = sc.SetReadDeadline(time.Now().Add(time.Minute))
	var rerr error
	for rerr == nil {
		rerr = stalled.next()
	}
	var ce *websocket.CloseError
	if errors.As(rerr, &ce) && ce.Code != websocket.CloseAbnormalClosure {
		t.Errorf("the cut viewer got close %d %q, want the connection reset", ce.Code, ce.Text)
	}
	got, err := floodOf(stalled.data, "stall-1", n)
	if err == nil {
		t.Errorf("the stopped viewer got the whole flood: it was not cut")
	}
	if !bytes.Equal(got, sim.FloodBytes(len(got))) {
		t.Errorf("the stopped viewer's %d flood bytes are not the console in order", len(got))
	}
	if st := e.tc.boardStats("sim-a"); st.ViewersDrop != 1 { // hilfarm_console_viewers_dropped_total
		t.Errorf("board stats %+v: want 1 viewer dropped", st)
	}
	// The board went on: a new viewer's replay ends with the flood's end.
	c, _, err := e.dial(t, path, dialOpts{token: e.tokens[RoleViewer]})
	if err != nil {
		t.Fatal(err)
	}
	(&termReader{conn: c}).readUntil(t, fmt.Sprintf("flood done %d\r\nsim> ", n))
}

// pipePeer reads from the other end of a net.Pipe: n bytes in reads of at
// most step, then stops reading (n < 0: everything until EOF).
func pipePeer(c net.Conn, n, step int) (got chan int) {
	got = make(chan int, 1)
	go func() {
		total := 0
		buf := make([]byte, step)
		for n < 0 || total < n {
			k, err := c.Read(buf[:min(step, max(1, n-total))])
			total += k
			if err != nil {
				break
			}
		}
		got <- total
	}()
	return got
}

// TestProgressConnRule: the progress rule on a synchronous pipe (a write
// goes through only as the peer reads).
func TestProgressConnRule(t *testing.T) {
	leakCheck(t)
	payload := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB

	t.Run("a slow reader is never cut", func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		pc := newProgressConn(a, 5*time.Second)
		got := pipePeer(b, -1, 512)
		bufs := net.Buffers{payload[:1000], payload[1000:]}
		if err := pc.writeFrames(&bufs); err != nil {
			t.Errorf("write to a slow reader: %v", err)
		}
		b.Close()
		if n := <-got; n != len(payload) {
			t.Errorf("the reader got %d bytes, want %d", n, len(payload))
		}
	})
	t.Run("a stopped reader is cut", func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		pc := newProgressConn(a, 50*time.Millisecond)
		got := pipePeer(b, 3000, 1000)
		bufs := net.Buffers{payload}
		if err := pc.writeFrames(&bufs); !errors.Is(err, errViewerStopped) {
			t.Errorf("write to a reader that stopped: %v, want errViewerStopped", err)
		}
		if n := <-got; n != 3000 {
			t.Errorf("the reader got %d bytes before it stopped, want 3000", n)
		}
	})
	t.Run("gorilla's own deadline holds, waiting for the lock too", func(t *testing.T) {
		a, b := net.Pipe()
		defer b.Close()
		pc := newProgressConn(a, time.Hour)
		blocked := make(chan error, 1)
		go func() { // a frame write that the peer never takes
			bufs := net.Buffers{payload}
			blocked <- pc.writeFrames(&bufs)
		}()
		_ = pc.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
		if _, err := pc.Write([]byte("pong")); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("gorilla's write past its deadline: %v", err)
		}
		a.Close()
		if err := <-blocked; err == nil || errors.Is(err, errViewerStopped) {
			t.Errorf("the blocked write after Close: %v", err)
		}
	})
}
