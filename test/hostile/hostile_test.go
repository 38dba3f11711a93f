package hostile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestHostile runs the cases that share one server, in order; each ends by
// checking the server is up, answers, and stayed under rssBound. A case
// that kills the server fails, and the server is restarted for the next.
func TestHostile(t *testing.T) {
	s := startServer(t, "")
	cases := []struct {
		name string
		run  func(*testing.T, *server)
	}{
		{"slow clients", testSlowClients},
		{"websocket flood", testWebsocketFlood},
		{"oversize bodies", testOversize},
		{"bad UTF-8", testBadUTF8},
		{"names and paths", testNames},
		{"priority by role", testPriority},
		{"revoked token", testRevokedToken},
		{"spec bombs", testSpecBombs},
		{"catastrophic regex", testCatastrophicRegex},
		{"sim bombs", testSimBombs}, // last: a board may end quarantined
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, s)
			s.healthy(t)
		})
		select {
		case err := <-s.done:
			t.Errorf("case %q killed the server (%v); restarting it", c.name, err)
			s.start(t)
		default:
		}
	}
	// make bench-hostile prints this line.
	hwm, _ := procStatus(t, s.cmd.Process.Pid)
	t.Logf("PEAK-RSS controller peak RSS over the hostile suite: %.1f MB (target <= %d MB)", float64(max(hwm, s.peak))/(1<<20), rssBound>>20)
}

// rawConn dials the server from a given local address (127.0.0.x).
func rawConn(t testing.TB, s *server, local byte) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, local)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", s.addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c
}

// readStatus reads an HTTP status line (0 when the connection closed
// first) within d.
func readStatus(c net.Conn, d time.Duration) (int, error) {
	c.SetReadDeadline(time.Now().Add(d))
	b := make([]byte, 64)
	n, err := io.ReadAtLeast(c, b, 12)
	if n >= 12 && bytes.HasPrefix(b, []byte("HTTP/1.1 ")) {
		var code int
		fmt.Sscanf(string(b[9:12]), "%d", &code)
		return code, nil
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err) {
		return 0, nil
	}
	return 0, err
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && !oe.Timeout()
}

