package ui

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, h http.Handler, method, path string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

// assets returns the JS and CSS bundles index.html names.
func assets(t *testing.T) (js, css string) {
	t.Helper()
	index, err := fs.ReadFile(dist, "dist/index.html")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`src="(/assets/app-[A-Z0-9]+\.js)"`).FindSubmatch(index)
	c := regexp.MustCompile(`href="(/assets/app-[A-Z0-9]+\.css)"`).FindSubmatch(index)
	if m == nil || c == nil {
		t.Fatalf("index.html names no hashed bundles:\n%s", index)
	}
	return string(m[1]), string(c[1])
}

func TestHandlerServesPagesAndAssets(t *testing.T) {
	h := Handler()
	js, css := assets(t)
	for _, c := range []struct {
		path, ctype, cache string
		status             int
	}{
		{"/", "text/html; charset=utf-8", "no-cache", 200},
		{"/login", "text/html; charset=utf-8", "no-cache", 200},
		{"/queue", "text/html; charset=utf-8", "no-cache", 200},
		{"/jobs?state=passed&label=commit%3Dabc", "text/html; charset=utf-8", "no-cache", 200},
		{"/compare?spec=boot&base=a&candidate=b", "text/html; charset=utf-8", "no-cache", 200},
		{"/trends", "text/html; charset=utf-8", "no-cache", 200},
		{"/jobs/20261127-120000-abcdef", "text/html; charset=utf-8", "no-cache", 200},
		{"/boards/sim-a", "text/html; charset=utf-8", "no-cache", 200},
		{js, "text/javascript; charset=utf-8", "public, max-age=31536000, immutable", 200},
		{css, "text/css; charset=utf-8", "public, max-age=31536000, immutable", 200},
		{"/jobs/", "", "", 404},
		{"/jobs/a/b", "", "", 404},
		{"/boards", "", "", 404},
		{"/favicon.ico", "", "", 404},
		{"/assets/nope.js", "", "", 404},
		{"/assets/../ui.go", "", "", 404},
		{js + ".gz", "", "", 404},
		{"/index.html", "", "", 404},
	} {
		resp := get(t, h, "GET", c.path, nil)
		if resp.StatusCode != c.status {
			t.Errorf("GET %s = %d, want %d", c.path, resp.StatusCode, c.status)
			continue
		}
		if csp := resp.Header.Get("Content-Security-Policy"); csp != ContentSecurityPolicy {
			t.Errorf("GET %s: Content-Security-Policy = %q", c.path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: headers %v", c.path, resp.Header)
		}
		if c.status != 200 {
			continue
		}
		if got := resp.Header.Get("Content-Type"); got != c.ctype {
			t.Errorf("GET %s: Content-Type = %q, want %q", c.path, got, c.ctype)
		}
		if got := resp.Header.Get("Cache-Control"); got != c.cache {
			t.Errorf("GET %s: Cache-Control = %q, want %q", c.path, got, c.cache)
		}
	}
	if resp := get(t, h, "POST", "/", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST / = %d, want 405", resp.StatusCode)
	}
	if resp := get(t, h, "HEAD", "/queue", nil); resp.StatusCode != 200 {
		t.Errorf("HEAD /queue = %d", resp.StatusCode)
	}
}

func TestHandlerGzip(t *testing.T) {
	h := Handler()
	js, _ := assets(t)
	plain := get(t, h, "GET", js, nil)
	want, _ := io.ReadAll(plain.Body)
	if plain.Header.Get("Content-Encoding") != "" || len(want) < 1000 {
		t.Fatalf("plain %s: encoding %q, %d bytes", js, plain.Header.Get("Content-Encoding"), len(want))
	}
	for _, ae := range []string{"gzip", "br, gzip;q=0.8", "deflate, gzip"} {
		resp := get(t, h, "GET", js, map[string]string{"Accept-Encoding": ae})
		if resp.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, Vary %q", ae, resp.Header.Get("Content-Encoding"), resp.Header.Get("Vary"))
			continue
		}
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("gzipped %s differs from the plain one (%v)", js, err)
		}
	}
	if resp := get(t, h, "GET", js, map[string]string{"Accept-Encoding": "gzip;q=0"}); resp.Header.Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 got gzip")
	}
}

// TestNoForeignOrigins: the page loads nothing from another origin.
func TestNoForeignOrigins(t *testing.T) {
	for _, name := range []string{"dist/index.html"} {
		b, err := fs.ReadFile(dist, name)
		if err != nil {
			t.Fatal(err)
		}
		if m := regexp.MustCompile(`(?i)(src|href)="(https?:)?//`).Find(b); m != nil {
			t.Errorf("%s loads from another origin: %s", name, m)
		}
	}
	_, css := assets(t)
	b, err := fs.ReadFile(dist, "dist"+css)
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`url\((["']?)(https?:)?//`).Find(b); m != nil {
		t.Errorf("%s loads from another origin: %s", css, m)
	}
	if !strings.Contains(ContentSecurityPolicy, "default-src 'none'") || !strings.Contains(ContentSecurityPolicy, "script-src 'self';") {
		t.Errorf("CSP is not strict: %s", ContentSecurityPolicy)
	}
}

func TestIsPage(t *testing.T) {
	for p, want := range map[string]bool{
		"/": true, "/login": true, "/jobs/x": true, "/boards/b-1": true, "/jobs": true,
		"/jobs/": false, "/jobs/x/": false, "/api/v1/jobs": false, "/loginx": false, "/assets/x.js": false,
	} {
		if got := isPage(p); got != want {
			t.Errorf("isPage(%q) = %v, want %v", p, got, want)
		}
	}
}
