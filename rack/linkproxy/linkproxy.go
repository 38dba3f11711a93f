// Package linkproxy is a TCP proxy that stands for a WAN link in tests: it
// can pass traffic, black-hole it silently (no FIN, no RST: bytes wait as on
// a cut cable, and a close is not passed on until the link returns), reset
// every connection, or limit the rate. Its owner calls Close, which stops
// every goroutine it started.
package linkproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Mode is the state of the link.
type Mode int

// Link states.
const (
	Pass          Mode = iota
	Blackhole          // both directions stall silently
	BlackholeDown      // only target→client stalls (replies and acks are lost in transit)
)

// Proxy forwards connections from its listener to a target address.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cond  *sync.Cond
	mode  Mode
	rate  int // bytes per second per direction; 0 = unlimited
	conns map[net.Conn]struct{}
	done  bool

	Up, Down atomic.Int64 // bytes forwarded client→target and target→client
	wg       sync.WaitGroup
}

// New listens on 127.0.0.1:0 and forwards to target.
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients dial.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetMode changes the link state.
func (p *Proxy) SetMode(m Mode) {
	p.mu.Lock()
	p.mode = m
	p.cond.Broadcast()
	p.mu.Unlock()
}

// SetRate limits each direction to bytesPerSec (0 = unlimited).
func (p *Proxy) SetRate(bytesPerSec int) {
	p.mu.Lock()
	p.rate = bytesPerSec
	p.mu.Unlock()
}

// Reset closes every open connection with a TCP RST.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		c.Close()
	}
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.done = true
	p.cond.Broadcast()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

// gate blocks while the direction is black-holed; false when closing.
func (p *Proxy) gate(down bool) (rate int, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for !p.done && (p.mode == Blackhole || (down && p.mode == BlackholeDown)) {
		p.cond.Wait()
	}
	return p.rate, !p.done
}

func (p *Proxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		if p.done {
			return false
		}
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
	return true
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *Proxy) serve(c net.Conn) {
	defer p.wg.Done()
	if !p.track(c, true) {
		c.Close()
		return
	}
	defer p.track(c, false)
	defer c.Close()
	// A new connection over a dead link gets nowhere until the link returns.
	if _, ok := p.gate(false); !ok {
		return
	}
	t, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	if !p.track(t, true) {
		t.Close()
		return
	}
	defer p.track(t, false)
	defer t.Close()
	var inner sync.WaitGroup
	inner.Add(2)
	go func() { defer inner.Done(); p.copy(t, c, false, &p.Up) }()
	go func() { defer inner.Done(); p.copy(c, t, true, &p.Down) }()
	inner.Wait()
}

// copy forwards src→dst. While black-holed it stops reading, so data and a
// close wait in the kernel as on a cut link, and both flow when it returns.
func (p *Proxy) copy(dst, src net.Conn, down bool, count *atomic.Int64) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		rate, ok := p.gate(down)
		if !ok {
			return
		}
		n := len(buf)
		if rate > 0 && rate/10 < n {
			n = max(rate/10, 1)
		}
		_ = src.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		k, err := src.Read(buf[:n])
		if k > 0 {
			// Re-check the gate: a cut that came while reading holds these bytes.
			if _, ok := p.gate(down); !ok {
				return
			}
			count.Add(int64(k)) // before the write: a reader that saw the bytes arrive sees them counted
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return
			}
			if rate > 0 {
				time.Sleep(time.Duration(k) * time.Second / time.Duration(rate))
			}
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue // re-check the gate
			}
			if errors.Is(err, io.EOF) {
				return
			}
			return
		}
	}
}
