package farm

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/runner"
	"github.com/hilfarm/hilfarm/specs"
	"go.uber.org/goleak"
)

// webhookTestJob is a final job with a runner result holding a measurement.
func webhookTestJob(t *testing.T, state string) store.Job {
	t.Helper()
	lo, hi := 15.0, 45.0
	res := runner.Result{Spec: "boot-smoke", Outcome: runner.Outcome(state), Tests: []runner.TestResult{
		{Name: "shell answers", Outcome: runner.Passed, Attempts: []runner.Attempt{{Number: 1, Outcome: runner.Passed}}},
		{Name: "temperature", Outcome: runner.Failed, Kind: runner.KindLimit, Message: "temp_c 87 > 45",
			Attempts: []runner.Attempt{{Number: 1, Outcome: runner.Failed, Measurements: []runner.Measurement{
				{Name: "temp_c", Value: 87, Unit: "degC", Min: &lo, Max: &hi, Verdict: runner.VerdictFail},
			}}}},
	}}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	return store.Job{ID: "j1", SpecName: "boot-smoke", State: state, Board: "sim-01", Attempts: 1,
		Firmware: store.Firmware{SHA256: "ab12", Name: "fw.hcl", Version: "1.2.0-rc1"},
		Labels:   map[string]string{"pipeline": "42"}, Created: at, Ended: at.Add(time.Second), Result: b}
}

func TestWebhookRetriesUntilDeliveredAndSigns(t *testing.T) {
	defer goleak.VerifyNone(t)
	const secret = "s3cret"
	var mu sync.Mutex
	var calls int
	got := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !VerifySignature(secret, body, r.Header.Get(SignatureHeader)) {
			t.Errorf("bad signature %q", r.Header.Get(SignatureHeader))
		}
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n < 3 { // fail twice, then accept
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		got <- body
	}))
	defer srv.Close()
	client := srv.Client()
	defer client.CloseIdleConnections()

	w := NewWebhooks([]specs.Webhook{{Name: "ci", URL: srv.URL + "/hook", Secret: secret, Events: []string{"failed"}}},
		WebhookOptions{Client: client, Backoff: time.Millisecond, MaxAttempts: 5, BaseURL: "http://farm:8080/"})
	done := make(chan bool, 1)
	w.observer = func(_ string, ok bool) { done <- ok }
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { w.Run(ctx); close(stopped) }()
	defer func() { cancel(); <-stopped }()

	w.JobFinished(webhookTestJob(t, "passed")) // not subscribed: never sent
	w.JobFinished(webhookTestJob(t, "failed"))
	if ok := <-done; !ok {
		t.Fatal("delivery failed, want delivered on the third try")
	}
	body := <-got
	var p WebhookPayload
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Job != "j1" || p.State != "failed" || p.Firmware.SHA256 != "ab12" || p.Firmware.Version != "1.2.0-rc1" || p.Board != "sim-01" {
		t.Errorf("payload = %+v", p)
	}
	if len(p.Tests) != 2 || p.Tests[1].Outcome != runner.Failed || p.Tests[1].Kind != runner.KindLimit {
		t.Errorf("tests = %+v", p.Tests)
	}
	if len(p.Measurements) != 1 || p.Measurements[0].Name != "temp_c" || p.Measurements[0].Value != 87 {
		t.Errorf("measurements = %+v", p.Measurements)
	}
	if p.Links.JUnit != "http://farm:8080/api/v1/jobs/j1/junit.xml" {
		t.Errorf("junit link = %q", p.Links.JUnit)
	}
	if s := w.Stats(); s.Delivered != 1 || s.Retries != 2 || s.Failed != 0 {
		t.Errorf("stats = %+v, want 1 delivered after 2 retries", s)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 3 {
		t.Errorf("receiver called %d times, want 3", calls)
	}
}

func TestWebhookGivesUpAndNeverBlocks(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	defer srv.Close()
	client := srv.Client()
	defer client.CloseIdleConnections()

	w := NewWebhooks([]specs.Webhook{{Name: "down", URL: srv.URL, Events: specs.WebhookEvents}},
		WebhookOptions{Client: client, Backoff: time.Millisecond, MaxAttempts: 3, QueueSize: 1})
	// Before Run: the queue holds one; the rest are dropped, and JobFinished returns at once.
	for range 5 {
		w.JobFinished(webhookTestJob(t, "error"))
	}
	if s := w.Stats(); s.Dropped != 4 {
		t.Fatalf("dropped = %d, want 4", s.Dropped)
	}
	done := make(chan bool, 1)
	w.observer = func(_ string, ok bool) { done <- ok }
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { w.Run(ctx); close(stopped) }()
	if ok := <-done; ok {
		t.Fatal("delivered to a receiver that always fails")
	}
	cancel()
	<-stopped
	if s := w.Stats(); s.Failed != 1 || s.Retries != 2 {
		t.Errorf("stats = %+v, want 1 failed after 2 retries", s)
	}
}

func TestSignature(t *testing.T) {
	defer goleak.VerifyNone(t)
	// echo -n '{"a":1}' | openssl dgst -sha256 -hmac key
	const want = "sha256=88a67f24bbcdaed0e6c997404bb79a743baf44c6bab2f4c27328e3009d22e342"
	got := Sign("key", []byte(`{"a":1}`))
	if got != want {
		t.Errorf("Sign = %q, want %q (openssl)", got, want)
	}
	if !VerifySignature("key", []byte(`{"a":1}`), got) || VerifySignature("other", []byte(`{"a":1}`), got) {
		t.Errorf("VerifySignature does not tell keys apart")
	}
}
