// Package ui serves hilfarm's web UI: the built front-end in dist/ (made
// from src/ by `make ui` with esbuild, committed, and embedded here, so
// `go build` needs no Node and the page loads nothing from another origin).
//
// Handler serves the hashed assets under /assets/ as immutable, index.html
// (with no-cache) for every page route of the single-page app, and a
// strict Content-Security-Policy on everything. The pages talk to the API
// of package farm (docs/api.md, docs/ui.md); this package does not import
// it. Handler is safe for concurrent use.
package ui

import (
	"bytes"
	"compress/gzip"
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

//go:embed all:dist
var dist embed.FS

// ContentSecurityPolicy is sent with every answer of Handler. Scripts,
// styles, images, fonts and connections (XHR and websockets: 'self' covers
// ws:// and wss:// of the same host) come from hilfarm itself only; no
// plugins, no framing, no foreign form targets. style-src allows inline
// styles because xterm.js creates <style> elements for its theme and cell
// sizes at run time (it has no nonce option); scripts stay strict.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self'; connect-src 'self'; manifest-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"

// pageRoutes are the paths (exact, or prefixes ending in "/") that are
// pages of the app: they all get index.html and the app routes in the browser.
var pageRoutes = []string{"/", "/login", "/queue", "/jobs", "/compare", "/trends", "/jobs/", "/boards/"}

// Handler serves the UI. Mount it at "/" next to the API (whose more
// specific /api/ patterns win in an http.ServeMux).
func Handler() http.Handler {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic("ui: embedded dist missing: " + err.Error()) // a build error, not a run-time one
	}
	index, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		panic("ui: dist/index.html missing; run `make ui`: " + err.Error())
	}
	return &handler{fs: sub, index: index, modified: time.Now(), gz: map[string]func() []byte{}}
}

type handler struct {
	fs       fs.FS
	index    []byte
	modified time.Time

	mu sync.Mutex
	gz map[string]func() []byte // asset name -> its gzip form, made once on first use
}

// gzipped returns the gzip form of an asset, compressing it on first use.
func (h *handler) gzipped(name string, data []byte) []byte {
	h.mu.Lock()
	f, ok := h.gz[name]
	if !ok {
		f = sync.OnceValue(func() []byte {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			zw.Write(data)
			zw.Close()
			return buf.Bytes()
		})
		h.gz[name] = f
	}
	h.mu.Unlock()
	return f()
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	if strings.HasPrefix(p, "/assets/") {
		h.asset(w, r, strings.TrimPrefix(path.Clean(p), "/"))
		return
	}
	if isPage(p) {
		hdr.Set("Content-Type", "text/html; charset=utf-8")
		hdr.Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "index.html", h.modified, bytes.NewReader(h.index))
		return
	}
	http.NotFound(w, r)
}

func isPage(p string) bool {
	for _, route := range pageRoutes {
		if route == "/" || !strings.HasSuffix(route, "/") {
			if p == route {
				return true
			}
			continue
		}
		// A prefix route takes exactly one more path element: /jobs/ID.
		if rest, ok := strings.CutPrefix(p, route); ok && rest != "" && !strings.Contains(rest, "/") {
			return true
		}
	}
	return false
}

// asset serves a file of dist/assets. Names carry a content hash, so they
// are cached for a year as immutable. JavaScript and CSS go gzipped to
// clients that accept gzip (compressed once, on first use).
func (h *handler) asset(w http.ResponseWriter, r *http.Request, name string) {
	if !strings.HasPrefix(name, "assets/") {
		http.NotFound(w, r)
		return
	}
	data, err := fs.ReadFile(h.fs, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	hdr := w.Header()
	ctype := mime.TypeByExtension(path.Ext(name))
	switch {
	case strings.HasSuffix(name, ".js"):
		ctype = "text/javascript; charset=utf-8"
	case strings.HasSuffix(name, ".css"):
		ctype = "text/css; charset=utf-8"
	case strings.HasSuffix(name, ".txt"):
		ctype = "text/plain; charset=utf-8"
	case ctype == "":
		ctype = "application/octet-stream"
	}
	hdr.Set("Content-Type", ctype)
	hdr.Set("Cache-Control", "public, max-age=31536000, immutable")
	hdr.Add("Vary", "Accept-Encoding")
	if (strings.HasSuffix(name, ".js") || strings.HasSuffix(name, ".css")) && acceptsGzip(r) {
		hdr.Set("Content-Encoding", "gzip")
		data = h.gzipped(name, data)
	}
	http.ServeContent(w, r, "", h.modified, bytes.NewReader(data))
}

func acceptsGzip(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(strings.TrimSpace(q), " ", "") != "q=0" {
			return true
		}
	}
	return false
}
