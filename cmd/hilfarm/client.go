package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/specs"
)

// client talks to a hilfarm server's API (docs/api.md).
type client struct {
	base  *url.URL
	token string
	http  *http.Client
	// dialer dials websockets; its handshake timeout bounds a connect.
	dialer *websocket.Dialer
}

// newClient returns a client for the server at rawURL (http or https).
func newClient(rawURL, token string) (*client, error) {
	if rawURL == "" {
		return nil, usageError("--server is required (or set HILFARM_SERVER)")
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError("--server %q: want an http:// or https:// URL", rawURL)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return &client{
		base:   u,
		token:  token,
		http:   &http.Client{}, // no overall timeout: uploads and downloads are bounded by ctx
		dialer: &websocket.Dialer{HandshakeTimeout: 15 * time.Second, Proxy: http.ProxyFromEnvironment},
	}, nil
}

// clientFlags are the flags every client command shares.
type clientFlags struct {
	server, token *string
}

func addClientFlags(fs interface {
	String(name, value, usage string) *string
}) clientFlags {
	return clientFlags{
		server: fs.String("server", os.Getenv("HILFARM_SERVER"), "hilfarm server `URL` (default $HILFARM_SERVER)"),
		token:  fs.String("token", "", "API `token` (default $HILFARM_TOKEN)"),
	}
}

func (f clientFlags) client() (*client, error) {
	tok := *f.token
	if tok == "" {
		tok = os.Getenv("HILFARM_TOKEN")
	}
	return newClient(*f.server, tok)
}

// apiError is an error answer of the API.
type apiError struct {
	Status      int
	Message     string             `json:"error"`
	Diagnostics []specs.Diagnostic `json:"diagnostics,omitempty"`
	// NoToken: the request carried no token (the hint names --token).
	NoToken bool `json:"-"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
}

// url returns the absolute URL of an API path.
func (c *client) url(path string) string {
	u := *c.base
	u.Path += path
	return u.String()
}

func (c *client) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	u := *c.base
	p, q, _ := strings.Cut(path, "?")
	u.Path += p
	u.RawQuery = q
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// send performs req and returns the response if it is 2xx, else an *apiError.
func (c *client) send(req *http.Request) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	ae := &apiError{Status: resp.StatusCode, NoToken: req.Header.Get("Authorization") == ""}
	if json.Unmarshal(body, ae) != nil || ae.Message == "" {
		ae.Message = strings.TrimSpace(string(body))
		if ae.Message == "" {
			ae.Message = resp.Status
		}
	}
	return nil, ae
}

// call sends in (if not nil) as JSON and decodes the JSON answer into out (if not nil).
func (c *client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: bad answer: %w", method, path, err)
	}
	return nil
}

// download GETs path into w.
func (c *client) download(ctx context.Context, path string, w io.Writer) error {
	req, err := c.newRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

// jobJSON is a job as the API returns it (farm.JobView).
type jobJSON struct {
	store.Job
	// Attempts shadows store.Job's count, as in farm.JobView.
	Attempts []store.Attempt `json:"attempts"`
	Position int             `json:"position,omitempty"`
	ETA      time.Time       `json:"eta,omitzero"`
}

// submitOptions is the JSON "options" part of a submission.
type submitOptions struct {
	Vars            map[string]string `json:"vars,omitempty"`
	Type            string            `json:"type,omitempty"`
	Tags            map[string]string `json:"tags,omitempty"`
	Priority        int               `json:"priority,omitempty"`
	Labels          map[string]string `json:"labels,omitempty"`
	FirmwareVersion string            `json:"firmware_version,omitempty"`
	// provenance files sent as their own parts before the firmware (submit_trust.go)
	signature, sbom string
}

// submit uploads a firmware file and a spec file. The firmware is streamed
// from disk through a pipe, never held in memory whole.
func (c *client) submit(ctx context.Context, firmwarePath, specPath string, opts submitOptions, idempotencyKey string) (*jobJSON, error) {
	specSrc, err := os.ReadFile(specPath)
	if err != nil {
		return nil, err
	}
	fw, err := os.Open(firmwarePath)
	if err != nil {
		return nil, err
	}
	defer fw.Close()
	prov, err := readProvenance(opts)
	if err != nil {
		return nil, err
	}
	optJSON, err := json.Marshal(opts)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			part, err := mw.CreateFormField("options")
			if err != nil {
				return err
			}
			if _, err := part.Write(optJSON); err != nil {
				return err
			}
			part, err = mw.CreateFormFile("spec", filepath.Base(specPath))
			if err != nil {
				return err
			}
			if _, err := part.Write(specSrc); err != nil {
				return err
			}
			if err := prov.write(mw); err != nil {
				return err
			}
			part, err = mw.CreateFormFile("firmware", filepath.Base(firmwarePath))
			if err != nil {
				return err
			}
			if _, err := io.Copy(part, fw); err != nil {
				return fmt.Errorf("firmware %s: %w", firmwarePath, err)
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	req, err := c.newRequest(ctx, http.MethodPost, "/api/v1/jobs", pr)
	if err != nil {
		pr.Close()
		return nil, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	resp, err := c.send(req)
	pr.Close() // unblocks the writer if the server answered early
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var j jobJSON
	if err := json.NewDecoder(resp.Body).Decode(&j); err != nil {
		return nil, fmt.Errorf("submit: bad answer: %w", err)
	}
	return &j, nil
}

// stateEvent is the data of a controller "state" event.
type stateEvent struct {
	State   string `json:"state"`
	Board   string `json:"board,omitempty"`
	Attempt int    `json:"attempt,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// handlerError is an error of follow's callback: it ends follow.
type handlerError struct{ err error }

func (e *handlerError) Error() string { return e.err.Error() }
func (e *handlerError) Unwrap() error { return e.err }

// errStreamEnded: the server closed a job's event stream normally before its
// final state (it should not): the caller asks the job's state instead.
var errStreamEnded = errors.New("event stream ended")

// follow streams a job's events to fn from seq after on, reconnecting with
// ?after= when the connection drops, until the job's final state event. It
// returns that final state. Without console, the server leaves out the
// console events (a flood costs it nothing to send).
func (c *client) follow(ctx context.Context, jobID string, after int64, console bool, fn func(store.Event) error) (string, error) {
	// Give up after this long without a connection (a controller restart
	// takes seconds; a farm that stays away is an error).
	const patience = 2 * time.Minute
	failures := 0
	lastProgress := time.Now()
	backoff := 100 * time.Millisecond
	for {
		state, last, connected, err := c.followOnce(ctx, jobID, after, console, fn)
		if err == nil {
			return state, nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		var ae *apiError
		var he *handlerError
		if errors.As(err, &ae) && ae.Status/100 == 4 || errors.As(err, &he) {
			return "", err // 401, 403, 404, or our own output failed: reconnecting will not help
		}
		if connected {
			failures, backoff = 0, 100*time.Millisecond
			lastProgress = time.Now()
		}
		after = max(after, last)
		if errors.Is(err, errStreamEnded) {
			// The stream closed cleanly without a final state: ask the job.
			var j jobJSON
			if jerr := c.call(ctx, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(jobID), nil, &j); jerr == nil && store.Final(j.State) {
				return j.State, nil
			}
		}
		failures++
		if time.Since(lastProgress) > patience {
			return "", fmt.Errorf("job %s events: giving up after %d attempts: %w", jobID, failures, err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", ctx.Err()
		case <-t.C:
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// followOnce reads one websocket connection of a job's events. It returns
// the final state, or the last seq seen, whether it had connected, and why
// the connection ended.
func (c *client) followOnce(ctx context.Context, jobID string, after int64, console bool, fn func(store.Event) error) (state string, last int64, connected bool, err error) {
	u := *c.base
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	u.Path += "/api/v1/jobs/" + url.PathEscape(jobID) + "/events"
	u.RawQuery = "after=" + strconv.FormatInt(after, 10)
	if !console {
		u.RawQuery += "&console=false"
	}
	h := http.Header{}
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
	conn, resp, err := c.dialer.DialContext(ctx, u.String(), h)
	if err != nil {
		if resp != nil && resp.StatusCode/100 == 4 {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			ae := &apiError{Status: resp.StatusCode, NoToken: c.token == ""}
			if json.Unmarshal(body, ae) != nil || ae.Message == "" {
				ae.Message = resp.Status
			}
			return "", after, false, ae
		}
		return "", after, false, fmt.Errorf("job %s events: %w", jobID, err)
	}
	defer conn.Close()
	// Closing the connection unblocks the read when ctx ends.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	conn.SetReadLimit(16 << 20)
	last = after
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) {
				return "", last, true, fmt.Errorf("%w: %v", errStreamEnded, err)
			}
			return "", last, true, fmt.Errorf("job %s events: %w", jobID, err)
		}
		var ev store.Event
		if err := json.Unmarshal(msg, &ev); err != nil {
			return "", last, true, fmt.Errorf("job %s events: bad message: %w", jobID, err)
		}
		if ev.Seq <= last {
			continue // a duplicate after a resume
		}
		last = ev.Seq
		if err := fn(ev); err != nil {
			return "", last, true, &handlerError{err}
		}
		if ev.Type == "state" {
			var s stateEvent
			if json.Unmarshal(ev.Data, &s) == nil && store.Final(s.State) {
				conn.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
				return s.State, last, true, nil
			}
		}
	}
}
