package farm

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/runner"
	"github.com/hilfarm/hilfarm/specs"
)

// SignatureHeader carries the HMAC-SHA256 of a webhook body, keyed with the
// webhook's secret: "sha256=" and the hex digest (as GitHub does it).
const SignatureHeader = "X-Hilfarm-Signature"

// Sign returns the SignatureHeader value of body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature reports whether header is body's signature under secret
// (compared in constant time). Receivers use it; so do the tests.
func VerifySignature(secret string, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}

// WebhookPayload is the JSON body POSTed to a webhook when a job ends.
// Fields are only ever added.
type WebhookPayload struct {
	Event    string            `json:"event"` // the job's final state: passed, failed, error, cancelled
	Job      string            `json:"job"`
	State    string            `json:"state"`
	Reason   string            `json:"reason,omitempty"`
	Spec     string            `json:"spec"`
	Firmware store.Firmware    `json:"firmware"`
	Board    string            `json:"board,omitempty"`
	Attempts int               `json:"attempts"`
	Labels   map[string]string `json:"labels,omitempty"`
	Vars     map[string]string `json:"vars,omitempty"`
	Priority int               `json:"priority"`
	Created  time.Time         `json:"created"`
	Started  time.Time         `json:"started,omitzero"`
	Ended    time.Time         `json:"ended,omitzero"`
	Tests    []WebhookTest     `json:"tests"`
	// Measurements are every measurement of the deciding attempt, in order.
	Measurements []runner.Measurement `json:"measurements"`
	Links        WebhookLinks         `json:"links"`
}

// WebhookTest is one test's verdict in a WebhookPayload.
type WebhookTest struct {
	Name    string         `json:"name"`
	Outcome runner.Outcome `json:"outcome"`
	Kind    string         `json:"kind,omitempty"`
	Message string         `json:"message,omitempty"`
}

// WebhookLinks point back at the farm (absolute when the base URL is known).
type WebhookLinks struct {
	Job     string `json:"job"`
	JUnit   string `json:"junit"`
	Console string `json:"console"`
	Events  string `json:"events"`
	Verdict string `json:"verdict"` // the signed verdict statement (verify-verdict)
}

// NewWebhookPayload builds the payload of a final job. baseURL is the
// farm's external URL (e.g. "http://pi.lab:8080"); empty gives relative links.
func NewWebhookPayload(j store.Job, baseURL string) WebhookPayload {
	base := strings.TrimRight(baseURL, "/") + "/api/v1/jobs/" + j.ID
	p := WebhookPayload{
		Event: j.State, Job: j.ID, State: j.State, Reason: j.Reason, Spec: j.SpecName,
		Firmware: j.Firmware, Board: j.Board, Attempts: j.Attempts, Labels: j.Labels,
		Vars: j.Vars, Priority: j.Priority, Created: j.Created, Started: j.Started, Ended: j.Ended,
		Tests: []WebhookTest{}, Measurements: []runner.Measurement{},
		Links: WebhookLinks{Job: base, JUnit: base + "/junit.xml", Console: base + "/console", Events: base + "/events", Verdict: base + "/verdict"},
	}
	var res runner.Result
	if len(j.Result) > 0 && json.Unmarshal(j.Result, &res) == nil {
		for _, t := range res.Tests {
			p.Tests = append(p.Tests, WebhookTest{Name: t.Name, Outcome: t.Outcome, Kind: t.Kind, Message: t.Message})
			if n := len(t.Attempts); n > 0 { // the deciding attempt is the last
				p.Measurements = append(p.Measurements, t.Attempts[n-1].Measurements...)
			}
		}
	}
	return p
}

// WebhookOptions tune the webhook dispatcher. Zero values take the defaults.
type WebhookOptions struct {
	Client      *http.Client  // default: 10 s timeout
	QueueSize   int           // deliveries waiting per webhook; default 256 (more are dropped and logged)
	MaxAttempts int           // per delivery; default 6
	Backoff     time.Duration // first retry delay, doubled each time; default 1 s
	MaxBackoff  time.Duration // default 5 min
	BaseURL     string        // the farm's external URL for links
	Logger      *slog.Logger
}

