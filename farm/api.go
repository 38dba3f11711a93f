package farm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// APIOptions configure the HTTP API.
type APIOptions struct {
	// Auth authenticates requests; required.
	Auth *Auth
	// Registry is served at /metrics; nil serves no metrics.
	Registry *prometheus.Registry
	// AllowedOrigins are the origins (scheme://host[:port]) besides the
	// server's own whose pages may open websockets, e.g. a UI served
	// elsewhere. Empty: same origin only.
	AllowedOrigins []string
	Logger         *slog.Logger
	// UI serves the web app (package ui) at "/"; nil: no UI.
	UI http.Handler
	// ShutdownAfter, when set, is waited for (up to 30 s) when Serve's
	// context ends, before the server stops: Controller.Settled, so that
	// the final states of the jobs the shutdown ends reach their watchers.
	ShutdownAfter <-chan struct{}
}

// API serves the controller's HTTP API (docs/api.md): REST handlers, job
// event and board console websockets, /healthz and /metrics. Websocket
// connections are tracked: CloseWebsockets ends them (http.Server.Shutdown
// does not see hijacked connections) and Wait waits for their handlers.
type API struct {
	c    *Controller
	opts APIOptions
	log  *slog.Logger
	mux  *http.ServeMux
	up   websocket.Upgrader

	mu       sync.Mutex
	conns    map[*websocket.Conn]struct{}
	tokens   map[*websocket.Conn]string // the token id of each websocket (revoke.go)
	closing  bool
	handlers sync.WaitGroup
	// closingCh is closed when the websockets are to close: job event
	// streams first send what was already published (shutdown.go).
	closingCh  chan struct{}
	jobStreams sync.WaitGroup
}

// NewAPI returns the API of c.
func NewAPI(c *Controller, opts APIOptions) *API {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	a := &API{c: c, opts: opts, log: opts.Logger, mux: http.NewServeMux(), conns: map[*websocket.Conn]struct{}{}, tokens: map[*websocket.Conn]string{}, closingCh: make(chan struct{})}
	a.up = websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 16 << 10, CheckOrigin: a.checkOrigin,
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			writeJSONError(w, status, "websocket: "+reason.Error(), nil)
		}}
	a.routes()
	return a
}

// Handler is the API's HTTP handler.
func (a *API) Handler() http.Handler { return a.mux }

func (a *API) routes() {
	m := a.mux
	m.HandleFunc("GET /healthz", a.healthz)
	if a.opts.Registry != nil {
		metrics := promhttp.HandlerFor(a.opts.Registry, promhttp.HandlerOpts{
			Registry: a.opts.Registry, ErrorHandling: promhttp.ContinueOnError, EnableOpenMetrics: true})
		m.Handle("GET /metrics", a.handle(RoleViewer, func(w http.ResponseWriter, r *http.Request, _ Principal) error {
			metrics.ServeHTTP(w, r)
			return nil
		}))
	}
	m.Handle("POST /api/v1/login", a.errors(a.login))
	m.Handle("POST /api/v1/logout", a.errors(a.logout))
	m.Handle("GET /api/v1/me", a.handle(RoleViewer, a.me))
	m.Handle("POST /api/v1/jobs", a.handle(RoleSubmitter, a.submit))
	m.Handle("GET /api/v1/jobs", a.handle(RoleViewer, a.listJobs)) // joblist.go
	m.Handle("GET /api/v1/jobs/{id}", a.handle(RoleViewer, a.job))
	m.Handle("GET /api/v1/jobs/{id}/junit.xml", a.handle(RoleViewer, a.junit))
	m.Handle("GET /api/v1/jobs/{id}/console", a.handle(RoleViewer, a.console))
	m.Handle("POST /api/v1/jobs/{id}/cancel", a.handle(RoleSubmitter, a.cancel))
	m.Handle("GET /api/v1/jobs/{id}/events", a.handle(RoleViewer, a.jobEvents))
	m.Handle("GET /api/v1/boards", a.handle(RoleViewer, a.boards))
	m.Handle("GET /api/v1/boards/{name}", a.handle(RoleViewer, a.board))
	m.Handle("POST /api/v1/boards/{name}/maintenance", a.handle(RoleOperator, a.maintenance))
	m.Handle("GET /api/v1/boards/{name}/console", a.handle(RoleViewer, a.boardConsole))
	a.trustRoutes() // api_trust.go
	a.uiRoutes()
	m.Handle("/api/", a.errors(func(w http.ResponseWriter, r *http.Request) error {
		return &httpError{status: http.StatusNotFound, msg: "no such endpoint: " + r.Method + " " + r.URL.Path}
	}))
	if a.opts.UI != nil {
		m.Handle("/", a.opts.UI)
	}
}

