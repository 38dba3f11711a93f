package farm

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hilfarm/hilfarm/farm/store"
)

// How a console websocket's writer batches the shared log into frames.
const (
	consoleFrameMax = 256 << 10 // data bytes in one binary message at most
	consoleBatchMax = 1 << 20   // data bytes in one write (several messages) at most
	consoleBatchRec = 512       // records in one write at most (each is one iovec)
)

// errViewerStopped: the viewer accepted no byte for its stall time while
// records waited for it.
var errViewerStopped = errors.New("console viewer stopped reading")

// progressConn is a console websocket's connection. Every write goes
// through it — the console writer's frames and gorilla's own (hello,
// notes, pings, pongs, close frames) — one at a time, so frames never
// interleave. A write does not fail because it is slow: it fails only when
// the peer has accepted no byte for stall (errViewerStopped), when the
// deadline gorilla set for its own write has passed, or when the
// connection breaks. Progress is measured in bytes the kernel accepted:
// a viewer that reads, however slowly, frees room and keeps it going.
type progressConn struct {
	net.Conn          // what the server accepted (closing it releases the connection caps)
	raw      net.Conn // the socket itself (writev, linger)
	stall    time.Duration
	lock     chan struct{} // one writer at a time; a channel, so gorilla's deadline bounds the wait
	hard     atomic.Int64  // gorilla's write deadline (unix ns; 0: none)
}

func newProgressConn(c net.Conn, stall time.Duration) *progressConn {
	raw := c
	if lc, ok := c.(*limitedConn); ok {
		raw = lc.Conn
	}
	pc := &progressConn{Conn: c, raw: raw, stall: stall, lock: make(chan struct{}, 1)}
	return pc
}

// SetWriteDeadline is gorilla's deadline for its next write.
func (c *progressConn) SetWriteDeadline(t time.Time) error {
	if t.IsZero() {
		c.hard.Store(0)
	} else {
		c.hard.Store(t.UnixNano())
	}
	return nil
}

func (c *progressConn) SetDeadline(t time.Time) error {
	_ = c.SetWriteDeadline(t)
	return c.Conn.SetReadDeadline(t)
}

// Write is gorilla's: it waits for the frame being written (until its
// deadline) and then writes under the progress rule.
func (c *progressConn) Write(p []byte) (int, error) {
	var hard time.Time
	if ns := c.hard.Load(); ns != 0 {
		hard = time.Unix(0, ns)
	}
	if hard.IsZero() {
		c.lock <- struct{}{}
	} else {
		t := time.NewTimer(time.Until(hard))
		select {
		case c.lock <- struct{}{}:
			t.Stop()
		case <-t.C:
			return 0, os.ErrDeadlineExceeded
		}
	}
	defer func() { <-c.lock }()
	bufs := net.Buffers{p}
	n, err := c.writeLocked(&bufs, hard)
	return int(n), err
}

// writeFrames writes bufs (whole frames) under the progress rule.
func (c *progressConn) writeFrames(bufs *net.Buffers) error {
	c.lock <- struct{}{}
	defer func() { <-c.lock }()
	_, err := c.writeLocked(bufs, time.Time{})
	return err
}

// writeLocked writes all of bufs. Its deadline is re-armed every quarter of
// the stall time: each return tells how many bytes went through, and the
// write goes on while the last byte accepted is less than stall ago.
func (c *progressConn) writeLocked(bufs *net.Buffers, hard time.Time) (int64, error) {
	var total int64
	last := time.Now()
	tick := max(c.stall/4, time.Millisecond)
	for len(*bufs) > 0 {
		dl := time.Now().Add(tick)
		if end := last.Add(c.stall); end.Before(dl) {
			dl = end
		}
		if !hard.IsZero() && hard.Before(dl) {
			dl = hard
		}
		_ = c.raw.SetWriteDeadline(dl)
		n, err := bufs.WriteTo(c.raw) // writev on a TCP socket
		total += n
		if err == nil {
			break
		}
		now := time.Now()
		if n > 0 {
			last = now
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return total, err
		}
		if !hard.IsZero() && !now.Before(hard) {
			return total, err
		}
		if now.Sub(last) >= c.stall {
			return total, errViewerStopped
		}
	}
	return total, nil
}

// reset closes the connection at once, dropping what the kernel still
// holds for the peer (a stopped viewer would never take it).
func (c *progressConn) reset() {
	if tc, ok := c.raw.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// hijackWrap makes the websocket upgrade hand gorilla a progressConn.
type hijackWrap struct {
	http.ResponseWriter
	stall time.Duration
	pc    *progressConn
}

func (h *hijackWrap) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("the connection cannot be hijacked")
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.pc = newProgressConn(c, h.stall)
	return h.pc, brw, nil
}

// batch builds the websocket frames of one write over the log's records
// without copying their bytes: consecutive data records become one binary
// frame (at most consoleFrameMax bytes), a marker a JSON text frame; each
// frame is its header and the records' Data as iovecs, all written with
// one writev.
type batch struct {
	bufs   net.Buffers
	hdrs   []byte  // every frame's header, back to back
	frames []frame // in order
}

type frame struct {
	op  byte
	buf int // index in bufs of the header
	n   int // payload bytes
}

func (b *batch) reset() {
	clear(b.bufs)
	b.bufs, b.hdrs, b.frames = b.bufs[:0], b.hdrs[:0], b.frames[:0]
}

