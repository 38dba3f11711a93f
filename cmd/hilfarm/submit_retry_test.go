package main

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/hilfarm/hilfarm/farm"
)

// TestSubmitRetriesWithTheSameKey: the farm stores the first submission
// but its answer is lost (the connection drops, as when the server is
// killed after the commit); submit retries with the same Idempotency-Key
// and gets the same job: one job runs, not two.
func TestSubmitRetriesWithTheSameKey(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	s := startCLIServer(t)
	target, _ := url.Parse(s.url)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var posts atomic.Int32
	var keys []string
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/api/v1/jobs" {
			keys = append(keys, r.Header.Get("Idempotency-Key"))
			if posts.Add(1) == 1 {
				// Forward it whole, then lose the answer.
				proxy.ServeHTTP(httptest.NewRecorder(), r)
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					conn.Close()
				}
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	code, out, errs := runCLI("submit", "--server", front.URL, "--token", s.tokens[farm.RoleSubmitter],
		"--firmware", examples+"/firmware/sim-good.hcl", "--spec", examples+"/specs/boot-smoke.hcl")
	if code != 0 {
		t.Fatalf("submit: exit %d\n%s%s", code, out, errs)
	}
	if posts.Load() != 2 || len(keys) != 2 || keys[0] == "" || keys[0] != keys[1] {
		t.Fatalf("%d posts with keys %q, want 2 with the same key", posts.Load(), keys)
	}
	if !strings.Contains(errs, "retrying") {
		t.Errorf("stderr does not say it retried: %q", errs)
	}
	code, list, errs := runCLI("jobs", "--server", s.url, "--token", s.tokens[farm.RoleViewer], "--kind", "all")
	if code != 0 {
		t.Fatalf("jobs: %d %s", code, errs)
	}
	if n := strings.Count(list, "boot-smoke"); n != 1 || !strings.Contains(list, out[strings.LastIndex(strings.TrimSpace(out), "/")+1:len(out)-1]) {
		t.Errorf("jobs after a retried submit (want the one job %s):\n%s", out, list)
	}
}