// testSlowClients: without a token, 100 connections from one address
// that send a login body one byte at a time and 10 that send headers one
// byte at a time; a submitter uploads at 4 bytes/s. The address gets at
// most 64 connections (the rest are answered 503 at once), the server
// keeps answering others, and every slow connection is cut off within its
// deadline (10 s for headers and small bodies; an upload slower than
// 32 KiB/s after a 10 s grace).
func testSlowClients(t *testing.T, s *server) {
	const flood = 100
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range flood {
		c := rawConn(t, s, 1)
		conns = append(conns, c)
		fmt.Fprintf(c, "POST /api/v1/login HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
	}
	// Refused connections hear 503 at once; accepted ones hear nothing yet.
	type first struct {
		code int
		err  error
	}
	firsts := make([]first, len(conns))
	var readers sync.WaitGroup
	for i, c := range conns {
		readers.Add(1)
		go func() {
			defer readers.Done()
			code, err := readStatus(c, time.Second)
			firsts[i] = first{code, err}
		}()
	}
	readers.Wait()
	refused, held := 0, []net.Conn{}
	for i, c := range conns {
		code, err := firsts[i].code, firsts[i].err
		switch {
		case code == 503:
			refused++
		case err != nil && isTimeout(err):
			held = append(held, c)
		default:
			t.Errorf("flood connection: status %d, err %v; want 503 or nothing yet", code, err)
		}
	}
	t.Logf("%d connections from one address: %d held, %d refused with 503", flood, len(held), refused)
	if len(held) > 64 || refused < flood-64 {
		t.Errorf("held %d, refused %d: want at most 64 held per address", len(held), refused)
	}
	// Headers one byte at a time, from another address.
	var slowHdr []net.Conn
	for range 10 {
		c := rawConn(t, s, 4)
		conns = append(conns, c)
		slowHdr = append(slowHdr, c)
	}
	stopDrip := make(chan struct{})
	var drips sync.WaitGroup
	drip := func(c net.Conn, data string) {
		defer drips.Done()
		for i := 0; i < len(data); i++ {
			select {
			case <-stopDrip:
				return
			case <-time.After(250 * time.Millisecond): // the attack's pace
			}
			if _, err := c.Write([]byte{data[i]}); err != nil {
				return
			}
		}
	}
	for _, c := range slowHdr {
		drips.Add(1)
		go drip(c, "GET /api/v1/boards HTTP/1.1\r\nHost: h\r\nX-Slow: "+strings.Repeat("a", 1000)+"\r\n\r\n")
	}
	// A slow upload by a submitter, from a third address.
	up := rawConn(t, s, 3)
	conns = append(conns, up)
	fmt.Fprintf(up, "POST /api/v1/jobs HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: multipart/form-data; boundary=XX\r\nContent-Length: 1000000\r\n\r\n"+
		"--XX\r\nContent-Disposition: form-data; name=\"options\"\r\n\r\n{}\r\n"+
		"--XX\r\nContent-Disposition: form-data; name=\"firmware\"; filename=\"fw.bin\"\r\n\r\n", s.tokens["submitter"])
	drips.Add(1)
	go drip(up, strings.Repeat("x", 100000))
	defer func() { close(stopDrip); drips.Wait() }()

	// Meanwhile the server answers everyone else.
	s.healthy(t)

	check := func(what string, c net.Conn, want ...int) {
		start := time.Now()
		code, err := readStatus(c, 40*time.Second)
		took := time.Since(start)
		if err != nil {
			t.Errorf("%s: still open after %s: %v", what, took.Round(time.Millisecond), err)
			return
		}
		ok := false
		for _, w := range want {
			ok = ok || code == w
		}
		if !ok {
			t.Errorf("%s: status %d, want one of %v (0: closed)", what, code, want)
		}
	}
	for i, c := range held {
		check(fmt.Sprintf("slow login body %d", i), c, 408)
	}
	for i, c := range slowHdr {
		check(fmt.Sprintf("slow headers %d", i), c, 0, 400, 408)
	}
	check("slow upload", up, 408)
	// The address's connections are counted down again.
	resp, err := http.Get("http://" + s.addr + "/healthz")
	if err != nil {
		t.Fatalf("after the flood, a new connection from the flooding address: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("after the flood, /healthz from the flooding address: %s", resp.Status)
	}
}

// testWebsocketFlood: one address opens 100 console websockets; it gets
// 64, the rest are refused with 503, and once they close it may connect
// again.
func testWebsocketFlood(t *testing.T, s *server) {
	hdr := http.Header{"Authorization": {"Bearer " + s.tokens["viewer"]}}
	d := websocket.Dialer{NetDialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 6)}}).DialContext, HandshakeTimeout: 10 * time.Second}
	var open []*websocket.Conn
	refused := 0
	for range 100 {
		c, resp, err := d.Dial("ws://"+s.addr+"/api/v1/boards/sim-01/console", hdr)
		if err != nil {
			if resp == nil || resp.StatusCode != 503 {
				t.Errorf("websocket refused without a 503: %v %v", err, resp)
			}
			refused++
			continue
		}
		open = append(open, c)
	}
	t.Logf("100 websockets from one address: %d open, %d refused", len(open), refused)
	if len(open) > 64 || refused < 36 {
		t.Errorf("%d open, %d refused; want at most 64 per address", len(open), refused)
	}
	s.healthy(t)
	for _, c := range open {
		c.Close()
	}
	// The server notices the closes when its readers return; one dial
	// then works again (bounded retries on another process's progress).
	var err error
	for range 50 {
		var c *websocket.Conn
		if c, _, err = d.Dial("ws://"+s.addr+"/api/v1/boards/sim-01/console", hdr); err == nil {
			c.Close()
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("after the flood closed, a websocket from the same address: %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func wantStatus(t *testing.T, what string, a answer, want ...int) {
	t.Helper()
	for _, w := range want {
		if a.status == w {
			return
		}
	}
	t.Errorf("%s: %s; want %v", what, a, want)
}

// wantJSONError checks an error answer is JSON with an "error" message.
func wantJSONError(t *testing.T, what string, a answer, status int) {
	t.Helper()
	wantStatus(t, what, a, status)
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(a.body, &e); err != nil || e.Error == "" {
		t.Errorf("%s: answer is not a JSON error: %s", what, a)
	}
}

func testOversize(t *testing.T, s *server) {
	big := bytes.Repeat([]byte("a"), 1<<20)
	wantJSONError(t, "1 MiB login body without a token", s.postJSON(t, "/api/v1/login", "", append(append([]byte(`{"token":"`), big...), '"', '}')), 413)
	wantJSONError(t, "1 MiB maintenance body", s.postJSON(t, "/api/v1/boards/sim-01/maintenance", s.tokens["operator"], append(append([]byte(`{"on":true,"reason":"`), big...), '"', '}')), 413)
	wantJSONError(t, "1 MiB hold body", s.postJSON(t, "/api/v1/boards/sim-01/hold", s.tokens["operator"], append(append([]byte(`{"duration":"1m","reason":"`), big...), '"', '}')), 413)
	sub := s.tokens["submitter"]
	wantJSONError(t, "spec of 1 MiB + 1", s.submit(t, sub, `{}`, string(bytes.Repeat([]byte("#"), 1<<20+1)), []byte(goodModel), "fw.hcl"), 413)
	wantJSONError(t, "firmware over max_upload", s.submit(t, sub, `{}`, quickSpec, bytes.Repeat([]byte("#"), 1<<20+1), "fw.hcl"), 413)
	wantJSONError(t, "options of 100 KiB", s.submit(t, sub, `{"labels":{"a":"`+strings.Repeat("a", 100<<10)+`"}}`, quickSpec, []byte(goodModel), "fw.hcl"), 413)
	// 10,000 parts: refused at the first unknown one.
	var parts []part
	for i := range 10000 {
		parts = append(parts, part{fmt.Sprintf("p%d", i), "", []byte("x")})
	}
	ctype, body := multipartBody(parts...)
	wantJSONError(t, "10,000 unknown parts", s.do(t, "POST", "/api/v1/jobs", sub, ctype, bytes.NewReader(body)), 400)
	// A 64 MiB submission without a token is answered 401 at once: its body
	// is never read.
	c := rawConn(t, s, 5)
	defer c.Close()
	fmt.Fprintf(c, "POST /api/v1/jobs HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=XX\r\nContent-Length: %d\r\n\r\n%s", 64<<20, strings.Repeat("x", 1024))
	if code, err := readStatus(c, 20*time.Second); code != 401 {
		t.Errorf("64 MiB submission without a token: status %d, err %v; want 401 before the body", code, err)
	}
	// Out-of-range query parameters.
	wantJSONError(t, "limit=99999999", s.do(t, "GET", "/api/v1/jobs?limit=99999999", s.tokens["viewer"], "", nil), 400)
	wantJSONError(t, "limit=-1", s.do(t, "GET", "/api/v1/trends?spec=x&measure=y&limit=-1", s.tokens["viewer"], "", nil), 400)
	// Headers beyond 64 KiB: Go's server answers 431 before any handler.
	req, _ := http.NewRequest("GET", "http://"+s.addr+"/api/v1/boards", nil)
	req.Header.Set("X-Big", strings.Repeat("b", 1<<20))
	if resp, err := otherClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != 431 {
			t.Errorf("1 MiB header: %s, want 431", resp.Status)
		}
	}
}

func testBadUTF8(t *testing.T, s *server) {
	sub, op := s.tokens["submitter"], s.tokens["operator"]
	wantJSONError(t, "firmware name with bad UTF-8", s.submit(t, sub, `{}`, quickSpec, []byte(goodModel), "fw\xff\xfe.hcl"), 400)
	wantJSONError(t, "labels with bad UTF-8", s.submit(t, sub, "{\"labels\":{\"commit\":\"ab\xc3\x28\"}}", quickSpec, []byte(goodModel), "fw.hcl"), 400)
	wantJSONError(t, "firmware_version with bad UTF-8", s.submit(t, sub, "{\"firmware_version\":\"1.\xff\"}", quickSpec, []byte(goodModel), "fw.hcl"), 400)
	wantJSONError(t, "maintenance reason with bad UTF-8", s.postJSON(t, "/api/v1/boards/sim-01/maintenance", op, []byte("{\"on\":true,\"reason\":\"broken \xff\xff\"}")), 400)
	wantJSONError(t, "hold reason with bad UTF-8", s.postJSON(t, "/api/v1/boards/sim-01/hold", op, []byte("{\"duration\":\"1m\",\"reason\":\"debug \xed\xa0\x80\"}")), 400)
	wantJSONError(t, "maintenance reason with a NUL", s.postJSON(t, "/api/v1/boards/sim-01/maintenance", op, []byte(`{"on":true,"reason":"a\u0000b"}`)), 400)
	if _, err := s.hilfarm("token", "create", "--farm", s.farm, "--name", "bad\xffname", "--role", "viewer"); err == nil {
		t.Error("hilfarm token create with a name of bad UTF-8: accepted")
	}
	if a := s.do(t, "GET", "/api/v1/boards/sim-01", s.tokens["viewer"], "", nil); !bytes.Contains(a.body, []byte(`"idle"`)) {
		t.Errorf("sim-01 after refused maintenance requests: %s", a)
	}
}

func testNames(t *testing.T, s *server) {
	sub, op := s.tokens["submitter"], s.tokens["operator"]
	for _, name := range []string{strings.Repeat("n", 5000), strings.Repeat("n", 256), "..", ".", "../../etc/passwd", `..\evil`, "a/b.hcl"} {
		wantJSONError(t, fmt.Sprintf("firmware named %.40q", name), s.submit(t, sub, `{}`, quickSpec, []byte(goodModel), name), 400)
	}
	ctype, body := multipartBody(part{"options", "", []byte(`{}`)}, part{"spec", "../spec.hcl", []byte(quickSpec)}, part{"firmware", "fw.hcl", []byte(goodModel)})
	wantJSONError(t, "spec named ../spec.hcl", s.do(t, "POST", "/api/v1/jobs", sub, ctype, bytes.NewReader(body)), 400)
	wantJSONError(t, "label key of 300 bytes", s.submit(t, sub, `{"labels":{"`+strings.Repeat("k", 300)+`":"v"}}`, quickSpec, []byte(goodModel), "fw.hcl"), 400)
	wantJSONError(t, "firmware_version of 300 bytes", s.submit(t, sub, `{"firmware_version":"`+strings.Repeat("1", 300)+`"}`, quickSpec, []byte(goodModel), "fw.hcl"), 400)
	var many []string
	for i := range 100 {
		many = append(many, fmt.Sprintf(`"k%d":"v"`, i))
	}
	wantJSONError(t, "100 labels", s.submit(t, sub, `{"labels":{`+strings.Join(many, ",")+`}}`, quickSpec, []byte(goodModel), "fw.hcl"), 400)
	wantJSONError(t, "maintenance reason of 5000 bytes", s.postJSON(t, "/api/v1/boards/sim-01/maintenance", op, []byte(`{"on":true,"reason":"`+strings.Repeat("r", 5000)+`"}`)), 400)
	if _, err := s.hilfarm("token", "create", "--farm", s.farm, "--name", strings.Repeat("t", 300), "--role", "viewer"); err == nil {
		t.Error("hilfarm token create with a 300-byte name: accepted")
	}
	// A plain name still works.
	a := s.submit(t, sub, `{"labels":{"commit":"abc"},"firmware_version":"2.0.0"}`, quickSpec, []byte(goodModel), "fw-2.0.0.hcl")
	wantStatus(t, "a well-named submission", a, 201)
	if a.status == 201 {
		s.waitFinal(t, jobOf(t, a).ID, 2*time.Minute)
	}
}

func testPriority(t *testing.T, s *server) {
	sub, op, admin := s.tokens["submitter"], s.tokens["operator"], s.tokens["admin"]
	// Hold the queue: both boards in maintenance, so accepted jobs stay queued.
	for _, b := range []string{"sim-01", "sim-02"} {
		wantStatus(t, "maintenance on", s.postJSON(t, "/api/v1/boards/"+b+"/maintenance", op, []byte(`{"on":true,"reason":"priority test"}`)), 200)
	}
	defer func() {
		for _, b := range []string{"sim-01", "sim-02"} {
			wantStatus(t, "maintenance off", s.postJSON(t, "/api/v1/boards/"+b+"/maintenance", op, []byte(`{"on":false}`)), 200)
		}
	}()
	for _, c := range []struct {
		token, prio string
		want        int
	}{
		{sub, "101", 400}, {sub, "-101", 400}, {sub, "1000", 400},
		{sub, "9223372036854775807", 400}, {sub, "-9223372036854775808", 400},
		{sub, "1e30", 400}, {sub, "99999999999999999999999", 400},
		{op, "1000", 400}, {admin, "1000", 400}, {admin, "-1000", 400},
		{sub, "100", 201}, {sub, "-100", 201}, {op, "999", 201}, {admin, "-999", 201},
	} {
		a := s.submit(t, c.token, `{"priority":`+c.prio+`}`, quickSpec, []byte(goodModel), "fw.hcl")
		wantStatus(t, "priority "+c.prio, a, c.want)
		if a.status == 201 {
			id := jobOf(t, a).ID
			wantStatus(t, "cancel", s.do(t, "POST", "/api/v1/jobs/"+id+"/cancel", admin, "", nil), 200)
		}
	}
}

// testRevokedToken: an operator holds a board and has websockets open
// (terminal, live, console); revoking its token closes them with 1008 and
// releases the hold, with an audit record.
func testRevokedToken(t *testing.T, s *server) {
	tok := s.newToken(t, "hostile-revokee", "operator")
	id := strings.SplitN(strings.TrimPrefix(tok, "hf_"), "_", 2)[0]
	wantStatus(t, "hold", s.postJSON(t, "/api/v1/boards/sim-02/hold", tok, []byte(`{"duration":"30m","reason":"revocation test"}`)), 200)
	hdr := http.Header{"Authorization": {"Bearer " + tok}}
	d := websocket.Dialer{NetDialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}
	var conns []*websocket.Conn
	for _, path := range []string{"/api/v1/boards/sim-02/terminal", "/api/v1/live", "/api/v1/boards/sim-01/console"} {
		c, resp, err := d.Dial("ws://"+s.addr+path, hdr)
		if err != nil {
			t.Fatalf("websocket %s: %v %v", path, err, resp)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	// The terminal types for its holder before the revocation.
	if err := conns[0].WriteMessage(websocket.BinaryMessage, []byte("version\r")); err != nil {
		t.Fatal(err)
	}
	type closed struct {
		i    int
		code int
		at   time.Time
	}
	ch := make(chan closed, len(conns))
	for i, c := range conns {
		go func() {
			c.SetReadDeadline(time.Now().Add(60 * time.Second))
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					code := 0
					var ce *websocket.CloseError
					if errors.As(err, &ce) {
						code = ce.Code
					}
					ch <- closed{i, code, time.Now()}
					return
				}
			}
		}()
	}
	if _, err := s.hilfarm("token", "revoke", "--farm", s.farm, id); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	var worst time.Duration
	for range conns {
		c := <-ch
		took := c.at.Sub(revoked)
		worst = max(worst, took)
		if c.code != websocket.ClosePolicyViolation {
			t.Errorf("websocket %d closed with code %d, want 1008 (token revoked)", c.i, c.code)
		}
	}
	t.Logf("revoked token's websockets closed within %s of the revoke command's exit", worst.Round(time.Millisecond))
	var b struct {
		State  string `json:"state"`
		Reason string `json:"reason"`
	}
	a := s.do(t, "GET", "/api/v1/boards/sim-02", s.tokens["viewer"], "", nil)
	json.Unmarshal(a.body, &b)
	if b.State == "leased" {
		t.Errorf("sim-02 after its holder's token was revoked: %s (%s)", b.State, b.Reason)
	}
	a = s.do(t, "GET", "/api/v1/boards/sim-02/history", s.tokens["viewer"], "", nil)
	if !bytes.Contains(a.body, []byte(`"release"`)) || !bytes.Contains(a.body, []byte("revoked")) {
		t.Errorf("no audited release for the revoked token in sim-02's history: %s", a)
	}
	if a := s.do(t, "GET", "/api/v1/me", tok, "", nil); a.status != 401 {
		t.Errorf("revoked token still works: %s", a)
	}
}