func (o *WebhookOptions) defaults() {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 256
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 6
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Webhooks delivers job summaries to the farm's webhooks. Each webhook has
// its own bounded queue and delivery goroutine, so a slow or failing
// receiver delays only itself; Notify never blocks. Run owns the goroutines.
type Webhooks struct {
	opts  WebhookOptions
	hooks []*hookQueue

	mu       sync.Mutex
	stats    WebhookStats
	observer func(hook string, ok bool) // tests and metrics: called after each delivery's last try
}

type hookQueue struct {
	hook specs.Webhook
	ch   chan []byte
}

// WebhookStats counts deliveries.
type WebhookStats struct {
	Delivered, Failed, Dropped, Retries int64
}

// NewWebhooks returns a dispatcher for hooks. Call Run to deliver.
func NewWebhooks(hooks []specs.Webhook, opts WebhookOptions) *Webhooks {
	opts.defaults()
	w := &Webhooks{opts: opts}
	for _, h := range hooks {
		w.hooks = append(w.hooks, &hookQueue{hook: h, ch: make(chan []byte, opts.QueueSize)})
	}
	return w
}

// Stats returns the delivery counters.
func (w *Webhooks) Stats() WebhookStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// JobFinished queues j's summary for every webhook that subscribes to its
// final state; health-check jobs fire none. It never blocks: a full queue drops the delivery and logs it.
func (w *Webhooks) JobFinished(j store.Job) {
	// Health checks are not candidates: a pipeline promoting candidates on
	// "passed" must never see one (docs/api.md, Webhooks).
	if len(w.hooks) == 0 || j.Submitter == HealthSubmitter {
		return
	}
	p := NewWebhookPayload(j, w.opts.BaseURL)
	body, err := json.Marshal(p)
	if err != nil {
		w.opts.Logger.Error("webhook payload", "job", j.ID, "err", err)
		return
	}
	for _, q := range w.hooks {
		if !slices.Contains(q.hook.Events, p.Event) {
			continue
		}
		select {
		case q.ch <- body:
		default:
			w.count(func(s *WebhookStats) { s.Dropped++ })
			w.opts.Logger.Error("webhook queue full: delivery dropped", "webhook", q.hook.Name, "job", j.ID)
		}
	}
}

func (w *Webhooks) count(f func(*WebhookStats)) {
	w.mu.Lock()
	f(&w.stats)
	w.mu.Unlock()
}

// Run delivers queued summaries until ctx is done, then returns once every
// delivery goroutine has stopped (deliveries still queued are dropped). It
// runs until ctx is done even when there are no webhooks.
func (w *Webhooks) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, q := range w.hooks {
		wg.Go(func() { w.deliverLoop(ctx, q) })
	}
	<-ctx.Done()
	wg.Wait()
	return nil
}

func (w *Webhooks) deliverLoop(ctx context.Context, q *hookQueue) {
	for {
		select {
		case <-ctx.Done():
			return
		case body := <-q.ch:
			ok := w.deliver(ctx, q.hook, body)
			w.mu.Lock()
			if ok {
				w.stats.Delivered++
			} else {
				w.stats.Failed++
			}
			obs := w.observer
			w.mu.Unlock()
			if obs != nil {
				obs(q.hook.Name, ok)
			}
		}
	}
}

// deliver POSTs body with retries and exponential backoff; it reports
// whether the receiver accepted it (2xx).
func (w *Webhooks) deliver(ctx context.Context, h specs.Webhook, body []byte) bool {
	log := w.opts.Logger.With("webhook", h.Name, "url", h.URL)
	delay := w.opts.Backoff
	for attempt := 1; ; attempt++ {
		err := w.post(ctx, h, body)
		if err == nil {
			if attempt > 1 {
				log.Info("webhook delivered", "attempt", attempt)
			}
			return true
		}
		if attempt >= w.opts.MaxAttempts || ctx.Err() != nil {
			log.Error("webhook failed; giving up", "attempts", attempt, "err", err)
			return false
		}
		log.Warn("webhook failed; will retry", "attempt", attempt, "retry_in", delay, "err", err)
		w.count(func(s *WebhookStats) { s.Retries++ })
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			log.Error("webhook not delivered: shutting down", "attempts", attempt)
			return false
		case <-t.C:
		}
		delay = min(delay*2, w.opts.MaxBackoff)
	}
}

func (w *Webhooks) post(ctx context.Context, h specs.Webhook, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hilfarm-webhook")
	if h.Secret != "" {
		req.Header.Set(SignatureHeader, Sign(h.Secret, body))
	}
	resp, err := w.opts.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}