// httpError is an error with its HTTP status and the message the client sees.
type httpError struct {
	status int
	msg    string
	err    error // the cause, for the log
}

func (e *httpError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *httpError) Unwrap() error { return e.err }

func badRequest(format string, a ...any) error {
	return &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, a...)}
}

// apiErrorBody is every error answer: {"error": "...", "diagnostics": [...]}.
type apiErrorBody struct {
	Error       string `json:"error"`
	Diagnostics any    `json:"diagnostics,omitempty"`
}

func writeJSONError(w http.ResponseWriter, status int, msg string, diags any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(apiErrorBody{Error: msg, Diagnostics: diags})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err = w.Write(append(b, '\n'))
	return err
}

// statusOf maps an error to its status and the message the client sees.
func statusOf(err error) (int, string, any) {
	var he *httpError
	var rej *RejectedError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &rej):
		var diags any
		if rej.Diagnostics.Len() > 0 {
			diags = rej.Diagnostics
		}
		return rej.Status, rej.Message, diags
	case errors.Is(err, ErrSlowBody) || errors.Is(err, os.ErrDeadlineExceeded):
		return http.StatusRequestTimeout, ErrSlowBody.Error(), nil
	case errors.Is(err, ErrDiskFull) || store.IsFull(err):
		return http.StatusInsufficientStorage, "the data disk of the farm is full: nothing was stored; try again later", nil
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", mbe.Limit), nil
	case errors.As(err, &he):
		return he.status, he.msg, nil
	case errors.Is(err, ErrUnauthenticated):
		return http.StatusUnauthorized, err.Error(), nil
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden, err.Error(), nil
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, err.Error(), nil
	case errors.Is(err, ErrFinished), errors.Is(err, ErrNoResult):
		return http.StatusConflict, err.Error(), nil
	}
	return http.StatusInternalServerError, "internal error (see the server log)", nil
}

// errors adapts a handler that returns an error.
func (a *API) errors(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		a.c.disk.check(err)
		status, msg, diags := statusOf(err)
		if status >= 500 {
			a.log.Error("api", "method", r.Method, "path", r.URL.Path, "err", err)
		} else {
			a.log.Debug("api", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
		}
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hilfarm"`)
		}
		if errors.Is(err, errAnswered) {
			return
		}
		writeJSONError(w, status, msg, diags)
	})
}

// errAnswered: the handler already wrote a response (e.g. the websocket
// upgrade failed and gorilla answered); only log.
var errAnswered = errors.New("response already written")

// handle authenticates the request, checks the role, and for state-changing
// requests with a session cookie the CSRF header.
func (a *API) handle(role string, h func(http.ResponseWriter, *http.Request, Principal) error) http.Handler {
	return a.errors(func(w http.ResponseWriter, r *http.Request) error {
		p, err := a.opts.Auth.Authenticate(r)
		if err != nil {
			return err
		}
		if !p.Can(role) {
			return fmt.Errorf("%w: this needs role %s; %s has role %s", ErrForbidden, role, p.Name, p.Role)
		}
		if p.Cookie && r.Method != http.MethodGet && r.Method != http.MethodHead && !csrfSafe(r) {
			return fmt.Errorf("%w: a request authenticated by the session cookie must send the %s header", ErrForbidden, CSRFHeader)
		}
		return h(w, withPrincipal(r, p), p)
	})
}

func (a *API) audit(ctx context.Context, p Principal, action, target, detail string) {
	err := a.c.db.Audit(ctx, store.AuditRecord{At: a.c.now(), Actor: p.Actor(), Action: action, Target: target, Detail: detail})
	if err != nil {
		a.log.Error("audit", "action", action, "target", target, "err", err)
	}
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	states := map[string]int{}
	for _, b := range a.c.Boards() {
		states[b.State]++
	}
	out := map[string]any{"status": "ok", "boards": states}
	if a.c.disk.Full() {
		out["disk_full"] = true
	}
	_ = writeJSON(w, http.StatusOK, out)
}

