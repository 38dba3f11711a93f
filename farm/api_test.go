package farm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/prometheus/client_golang/prometheus"
)

// apiEnv is a real controller with sim boards behind a real HTTP server.
type apiEnv struct {
	tc     *testController
	api    *API
	srv    *httptest.Server
	tokens map[string]string // role -> token
}

func startAPI(t *testing.T, farmSrc string, mod func(*Config)) *apiEnv {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	tc := startController(t, farmSrc, func(c *Config) {
		c.OnJobFinished = append(c.OnJobFinished, m.JobFinished)
		if mod != nil {
			mod(c)
		}
	})
	m.SetStats(tc.Stats)
	env := &apiEnv{tc: tc, tokens: map[string]string{}}
	for _, role := range Roles {
		tok, _, err := CreateToken(context.Background(), tc.db, role+"-token", role, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		env.tokens[role] = tok
	}
	env.api = NewAPI(tc.Controller, APIOptions{Auth: NewAuth(tc.db, tc.cfg.Farm.AnonymousRead, nil), Registry: reg,
		AllowedOrigins: []string{"https://ui.example"}})
	env.srv = httptest.NewServer(env.api.Handler())
	t.Cleanup(func() {
		env.api.CloseWebsockets()
		env.srv.Close()
		env.api.Wait()
	})
	return env
}

// multipartBody builds a submission body with its parts in the given order.
func multipartBody(t testing.TB, order []string, opts, spec string, fwName string, fw []byte) (string, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range order {
		var w io.Writer
		var err error
		switch p {
		case "options":
			w, err = mw.CreateFormField("options")
			if err == nil {
				_, err = io.WriteString(w, opts)
			}
		case "spec":
			w, err = mw.CreateFormFile("spec", "spec.hcl")
			if err == nil {
				_, err = io.WriteString(w, spec)
			}
		case "firmware":
			w, err = mw.CreateFormFile("firmware", fwName)
			if err == nil {
				_, err = w.Write(fw)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), &buf
}

var streamOrder = []string{"options", "spec", "firmware"}

type apiAnswer struct {
	status int
	body   []byte
	hdr    http.Header
}

func (e *apiEnv) do(t *testing.T, method, path, token, ctype string, body io.Reader, mod ...func(*http.Request)) apiAnswer {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for _, m := range mod {
		m(req)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return apiAnswer{resp.StatusCode, b, resp.Header}
}

func (e *apiEnv) submit(t *testing.T, token string, order []string, opts, spec, fwName string, fw []byte) apiAnswer {
	t.Helper()
	ct, body := multipartBody(t, order, opts, spec, fwName, fw)
	return e.do(t, "POST", "/api/v1/jobs", token, ct, body)
}

func errorBody(t *testing.T, a apiAnswer) apiErrorBody {
	t.Helper()
	var b struct {
		Error       string            `json:"error"`
		Diagnostics []json.RawMessage `json:"diagnostics"`
	}
	if err := json.Unmarshal(a.body, &b); err != nil || b.Error == "" {
		t.Fatalf("error answer %d is not JSON {\"error\": ...}: %q (%v)", a.status, a.body, err)
	}
	return apiErrorBody{Error: b.Error, Diagnostics: b.Diagnostics}
}

func TestAPIBadInput(t *testing.T) {
	leakCheck(t)
	e := startAPI(t, testFarm, nil)
	sub := e.tokens[RoleSubmitter]
	good := []byte(goodModel)
	big := bytes.Repeat([]byte("x"), 5<<10) // max_upload is 4KiB

	tests := []struct {
		name       string
		answer     func() apiAnswer
		status     int
		wantInBody string
	}{
		{"no token", func() apiAnswer { return e.do(t, "GET", "/api/v1/jobs", "", "", nil) }, 401, "no token"},
		{"invalid token", func() apiAnswer { return e.do(t, "GET", "/api/v1/jobs", "hf_0123_nope", "", nil) }, 401, "unknown token"},
		{"malformed token", func() apiAnswer { return e.do(t, "GET", "/api/v1/boards", "secret", "", nil) }, 401, "malformed"},
		{"viewer submits", func() apiAnswer {
			return e.submit(t, e.tokens[RoleViewer], streamOrder, `{}`, bootSpec, "fw.hcl", good)
		}, 403, "role submitter"},
		{"submitter sets maintenance", func() apiAnswer {
			return e.do(t, "POST", "/api/v1/boards/sim-a/maintenance", sub, "application/json", strings.NewReader(`{"on":true,"reason":"x"}`))
		}, 403, "role operator"},
		{"not multipart", func() apiAnswer {
			return e.do(t, "POST", "/api/v1/jobs", sub, "application/json", strings.NewReader(`{"spec":"x"}`))
		}, 400, "multipart/form-data"},
		{"multipart without boundary", func() apiAnswer {
			return e.do(t, "POST", "/api/v1/jobs", sub, "multipart/form-data", strings.NewReader("garbage"))
		}, 400, "multipart"},
		{"no firmware", func() apiAnswer {
			return e.submit(t, sub, []string{"options", "spec"}, `{}`, bootSpec, "", nil)
		}, 400, "no firmware"},
		{"no spec", func() apiAnswer { return e.submit(t, sub, []string{"firmware"}, ``, "", "fw.hcl", good) }, 400, "no spec"},
		{"options with a typo", func() apiAnswer {
			return e.submit(t, sub, streamOrder, `{"prio": 3}`, bootSpec, "fw.hcl", good)
		}, 400, "options"},
		{"unknown part", func() apiAnswer {
			ct, body := multipartBody(t, streamOrder, `{}`, bootSpec, "fw.hcl", good)
			b := strings.Replace(body.String(), `name="options"`, `name="extra"`, 1)
			return e.do(t, "POST", "/api/v1/jobs", sub, ct, strings.NewReader(b))
		}, 400, "unknown part"},
		{"malformed spec", func() apiAnswer {
			return e.submit(t, sub, streamOrder, `{}`, "spec \"x\" {\n  board { type = \"sim\" }\n  timeuot = \"1m\"\n}\n", "fw.hcl", good)
		}, 422, "invalid spec"},
		{"no board could run it", func() apiAnswer {
			return e.submit(t, sub, streamOrder, `{"tags": {"rack": "r9"}}`, bootSpec, "fw.hcl", good)
		}, 422, "sim-a"},
		{"oversized firmware, streamed", func() apiAnswer { return e.submit(t, sub, streamOrder, `{}`, bootSpec, "fw.bin", big) }, 413, "limit"},
		{"oversized firmware, spooled", func() apiAnswer {
			return e.submit(t, sub, []string{"firmware", "spec", "options"}, `{}`, bootSpec, "fw.bin", big)
		}, 413, "limit"},
		{"unknown job", func() apiAnswer { return e.do(t, "GET", "/api/v1/jobs/nope", sub, "", nil) }, 404, "not found"},
		{"unknown job's junit", func() apiAnswer { return e.do(t, "GET", "/api/v1/jobs/nope/junit.xml", sub, "", nil) }, 404, "not found"},
		{"unknown job's console", func() apiAnswer { return e.do(t, "GET", "/api/v1/jobs/nope/console", sub, "", nil) }, 404, "not found"},
		{"cancel unknown job", func() apiAnswer { return e.do(t, "POST", "/api/v1/jobs/nope/cancel", sub, "", nil) }, 404, "not found"},
		{"unknown board", func() apiAnswer { return e.do(t, "GET", "/api/v1/boards/nope", sub, "", nil) }, 404, "not found"},
		{"unknown endpoint", func() apiAnswer { return e.do(t, "GET", "/api/v1/nope", sub, "", nil) }, 404, "no such endpoint"},
		{"bad state filter", func() apiAnswer { return e.do(t, "GET", "/api/v1/jobs?state=done", sub, "", nil) }, 400, "unknown state"},
		{"events without upgrade", func() apiAnswer { return e.do(t, "GET", "/api/v1/jobs/x/events", sub, "", nil) }, 400, "websocket"},
		{"events with a bad console flag", func() apiAnswer { return e.do(t, "GET", "/api/v1/jobs/x/events?console=maybe", sub, "", nil) }, 400, "console must be"},
		{"cookie POST without CSRF header", func() apiAnswer {
			return e.do(t, "POST", "/api/v1/jobs/nope/cancel", "", "", nil, func(r *http.Request) {
				r.AddCookie(&http.Cookie{Name: SessionCookie, Value: sub})
			})
		}, 403, CSRFHeader},
		{"cookie POST from a foreign origin", func() apiAnswer {
			return e.do(t, "POST", "/api/v1/jobs/nope/cancel", "", "", nil, func(r *http.Request) {
				r.AddCookie(&http.Cookie{Name: SessionCookie, Value: sub})
				r.Header.Set("Origin", "https://evil.example")
			})
		}, 403, CSRFHeader},
		{"cookie POST with CSRF header", func() apiAnswer {
			return e.do(t, "POST", "/api/v1/jobs/nope/cancel", "", "", nil, func(r *http.Request) {
				r.AddCookie(&http.Cookie{Name: SessionCookie, Value: sub})
				r.Header.Set(CSRFHeader, "1")
			})
		}, 404, "not found"},
		{"login with a form", func() apiAnswer {
			return e.do(t, "POST", "/api/v1/login", "", "application/x-www-form-urlencoded", strings.NewReader("token="+sub))
		}, 400, "JSON"},
		{"login with a bad token", func() apiAnswer {
			return e.do(t, "POST", "/api/v1/login", "", "application/json", strings.NewReader(`{"token":"hf_1_2"}`))
		}, 401, "unknown token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.answer()
			if a.status != tc.status {
				t.Fatalf("status = %d, want %d; body %s", a.status, tc.status, a.body)
			}
			b := errorBody(t, a)
			if !strings.Contains(b.Error, tc.wantInBody) {
				t.Errorf("error = %q, want it to mention %q", b.Error, tc.wantInBody)
			}
			if tc.status == 401 && a.hdr.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}

	t.Run("malformed spec has diagnostics", func(t *testing.T) {
		a := e.submit(t, sub, streamOrder, `{}`, "spec \"x\" {\n  board { type = \"sim\" }\n  timeuot = \"1m\"\n}\n", "fw.hcl", good)
		var b struct {
			Diagnostics []struct {
				Severity, Summary string
				Range             *struct {
					Filename string
					Start    struct{ Line, Column int }
				}
			}
		}
		if err := json.Unmarshal(a.body, &b); err != nil {
			t.Fatal(err)
		}
		if len(b.Diagnostics) == 0 {
			t.Fatalf("no diagnostics in %s", a.body)
		}
		d := b.Diagnostics[0]
		if d.Severity != "error" || d.Range == nil || d.Range.Filename != "spec.hcl" || d.Range.Start.Line != 3 {
			t.Errorf("diagnostic = %+v, want an error at spec.hcl:3", d)
		}
	})

	t.Run("nothing was queued", func(t *testing.T) {
		js, err := e.tc.Jobs(context.Background(), store.JobFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(js) != 0 {
			t.Errorf("%d jobs stored from bad input", len(js))
		}
	})

	t.Run("path traversal filename is refused", func(t *testing.T) {
		for _, order := range [][]string{streamOrder, {"firmware", "spec", "options"}} {
			for _, name := range []string{"../../../../tmp/evil.hcl", "..", `a\b`, "bad\xff.bin", strings.Repeat("x", 256)} {
				a := e.submit(t, sub, order, `{}`, bootSpec, name, good)
				if a.status != http.StatusBadRequest {
					t.Errorf("firmware named %q: status %d, want 400: %s", name, a.status, a.body)
				}
			}
		}
		matches, _ := filepath.Glob(filepath.Join(e.tc.dir, "firmware", ".spool-*"))
		if len(matches) != 0 {
			t.Errorf("spool files left behind: %v", matches)
		}
	})

	t.Run("firmware is stored by hash", func(t *testing.T) {
		e.tc.SetMaintenance(context.Background(), "sim-a", true, "hold the queue", "test")
		e.tc.SetMaintenance(context.Background(), "sim-b", true, "hold the queue", "test")
		for _, order := range [][]string{streamOrder, {"firmware", "spec", "options"}} {
			a := e.submit(t, sub, order, `{}`, bootSpec, "evil.hcl", good)
			if a.status != http.StatusCreated {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			var j JobView
			if err := json.Unmarshal(a.body, &j); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(good)
			if j.Firmware.SHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("sha256 = %s", j.Firmware.SHA256)
			}
			if strings.ContainsAny(j.Firmware.Name, `/\`) || strings.Contains(j.Firmware.Name, "..") {
				t.Errorf("stored firmware name %q keeps a path", j.Firmware.Name)
			}
			if _, err := os.Stat(filepath.Join(e.tc.dir, "firmware", j.Firmware.SHA256)); err != nil {
				t.Errorf("firmware not stored by hash: %v", err)
			}
		}
		matches, _ := filepath.Glob(filepath.Join(e.tc.dir, "firmware", ".spool-*"))
		if len(matches) != 0 {
			t.Errorf("spool files left behind: %v", matches)
		}
	})
}

// wsDial dials a websocket of the API.
func (e *apiEnv) wsDial(path string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	u := "ws" + strings.TrimPrefix(e.srv.URL, "http") + path
	return websocket.DefaultDialer.Dial(u, hdr)
}

func bearer(tok string) http.Header {
	return http.Header{"Authorization": {"Bearer " + tok}}
}

func TestAPIJobLifecycleAndStreams(t *testing.T) {
	leakCheck(t)
	e := startAPI(t, testFarm, nil)
	sub, view, op := e.tokens[RoleSubmitter], e.tokens[RoleViewer], e.tokens[RoleOperator]

	// Websocket auth and origin checks.
	if _, resp, err := e.wsDial("/api/v1/jobs/x/events", nil); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("events without a token: %v %v, want 401", err, resp)
	}
	evil := bearer(view)
	evil.Set("Origin", "https://evil.example")
	if _, resp, err := e.wsDial("/api/v1/boards/sim-a/console", evil); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("console from a foreign origin: %v %v, want 403", err, resp)
	}

	// A console viewer from the allow-listed origin, watching sim-a from before the job.
	okOrigin := bearer(view)
	okOrigin.Set("Origin", "https://ui.example")
	console, _, err := e.wsDial("/api/v1/boards/sim-a/console", okOrigin)
	if err != nil {
		t.Fatalf("console from an allowed origin: %v", err)
	}
	defer console.Close()

	// Put sim-b in maintenance so the job runs on sim-a (operator), and check its view.
	a := e.do(t, "POST", "/api/v1/boards/sim-b/maintenance", op, "application/json", strings.NewReader(`{"on":true,"reason":"relay swap"}`))
	if a.status != 200 || !strings.Contains(string(a.body), `"maintenance"`) || !strings.Contains(string(a.body), "relay swap") {
		t.Fatalf("maintenance on: %d %s", a.status, a.body)
	}

	a = e.submit(t, sub, streamOrder, `{"priority": 5, "labels": {"commit": "abc123"}, "firmware_version": "1.1.0"}`, bootSpec, "fw.hcl", []byte(goodModel))
	if a.status != http.StatusCreated {
		t.Fatalf("submit: %d %s", a.status, a.body)
	}
	var j JobView
	if err := json.Unmarshal(a.body, &j); err != nil {
		t.Fatal(err)
	}
	if j.Priority != 5 || j.Labels["commit"] != "abc123" || j.Firmware.Version != "1.1.0" || !strings.Contains(j.Submitter, "submitter-token") {
		t.Errorf("job = %+v", j)
	}

	// Follow its events as a cookie-authenticated browser would (same origin).
	login := e.do(t, "POST", "/api/v1/login", "", "application/json", strings.NewReader(`{"token":"`+view+`"}`))
	if login.status != 200 {
		t.Fatalf("login: %d %s", login.status, login.body)
	}
	var cookie *http.Cookie
	for _, c := range (&http.Response{Header: login.hdr}).Cookies() {
		if c.Name == SessionCookie {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Value != view {
		t.Fatalf("session cookie = %+v", cookie)
	}
	hdr := http.Header{"Cookie": {cookie.String()}, "Origin": {e.srv.URL}}
	events, _, err := e.wsDial("/api/v1/jobs/"+j.ID+"/events", hdr)
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	defer events.Close()
	var seen []store.Event
	for {
		_, msg, err := events.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				t.Fatalf("events ended with %v, want a normal close after the final state", err)
			}
			break
		}
		var ev store.Event
		if err := json.Unmarshal(msg, &ev); err != nil {
			t.Fatal(err)
		}
		if n := len(seen); n > 0 && ev.Seq != seen[n-1].Seq+1 {
			t.Errorf("seq %d after %d", ev.Seq, seen[n-1].Seq)
		}
		seen = append(seen, ev)
	}
	types := map[string]int{}
	for _, ev := range seen {
		types[ev.Type]++
	}
	if types["state"] < 3 || types["step_finished"] == 0 || types["console"] == 0 || seen[0].Seq != 1 {
		t.Errorf("event types %v (first seq %d)", types, seen[0].Seq)
	}
	last := seen[len(seen)-1]
	if last.Type != "state" || !strings.Contains(string(last.Data), `"passed"`) {
		t.Errorf("last event %s %s, want the passed state", last.Type, last.Data)
	}

	// Resume: ?after= gives exactly the rest.
	mid := seen[len(seen)/2].Seq
	resume, _, err := e.wsDial("/api/v1/jobs/"+j.ID+"/events?after="+itoa(mid), bearer(view))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, msg, err := resume.ReadMessage()
		if err != nil {
			break
		}
		var ev store.Event
		json.Unmarshal(msg, &ev)
		if want := mid + int64(n) + 1; ev.Seq != want {
			t.Errorf("resumed seq %d, want %d", ev.Seq, want)
		}
		n++
	}
	resume.Close()
	if want := len(seen) - len(seen)/2 - 1; n != want {
		t.Errorf("resume after %d gave %d events, want %d", mid, n, want)
	}

	// The console viewer saw a power marker then the boot banner as bytes.
	var markers []ConsoleMarker
	var bytesSeen bytes.Buffer
	for !strings.Contains(bytesSeen.String(), "1.1.0") {
		mt, msg, err := console.ReadMessage()
		if err != nil {
			t.Fatalf("console: %v (so far %q)", err, bytesSeen.String())
		}
		switch mt {
		case websocket.BinaryMessage:
			bytesSeen.Write(msg)
		case websocket.TextMessage:
			var m ConsoleMarker
			if err := json.Unmarshal(msg, &m); err != nil || m.Type != "marker" {
				t.Fatalf("text message %q is not a marker", msg)
			}
			markers = append(markers, m)
		}
	}
	kinds := map[string]bool{}
	for _, m := range markers {
		kinds[m.Kind] = true
	}
	if !kinds[MarkJobStart] || !kinds[MarkPowerOn] || !strings.Contains(bytesSeen.String(), "Booting hilfarm-sim v1.1.0") {
		t.Errorf("console markers %v, bytes %q", kinds, bytesSeen.String())
	}

	// REST views of the finished job.
	a = e.do(t, "GET", "/api/v1/jobs/"+j.ID, view, "", nil)
	if a.status != 200 || !strings.Contains(string(a.body), `"state":"passed"`) || !strings.Contains(string(a.body), `"board":"sim-a"`) {
		t.Errorf("job: %d %s", a.status, a.body)
	}
	a = e.do(t, "GET", "/api/v1/jobs?state=passed,failed", view, "", nil)
	var list []JobView
	if err := json.Unmarshal(a.body, &list); err != nil || len(list) != 1 || list[0].ID != j.ID {
		t.Errorf("jobs?state=passed: %s", a.body)
	}
	a = e.do(t, "GET", "/api/v1/jobs?state=queued", view, "", nil)
	if strings.TrimSpace(string(a.body)) != "[]" {
		t.Errorf("jobs?state=queued = %s, want []", a.body)
	}
	a = e.do(t, "GET", "/api/v1/jobs/"+j.ID+"/junit.xml", view, "", nil)
	if a.status != 200 || !strings.HasPrefix(a.hdr.Get("Content-Type"), "application/xml") || !strings.Contains(string(a.body), "<testsuite") {
		t.Errorf("junit: %d %s %s", a.status, a.hdr.Get("Content-Type"), a.body)
	}
	a = e.do(t, "GET", "/api/v1/jobs/"+j.ID+"/console", view, "", nil)
	if a.status != 200 || !strings.HasPrefix(a.hdr.Get("Content-Type"), "text/plain") || !strings.Contains(string(a.body), "Booting hilfarm-sim v1.1.0") {
		t.Errorf("console: %d %s %q", a.status, a.hdr.Get("Content-Type"), a.body)
	}
	a = e.do(t, "POST", "/api/v1/jobs/"+j.ID+"/cancel", sub, "", nil)
	if a.status != http.StatusConflict {
		t.Errorf("cancel a finished job: %d %s, want 409", a.status, a.body)
	}

	// Boards.
	a = e.do(t, "GET", "/api/v1/boards", view, "", nil)
	var boards []BoardView
	if err := json.Unmarshal(a.body, &boards); err != nil || len(boards) != 2 || boards[1].State != BoardMaintenance {
		t.Errorf("boards: %s", a.body)
	}
	a = e.do(t, "POST", "/api/v1/boards/sim-b/maintenance", op, "application/json", strings.NewReader(`{"on":false}`))
	if a.status != 200 || !strings.Contains(string(a.body), `"idle"`) {
		t.Errorf("maintenance off: %d %s", a.status, a.body)
	}

	// Audit trail: submit and both maintenance changes, with the token names.
	recs, err := e.tc.db.AuditLog(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]string{}
	for _, r := range recs {
		actions[r.Action] = r.Actor
	}
	if !strings.Contains(actions["submit"], "submitter-token") || !strings.Contains(actions["maintenance-on"], "operator-token") {
		t.Errorf("audit = %+v", recs)
	}

	// Metrics: the passed job, board states, console bytes; no job ids.
	a = e.do(t, "GET", "/metrics", view, "", nil)
	m := string(a.body)
	for _, want := range []string{
		`hilfarm_jobs_finished_total{outcome="passed"} 1`,
		`hilfarm_job_duration_seconds_count{outcome="passed"} 1`,
		`hilfarm_queue_depth 0`,
		`hilfarm_board_state{board="sim-a",state="idle",type="sim"} 1`,
		`hilfarm_console_bytes_total{board="sim-a"}`,
		`hilfarm_power_cycles_total{board="sim-a"}`,
		`hilfarm_infra_errors_total{board="sim-a"} 0`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(m, j.ID) {
		t.Error("metrics mention a job id")
	}
	a = e.do(t, "GET", "/healthz", "", "", nil)
	if a.status != 200 || !strings.Contains(string(a.body), `"ok"`) {
		t.Errorf("healthz: %d %s", a.status, a.body)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestAPIServeShutdownClosesWebsockets: a websocket following a queued job
// gets a going-away close when Serve's context ends, and Serve returns only
// after its handler did.
func TestAPIServeShutdownClosesWebsockets(t *testing.T) {
	leakCheck(t)
	e := startAPI(t, testFarm, nil)
	for _, b := range []string{"sim-a", "sim-b"} {
		if err := e.tc.SetMaintenance(context.Background(), b, true, "hold the queue", "test"); err != nil {
			t.Fatal(err)
		}
	}
	a := e.submit(t, e.tokens[RoleSubmitter], streamOrder, `{}`, bootSpec, "fw.hcl", []byte(goodModel))
	if a.status != http.StatusCreated {
		t.Fatalf("submit: %d %s", a.status, a.body)
	}
	var j JobView
	json.Unmarshal(a.body, &j)

	api := NewAPI(e.tc.Controller, APIOptions{Auth: NewAuth(e.tc.db, false, nil)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- api.Serve(ctx, ln) }()
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+ln.Addr().String()+"/api/v1/jobs/"+j.ID+"/events", bearer(e.tokens[RoleViewer]))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, msg, err := conn.ReadMessage() // the queued state
	if err != nil || !strings.Contains(string(msg), `"queued"`) {
		t.Fatalf("first event %s, %v", msg, err)
	}
	cancel()
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	_, _, err = conn.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Errorf("after shutdown: %v, want close 1001", err)
	}
}

// TestAPISlowClientsGet1013 drops a job-event subscriber the way the hub
// drops one that falls behind, and checks that the websocket is closed
// with 1013 and the reason, and that the stream resumes with ?after=.
// (Console viewers: consolews_test.go.)
func TestAPISlowClientsGet1013(t *testing.T) {
	leakCheck(t)
	e := startAPI(t, testFarm, nil)
	for _, b := range []string{"sim-a", "sim-b"} {
		if err := e.tc.SetMaintenance(context.Background(), b, true, "hold the queue", "test"); err != nil {
			t.Fatal(err)
		}
	}
	a := e.submit(t, e.tokens[RoleSubmitter], streamOrder, `{}`, bootSpec, "fw.hcl", []byte(goodModel))
	var j JobView
	if err := json.Unmarshal(a.body, &j); err != nil {
		t.Fatal(err)
	}
	tok := bearer(e.tokens[RoleViewer])

	events, _, err := e.wsDial("/api/v1/jobs/"+j.ID+"/events", tok)
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	if _, msg, err := events.ReadMessage(); err != nil || !strings.Contains(string(msg), `"seq":1`) {
		t.Fatalf("first event %s, %v", msg, err)
	}
	// As hub.publish does with a subscriber whose queue is full.
	e.tc.hub.mu.Lock()
	for s := range e.tc.hub.subs[j.ID] {
		e.tc.hub.drop(j.ID, s)
	}
	e.tc.hub.mu.Unlock()
	_, _, err = events.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseTryAgainLater || ce.Text != CloseReasonSlow {
		t.Fatalf("dropped job subscriber got %v, want close 1013 %q", err, CloseReasonSlow)
	}
	// Resume after seq 1: cancel the job, and the stream brings its final state.
	resumed, _, err := e.wsDial("/api/v1/jobs/"+j.ID+"/events?after=1", tok)
	if err != nil {
		t.Fatal(err)
	}
	defer resumed.Close()
	if c := e.do(t, "POST", "/api/v1/jobs/"+j.ID+"/cancel", e.tokens[RoleSubmitter], "", nil); c.status != 200 {
		t.Fatalf("cancel: %d %s", c.status, c.body)
	}
	_, msg, err := resumed.ReadMessage()
	if err != nil || !strings.Contains(string(msg), `"seq":2`) || !strings.Contains(string(msg), `cancelled`) {
		t.Fatalf("resumed stream: %s, %v", msg, err)
	}
	if _, _, err := resumed.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("after the final state: %v, want close 1000", err)
	}
}
