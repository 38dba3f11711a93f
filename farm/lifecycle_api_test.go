package farm

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/specs"
)

// holdQueue puts every board of testFarm in maintenance so jobs stay queued.
func (e *apiEnv) holdQueue(t *testing.T) {
	t.Helper()
	for _, b := range []string{"sim-a", "sim-b"} {
		if err := e.tc.SetMaintenance(context.Background(), b, true, "hold the queue", "test"); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *apiEnv) submitOK(t *testing.T, token string) JobView {
	t.Helper()
	a := e.submit(t, token, streamOrder, `{}`, bootSpec, "fw.hcl", []byte(goodModel))
	if a.status != http.StatusCreated {
		t.Fatalf("submit: %d %s", a.status, a.body)
	}
	var j JobView
	if err := json.Unmarshal(a.body, &j); err != nil {
		t.Fatal(err)
	}
	return j
}

// TestCancelRules: submitters cancel their own jobs only; operators and
// admins cancel any, health checks included.
func TestCancelRules(t *testing.T) {
	leakCheck(t)
	e := startAPI(t, testFarm, nil)
	e.holdQueue(t)
	ctx := context.Background()
	bob, _, err := CreateToken(ctx, e.tc.db, "bob", RoleSubmitter, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	alice := e.tokens[RoleSubmitter]
	aliceJob := e.submitOK(t, alice)
	bobJob := e.submitOK(t, bob)
	adminJob := e.submitOK(t, e.tokens[RoleAdmin])
	health, err := e.tc.Submit(ctx, Submission{Firmware: strings.NewReader(goodModel), SpecSrc: []byte(bootSpec), Submitter: HealthSubmitter})
	if err != nil {
		t.Fatal(err)
	}
	cancel := func(token, id string) int {
		t.Helper()
		return e.do(t, "POST", "/api/v1/jobs/"+id+"/cancel", token, "", nil).status
	}
	for _, c := range []struct {
		who, token, job string
		want            int
	}{
		{"bob on alice's job", bob, aliceJob.ID, http.StatusForbidden},
		{"bob on the admin's job", bob, adminJob.ID, http.StatusForbidden},
		{"bob on a health check", bob, health.ID, http.StatusForbidden},
		{"a viewer on alice's job", e.tokens[RoleViewer], aliceJob.ID, http.StatusForbidden},
		{"alice on her job", alice, aliceJob.ID, http.StatusOK},
		{"the operator on bob's job", e.tokens[RoleOperator], bobJob.ID, http.StatusOK},
		{"the admin on a health check", e.tokens[RoleAdmin], health.ID, http.StatusOK},
		{"bob on a job that does not exist", bob, "nope", http.StatusNotFound},
	} {
		if got := cancel(c.token, c.job); got != c.want {
			t.Errorf("cancel by %s = %d, want %d", c.who, got, c.want)
		}
	}
	if v, _ := e.tc.Job(ctx, adminJob.ID); v.State != "queued" {
		t.Errorf("admin's job after bob's refused cancel: %s", v.State)
	}
}

// TestWebsocketCloseCodes: events?after=<last seq> of a finished job closes
// with 1000 (not 1013, which makes clients reconnect forever); a client
// message over 4 KiB on /live, /console and /events gets 1009.
func TestWebsocketCloseCodes(t *testing.T) {
	leakCheck(t)
	e := startAPI(t, testFarm, nil)
	e.holdQueue(t)
	j := e.submitOK(t, e.tokens[RoleSubmitter])
	if c := e.do(t, "POST", "/api/v1/jobs/"+j.ID+"/cancel", e.tokens[RoleSubmitter], "", nil); c.status != 200 {
		t.Fatalf("cancel: %d %s", c.status, c.body)
	}
	tok := bearer(e.tokens[RoleViewer])
	// Read the whole stream to learn the last seq.
	conn, _, err := e.wsDial("/api/v1/jobs/"+j.ID+"/events", tok)
	if err != nil {
		t.Fatal(err)
	}
	var last int64
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				t.Errorf("full stream of a finished job: %v, want close 1000", err)
			}
			break
		}
		var ev struct{ Seq int64 }
		json.Unmarshal(msg, &ev)
		last = ev.Seq
	}
	conn.Close()
	resumed, _, err := e.wsDial("/api/v1/jobs/"+j.ID+"/events?after="+itoa(last), tok)
	if err != nil {
		t.Fatal(err)
	}
	_, msg, err := resumed.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure || ce.Text != CloseReasonDone {
		t.Errorf("events?after=%d of a finished job: %q, %v; want close 1000 %q", last, msg, err, CloseReasonDone)
	}
	resumed.Close()

	// Client messages over the limit.
	big := make([]byte, 5000)
	queued := e.submitOK(t, e.tokens[RoleSubmitter]) // sim-b is still in maintenance; sim-a may run it
	for _, path := range []string{"/api/v1/live", "/api/v1/boards/sim-b/console", "/api/v1/jobs/" + queued.ID + "/events"} {
		c, _, err := e.wsDial(path, tok)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if err := c.WriteMessage(websocket.TextMessage, big); err != nil {
			t.Fatalf("%s: write: %v", path, err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			if _, _, err = c.ReadMessage(); err != nil {
				break
			}
		}
		if !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
			t.Errorf("%s after a 5000-byte message: %v, want close 1009", path, err)
		}
		c.Close()
	}
}