// ---------------------------------------------------------------- login

func (a *API) login(w http.ResponseWriter, r *http.Request) error {
	// A JSON body cannot be sent cross-site without a CORS preflight, so a
	// foreign page cannot log a browser in with the attacker's token.
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return badRequest("login wants a JSON body {\"token\": \"hf_...\"}")
	}
	var in struct {
		Token string `json:"token"`
	}
	if err := decodeJSON(http.MaxBytesReader(w, r.Body, 4<<10), &in, false); err != nil {
		return bodyError(err, "login: bad JSON")
	}
	p, err := a.opts.Auth.Verify(r.Context(), in.Token)
	if err != nil {
		return err
	}
	http.SetCookie(w, sessionCookie(r, in.Token, 0))
	return writeJSON(w, http.StatusOK, map[string]string{"name": p.Name, "role": p.Role, "csrf_header": CSRFHeader})
}

func (a *API) logout(w http.ResponseWriter, r *http.Request) error {
	http.SetCookie(w, sessionCookie(r, "", -1))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) me(w http.ResponseWriter, r *http.Request, p Principal) error {
	// commit_url (farm.hcl) lets the UI link a job's commit label.
	return writeJSON(w, http.StatusOK, map[string]any{"name": p.Name, "role": p.Role, "token": p.TokenID, "commit_url": a.c.cfg.Farm.CommitURL})
}

// ---------------------------------------------------------------- jobs

// SubmitOptions is the JSON "options" part of POST /api/v1/jobs.
type SubmitOptions struct {
	Vars            map[string]string `json:"vars,omitempty"`
	Type            string            `json:"type,omitempty"`
	Tags            map[string]string `json:"tags,omitempty"`
	Priority        int               `json:"priority,omitempty"`
	Labels          map[string]string `json:"labels,omitempty"`
	FirmwareVersion string            `json:"firmware_version,omitempty"`
}

const (
	maxSpecBytes    = 1 << 20
	maxOptionsBytes = 64 << 10
)

func (a *API) maxUpload() int64 {
	if n := a.c.cfg.Farm.MaxUploadBytes; n > 0 {
		return n
	}
	return 64 << 20
}

// submit reads a multipart body: options (JSON), spec (file), firmware
// (file), in any order. The firmware is spooled to a temporary file, never
// held in memory. Nothing is stored and no job exists until the whole body
// has been read and checked: any 4xx leaves nothing behind. With an
// Idempotency-Key header, the same key from the same token within 24 h
// answers the job it made (200) instead of making another.
func (a *API) submit(w http.ResponseWriter, r *http.Request, p Principal) error {
	if a.c.disk.Full() {
		return ErrDiskFull
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return badRequest("a submission is multipart/form-data with the parts options (JSON), spec and firmware")
	}
	key, err := idempotencyKey(r, p)
	if err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, uploadBody(w, r), a.maxUpload()+maxSpecBytes+maxOptionsBytes+MaxSignatureBytes+MaxSBOMBytes+64<<10)
	in, err := a.readSubmission(r, p.Role)
	if in != nil && in.spool != nil {
		defer func() {
			in.spool.Close()
			os.Remove(in.spool.Name())
		}()
	}
	if err != nil {
		return err
	}
	sub := Submission{
		Firmware: in.spool, FirmwareName: in.fwName, FirmwareVersion: in.opts.FirmwareVersion,
		SpecSrc: in.spec, SpecFilename: in.specName, Vars: in.opts.Vars, Type: in.opts.Type, Tags: in.opts.Tags,
		Priority: in.opts.Priority, Labels: in.opts.Labels, Submitter: p.Actor(),
		Signature: in.prov.signature, SBOM: in.prov.sbom,
	}
	var job *JobView
	status := http.StatusCreated
	if key != nil {
		var replayed bool
		job, replayed, err = a.c.SubmitIdempotent(r.Context(), sub, *key)
		if replayed {
			status = http.StatusOK
			w.Header().Set("Idempotent-Replayed", "true")
		}
	} else {
		job, err = a.c.Submit(r.Context(), sub)
	}
	if err != nil {
		return err
	}
	if status == http.StatusCreated {
		a.audit(r.Context(), p, "submit", job.ID, fmt.Sprintf("spec %s, firmware %s %s sha256:%s", job.SpecName, job.Firmware.Name, job.Firmware.Version, job.Firmware.SHA256))
	}
	w.Header().Set("Location", "/api/v1/jobs/"+job.ID)
	return writeJSON(w, status, job)
}