func (b *batch) add(rec store.LogRecord) error {
	if rec.Kind == kindData {
		if len(rec.Data) == 0 {
			return nil
		}
		last := len(b.frames) - 1
		if last < 0 || b.frames[last].op != websocket.BinaryMessage || b.frames[last].n+len(rec.Data) > consoleFrameMax {
			b.frames = append(b.frames, frame{op: websocket.BinaryMessage, buf: len(b.bufs)})
			b.bufs = append(b.bufs, nil) // the header, set by build
			last++
		}
		b.bufs = append(b.bufs, rec.Data)
		b.frames[last].n += len(rec.Data)
		return nil
	}
	m, err := json.Marshal(ConsoleMarker{Type: "marker", Kind: rec.Kind, Offset: rec.Offset, At: rec.At, Detail: string(rec.Data)})
	if err != nil {
		return err
	}
	b.frames = append(b.frames, frame{op: websocket.TextMessage, buf: len(b.bufs), n: len(m)})
	b.bufs = append(b.bufs, nil, m)
	return nil
}

// build writes the frame headers (unmasked: the server's side) and returns
// the batch's buffers, or nil when there is nothing to send.
func (b *batch) build() *net.Buffers {
	if len(b.frames) == 0 {
		return nil
	}
	at := make([]int, 0, len(b.frames)+1)
	for _, f := range b.frames {
		at = append(at, len(b.hdrs))
		b.hdrs = append(b.hdrs, 0x80|f.op) // FIN
		switch {
		case f.n < 126:
			b.hdrs = append(b.hdrs, byte(f.n))
		case f.n <= 0xffff:
			b.hdrs = append(b.hdrs, 126)
			b.hdrs = binary.BigEndian.AppendUint16(b.hdrs, uint16(f.n))
		default:
			b.hdrs = append(b.hdrs, 127)
			b.hdrs = binary.BigEndian.AppendUint64(b.hdrs, uint64(f.n))
		}
	}
	at = append(at, len(b.hdrs))
	for i, f := range b.frames {
		b.bufs[f.buf] = b.hdrs[at[i]:at[i+1]:at[i+1]]
	}
	return &b.bufs
}

// streamConsole is the only writer of a board console websocket: the
// replay, then the live log from the viewer's cursor, many records per
// write, until the viewer ends (1001 when the console closed), the reader
// ends, a write fails, or the viewer stopped reading: then it is cut (the
// connection is reset; a close frame could not reach it). Messages from
// notes (the terminal's refusals) go with sendNote in between.
func (a *API) streamConsole(board string, conn *websocket.Conn, pc *progressConn, replay []store.LogRecord, v *Viewer, readerDone <-chan struct{}, notes <-chan string, sendNote func(string) error) {
	var b batch
	send := func(recs []store.LogRecord) error {
		b.reset()
		for _, rec := range recs {
			if err := b.add(rec); err != nil {
				return err
			}
		}
		bufs := b.build()
		if bufs == nil {
			return nil
		}
		return pc.writeFrames(bufs)
	}
	failed := func(err error) {
		if errors.Is(err, errViewerStopped) {
			v.cut()
			a.log.Info("console viewer cut: it accepted no byte while console records waited", "board", board,
				"remote", conn.RemoteAddr().String(), "stall", v.stall().String())
			pc.reset()
		}
	}
	for len(replay) > 0 {
		n := 0
		for size := 0; n < len(replay) && n < consoleBatchRec && (n == 0 || size+len(replay[n].Data) <= consoleBatchMax); n++ {
			size += len(replay[n].Data)
		}
		if err := send(replay[:n]); err != nil {
			failed(err)
			return
		}
		replay = replay[n:]
	}
	ping := time.NewTicker(wsPingPeriod)
	defer ping.Stop()
	sendPing := func() error {
		_ = conn.SetWriteDeadline(time.Now().Add(wsWriteWait))
		return conn.WriteMessage(websocket.PingMessage, nil)
	}
	var buf []store.LogRecord
	for {
		recs, wait, open := v.Take(buf[:0], consoleBatchMax, consoleBatchRec)
		if len(recs) > 0 {
			err := send(recs)
			clear(recs)
			buf = recs
			if err != nil {
				failed(err)
				return
			}
			// Between batches of a long flood: pings, notes, the reader.
			select {
			case msg := <-notes:
				if err := sendNote(msg); err != nil {
					return
				}
			case <-ping.C:
				if err := sendPing(); err != nil {
					return
				}
			case <-readerDone:
				return
			default:
			}
			continue
		}
		if !open {
			closeWith(conn, websocket.CloseGoingAway, "console closed")
			return
		}
		select {
		case <-wait:
		case msg := <-notes:
			if err := sendNote(msg); err != nil {
				return
			}
		case <-ping.C:
			if err := sendPing(); err != nil {
				return
			}
		case <-readerDone:
			return
		}
	}
}

// upgradeConsole upgrades a console websocket through a progressConn.
func (a *API) upgradeConsole(w http.ResponseWriter, r *http.Request, stall time.Duration) (*websocket.Conn, *progressConn) {
	hw := &hijackWrap{ResponseWriter: w, stall: stall}
	conn := a.upgrade(hw, r)
	if conn == nil {
		return nil, nil
	}
	if hw.pc == nil {
		// Not through the wrapper (net/http always hijacks through it):
		// refuse rather than write frames around gorilla.
		a.log.Error("console websocket upgraded without its progress connection", "path", r.URL.Path)
		a.release(conn)
		return nil, nil
	}
	return conn, hw.pc
}