// TestHealthChecksAreNotCandidates: a health check fires no webhook, is
// left out of the job list and the live queue by default, and is listed
// with ?kind=health_check (and ?board= for the board's page).
func TestHealthChecksAreNotCandidates(t *testing.T) {
	leakCheck(t)
	farmSrc := strings.Replace(testFarm, `board_type "sim" {}`, `board_type "sim" {
  health_check = "health.hcl"
}`, 1)
	got := make(chan WebhookPayload, 10)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p WebhookPayload
		json.NewDecoder(r.Body).Decode(&p)
		got <- p
	}))
	defer receiver.Close()
	hooks := NewWebhooks([]specs.Webhook{{Name: "ota", URL: receiver.URL, Events: []string{"passed", "failed", "error", "cancelled"}}}, WebhookOptions{})
	hctx, stopHooks := context.WithCancel(context.Background())
	hooksDone := make(chan error)
	go func() { hooksDone <- hooks.Run(hctx) }()
	defer func() { stopHooks(); <-hooksDone }()
	e := startAPI(t, farmSrc, func(c *Config) {
		c.HealthEvery, c.QuarantineCheckEvery = -1, -1
		c.OnJobFinished = append(c.OnJobFinished, func(v JobView) { hooks.JobFinished(v.Job) })
		if err := os.WriteFile(filepath.Join(filepath.Dir(c.Farm.Filename), "health.hcl"), []byte(healthSpec), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	ctx := context.Background()
	// The health check needs firmware on the board: flash it with a job first.
	first := e.submitOK(t, e.tokens[RoleSubmitter])
	if v := waitJob(t, e.tc.Controller, first.ID); v.State != "passed" {
		t.Fatalf("first job: %s (%s)", v.State, v.Reason)
	} else {
		first = *v
	}
	if p := <-got; p.Job != first.ID || p.Event != "passed" {
		t.Fatalf("webhook of the first job: %+v", p)
	}
	h, err := e.tc.SubmitHealthCheck(ctx, first.Board)
	if err != nil {
		t.Fatal(err)
	}
	if hv := waitJob(t, e.tc.Controller, h.ID); !store.Final(hv.State) {
		t.Fatalf("health check: %s", hv.State)
	}
	second := e.submitOK(t, e.tokens[RoleSubmitter])
	waitJob(t, e.tc.Controller, second.ID)
	// Deliveries are in order: the health check's would come before this.
	if p := <-got; p.Job != second.ID {
		t.Errorf("webhook after the health check is for job %s (event %s, firmware %s), want the candidate %s", p.Job, p.Event, p.Firmware.SHA256, second.ID)
	}
	list := func(query string) []string {
		t.Helper()
		a := e.do(t, "GET", "/api/v1/jobs"+query, e.tokens[RoleViewer], "", nil)
		if a.status != 200 {
			t.Fatalf("GET /api/v1/jobs%s: %d %s", query, a.status, a.body)
		}
		var js []struct{ ID, Kind string }
		json.Unmarshal(a.body, &js)
		var ids []string
		for _, j := range js {
			ids = append(ids, j.ID+"/"+j.Kind)
		}
		return ids
	}
	hid := h.ID + "/health_check"
	if ids := list(""); len(ids) != 2 || strings.Contains(strings.Join(ids, " "), hid) {
		t.Errorf("default list = %v, want the 2 candidates only", ids)
	}
	if ids := list("?kind=health_check&board=" + first.Board); len(ids) != 1 || ids[0] != hid {
		t.Errorf("health checks of %s = %v, want [%s]", first.Board, ids, hid)
	}
	if ids := list("?kind=all"); len(ids) != 3 {
		t.Errorf("kind=all = %v, want 3 jobs", ids)
	}
	if a := e.do(t, "GET", "/api/v1/jobs?kind=bogus", e.tokens[RoleViewer], "", nil); a.status != 400 {
		t.Errorf("kind=bogus: %d", a.status)
	}
	// The live queue (the UI's queue page) lists the queued candidate, not
	// the queued health check.
	e.holdQueue(t)
	qh, err := e.tc.SubmitHealthCheck(ctx, first.Board)
	if err != nil {
		t.Fatal(err)
	}
	qc := e.submitOK(t, e.tokens[RoleSubmitter])
	b, err := e.api.liveSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	var snap struct{ Queue []struct{ ID string } }
	json.Unmarshal(b, &snap)
	if len(snap.Queue) != 1 || snap.Queue[0].ID != qc.ID {
		t.Errorf("live queue = %+v, want only the candidate %s (not the health check %s)", snap.Queue, qc.ID, qh.ID)
	}
}