// idempotencyKey reads the Idempotency-Key header: nil without one.
func idempotencyKey(r *http.Request, p Principal) (*store.IdempotencyKey, error) {
	k := r.Header.Get("Idempotency-Key")
	if k == "" {
		return nil, nil
	}
	if len(k) > MaxIdempotencyKey {
		return nil, badRequest("Idempotency-Key is longer than %d bytes", MaxIdempotencyKey)
	}
	for _, c := range []byte(k) {
		if c < 0x21 || c > 0x7e {
			return nil, badRequest("Idempotency-Key must be printable ASCII without spaces")
		}
	}
	actor := p.TokenID
	if actor == "" {
		actor = p.Name
	}
	return &store.IdempotencyKey{Actor: actor, Key: k}, nil
}

// submissionBody is a submission read whole from its multipart body.
type submissionBody struct {
	opts     SubmitOptions
	spec     []byte
	specName string
	spool    *os.File // the firmware, rewound
	fwName   string
	prov     provenanceParts // signature, sbom (api_trust.go)
}

// bodyReadError marks an error reading the request body (as opposed to
// writing the spool file): a body cut short is the client's (400).
type bodyReadError struct{ err error }

func (e *bodyReadError) Error() string { return e.err.Error() }
func (e *bodyReadError) Unwrap() error { return e.err }

type bodyReader struct{ r io.Reader }

func (b bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = &bodyReadError{err}
	}
	return n, err
}

// readSubmission reads and checks the whole multipart body. The returned
// body's spool, when set, is the caller's to remove (also on error).
func (a *API) readSubmission(r *http.Request, role string) (*submissionBody, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, badRequest("bad multipart body: %v", err)
	}
	in := &submissionBody{}
	var haveOpts, haveSpec bool
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return in, bodyError(err, "bad multipart body")
		}
		switch part.FormName() {
		case "options":
			if haveOpts {
				return in, badRequest("two options parts")
			}
			b, err := io.ReadAll(io.LimitReader(part, maxOptionsBytes+1))
			if err != nil {
				return in, bodyError(err, "options")
			}
			if len(b) > maxOptionsBytes {
				return in, &httpError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("options larger than %d bytes", maxOptionsBytes)}
			}
			if err := decodeJSON(bytes.NewReader(b), &in.opts, true); err != nil {
				return in, badRequest("options: bad JSON: %v", err)
			}
			if err := checkSubmitOptions(&in.opts, role); err != nil {
				return in, err
			}
			haveOpts = true
		case "spec":
			if haveSpec {
				return in, badRequest("two spec parts")
			}
			b, err := io.ReadAll(io.LimitReader(part, maxSpecBytes+1))
			if err != nil {
				return in, bodyError(err, "spec")
			}
			if len(b) > maxSpecBytes {
				return in, &httpError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("spec larger than %d bytes", maxSpecBytes)}
			}
			name, err := partFileName(part, "spec")
			if err != nil {
				return in, err
			}
			in.spec, in.specName, haveSpec = b, name, true
		case "firmware":
			if in.spool != nil {
				return in, badRequest("two firmware parts")
			}
			if in.fwName, err = partFileName(part, "firmware"); err != nil {
				return in, err
			}
			if in.fwName == "" {
				in.fwName = "firmware"
			}
			in.spool, err = os.CreateTemp(a.c.fwDir, ".spool-*")
			if err != nil {
				return in, fmt.Errorf("spooling firmware: %w", err)
			}
			n, err := io.Copy(in.spool, bodyReader{io.LimitReader(part, a.maxUpload()+1)})
			if err != nil {
				var bre *bodyReadError
				if errors.As(err, &bre) {
					return in, bodyError(bre.err, "firmware")
				}
				return in, fmt.Errorf("spooling firmware: %w", err)
			}
			if n > a.maxUpload() {
				return in, &RejectedError{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("firmware is larger than the limit of %d bytes", a.maxUpload())}
			}
		case "signature", "sbom":
			if in.spool != nil {
				return in, badRequest("the %s part must come before the firmware part", part.FormName())
			}
			if err := in.prov.read(part); err != nil {
				return in, err
			}
		default:
			return in, badRequest("unknown part %q (want options, spec, signature, sbom, firmware)", part.FormName())
		}
	}
	if !haveSpec {
		return in, badRequest("no spec part")
	}
	if in.spool == nil {
		return in, badRequest("no firmware part")
	}
	if _, err := in.spool.Seek(0, io.SeekStart); err != nil {
		return in, err
	}
	return in, nil
}

