package farm

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"
)

// HTTP limits against clients that hold connections open (docs/api.md,
// "Limits"). Every one of them applies before authentication, so a client
// without a token cannot exhaust the server's file descriptors or memory.
const (
	// MaxConnsPerAddr bounds the open connections (websockets included)
	// of one client IP address. Connections beyond it are answered 503 and
	// closed at once.
	MaxConnsPerAddr = 64
	// MaxConns bounds all open connections; with a lower file limit
	// (RLIMIT_NOFILE), half of that limit.
	MaxConns = 1024
	// BodyReadTimeout is how long a request other than a submission may
	// take to send its body, counted from the end of its headers.
	BodyReadTimeout = 10 * time.Second
	// UploadGrace and UploadMinRate bound a submission's body: it must
	// arrive within UploadGrace plus one second per UploadMinRate bytes
	// received so far, i.e. a client that sends slower than UploadMinRate
	// on average is cut off.
	UploadGrace   = 10 * time.Second
	UploadMinRate = 32 << 10 // bytes per second
	// HeaderReadTimeout bounds the request line and headers.
	HeaderReadTimeout = 10 * time.Second
)

// connBudget is MaxConns, or half the process's file limit when that is
// lower, so that boards, the store and the log keep descriptors to spare.
func connBudget() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur/2 < MaxConns {
		return max(int(lim.Cur/2), MaxConnsPerAddr)
	}
	return MaxConns
}

// limitListener caps connections per client address and in all.
type limitListener struct {
	net.Listener
	perAddr, total int

	mu     sync.Mutex
	byAddr map[string]int
	open   int
	refuse func(net.Conn) // answers a refused connection (then it is closed)
}

// LimitListener wraps ln so that at most perAddr connections from one IP
// address and total connections in all are open at a time. A connection
// over a limit is answered with a bare HTTP 503 and closed; Accept goes on
// with the next one.
func LimitListener(ln net.Listener, perAddr, total int) net.Listener {
	return &limitListener{Listener: ln, perAddr: perAddr, total: total, byAddr: map[string]int{}, refuse: refuse503}
}

var refusal = func() []byte {
	body := `{"error":"too many connections from this address"}` + "\n"
	return []byte(fmt.Sprintf("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
}()

func refuse503(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write(refusal)
}

func addrKey(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := addrKey(c.RemoteAddr())
		l.mu.Lock()
		if l.byAddr[key] >= l.perAddr || l.open >= l.total {
			l.mu.Unlock()
			refuse := l.refuse
			go func() { // never block Accept on a refused client
				refuse(c)
				c.Close()
			}()
			continue
		}
		l.byAddr[key]++
		l.open++
		l.mu.Unlock()
		return &limitedConn{Conn: c, l: l, key: key}, nil
	}
}

func (l *limitListener) done(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byAddr[key]--; l.byAddr[key] <= 0 {
		delete(l.byAddr, key)
	}
}

// Open returns how many connections are open (for tests and metrics).
func (l *limitListener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

type limitedConn struct {
	net.Conn
	l    *limitListener
	key  string
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.done(c.key) })
	return err
}

// bodyDeadline gives every request BodyReadTimeout to send its body. A
// submission extends it as its body arrives (see uploadBody). When the
// body has been read to its end, net/http clears the deadline itself as it
// starts its background read, so a handler that works longer keeps its
// context (TestBodyDeadline).
func bodyDeadline(h http.Handler) http.Handler { return bodyDeadlineAfter(h, BodyReadTimeout) }

func bodyDeadlineAfter(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
		}
		h.ServeHTTP(w, r)
	})
}

// ErrSlowBody: the client sent its body too slowly (408).
var ErrSlowBody = errors.New("request body arrived too slowly")

// rateReader moves the read deadline of a request body as it arrives: the
// body must keep an average of at least minRate bytes per second after a
// grace period.
type rateReader struct {
	r       io.ReadCloser
	set     func(time.Time) error // sets the connection's read deadline
	start   time.Time
	n       int64
	grace   time.Duration
	minRate int64
}

// uploadBody wraps a submission's body in the minimum-rate rule.
func uploadBody(w http.ResponseWriter, r *http.Request) io.ReadCloser {
	rc := http.NewResponseController(w)
	return &rateReader{r: r.Body, set: rc.SetReadDeadline, start: time.Now(), grace: UploadGrace, minRate: UploadMinRate}
}

func (rr *rateReader) Read(p []byte) (int, error) {
	allowed := rr.grace + time.Duration(rr.n*int64(time.Second)/rr.minRate)
	_ = rr.set(rr.start.Add(allowed))
	n, err := rr.r.Read(p)
	rr.n += int64(n)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		err = ErrSlowBody
	}
	return n, err
}

func (rr *rateReader) Close() error { return rr.r.Close() }

// bodyError is the answer to a request body that could not be read or
// decoded: 408 when it came too slowly, 413 when it was too large, else 400
// with what was wanted.
func bodyError(err error, want string) error {
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, ErrSlowBody):
		return &httpError{status: http.StatusRequestTimeout, msg: ErrSlowBody.Error(), err: err}
	case errors.As(err, &mbe):
		return &httpError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("request body larger than %d bytes", mbe.Limit), err: err}
	}
	return &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf("%s: %v", want, err), err: err}
}