func (a *API) job(w http.ResponseWriter, r *http.Request, _ Principal) error {
	j, err := a.c.Job(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, j)
}

func (a *API) junit(w http.ResponseWriter, r *http.Request, _ Principal) error {
	var buf bytes.Buffer
	if err := a.c.WriteJUnit(r.Context(), r.PathValue("id"), &buf); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	_, err := buf.WriteTo(w)
	return err
}

// firstWrite sets the headers on the first write, so that an error before
// any output still becomes a JSON error answer.
type firstWrite struct {
	w     http.ResponseWriter
	ctype string
	wrote bool
}

func (f *firstWrite) Write(p []byte) (int, error) {
	if !f.wrote {
		f.wrote = true
		f.w.Header().Set("Content-Type", f.ctype)
		f.w.Header().Set("X-Content-Type-Options", "nosniff")
	}
	return f.w.Write(p)
}

func (a *API) console(w http.ResponseWriter, r *http.Request, _ Principal) error {
	fw := &firstWrite{w: w, ctype: "text/plain; charset=utf-8"}
	err := a.c.WriteJobConsole(r.Context(), r.PathValue("id"), fw)
	if err != nil && fw.wrote {
		a.log.Warn("console download cut short", "job", r.PathValue("id"), "err", err)
		return nil
	}
	if err == nil && !fw.wrote {
		w.Header().Set("Content-Type", fw.ctype)
	}
	return err
}

func (a *API) cancel(w http.ResponseWriter, r *http.Request, p Principal) error {
	id := r.PathValue("id")
	ctx := r.Context()
	if a.c.disk.Full() { // a job whose final state waits for space: answer, don't hang
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	if err := a.mayCancel(ctx, p, id); err != nil {
		return err
	}
	j, err := a.c.Cancel(ctx, id, p.Actor())
	if a.c.disk.check(err) && a.c.disk.freeReserve() { // a cancel is worth the reserve
		j, err = a.c.Cancel(ctx, id, p.Actor())
	}
	if errors.Is(err, context.DeadlineExceeded) && a.c.disk.Full() {
		return fmt.Errorf("cancel of job %s: its final state waits for disk space: %w", id, ErrDiskFull)
	}
	if err != nil {
		return err
	}
	a.audit(r.Context(), p, "cancel", id, "")
	return writeJSON(w, http.StatusOK, j)
}

// ---------------------------------------------------------------- boards

func (a *API) boards(w http.ResponseWriter, r *http.Request, _ Principal) error {
	return writeJSON(w, http.StatusOK, append(a.c.Boards(), a.c.hubBoards()...)) // hubjobs.go: racks' boards
}

func (a *API) board(w http.ResponseWriter, r *http.Request, _ Principal) error {
	b, err := a.c.Board(r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, b)
}

func (a *API) maintenance(w http.ResponseWriter, r *http.Request, p Principal) error {
	var in struct {
		On     *bool  `json:"on"`
		Reason string `json:"reason"`
	}
	if err := decodeJSON(http.MaxBytesReader(w, r.Body, 16<<10), &in, true); err != nil {
		return bodyError(err, "maintenance wants JSON {\"on\": true|false, \"reason\": \"...\"}")
	}
	if in.On == nil {
		return badRequest("maintenance wants JSON {\"on\": true|false, \"reason\": \"...\"}")
	}
	if err := checkText("reason", in.Reason, MaxTextBytes); err != nil {
		return err
	}
	name := r.PathValue("name")
	// SetMaintenance writes the audit record.
	if err := a.c.SetMaintenance(r.Context(), name, *in.On, in.Reason, p.Actor()); err != nil {
		return err
	}
	b, err := a.c.Board(name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, b)
}
