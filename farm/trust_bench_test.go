package farm

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkSignedSubmit64MiB measures what signature verification adds to
// a 64 MiB submission over loopback HTTP: the same candidate unsigned,
// signed with ssh-keygen's default SHA-512 (hashed on a second goroutine
// beside the store's SHA-256), signed with -O hashalg=sha256 (which reuses
// the store's digest), and signed with minisign (BLAKE2b-512, also on a
// second goroutine). Boards are in maintenance: nothing runs.
func BenchmarkSignedSubmit64MiB(b *testing.B) {
	dir := b.TempDir()
	key := newSSHKey(b, dir, "bench")
	mini := newMiniKey(b, dir, "bench-mini")
	src := fmt.Sprintf(`
farm "bench" { max_upload = "65MiB" }
board_type "sim" {}
board "sim-a" {
  type = "sim"
  emulator "sim" {}
}
trust {
  mode = "optional"
  keys = [%q, %q]
}
`, key.line, mini.text)
	c := startController(b, src, nil)
	if err := c.SetMaintenance(context.Background(), "sim-a", true, "bench", "bench"); err != nil {
		b.Fatal(err)
	}
	tok, _, err := CreateToken(context.Background(), c.db, "bench", RoleSubmitter, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	api := NewAPI(c.Controller, APIOptions{Auth: NewAuth(c.db, false, nil)})
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()

	fw := make([]byte, 64<<20)
	rand.Read(fw)
	fwPath := filepath.Join(dir, "fw.bin")
	os.WriteFile(fwPath, fw, 0o644)
	sig512 := key.sign(b, fw)
	sig256 := key.sign(b, fw, "-O", "hashalg=sha256")
	sigMini := mini.sign(b, fw, "bench")

	post := func(sig []byte) time.Duration {
		pr, pw := io.Pipe()
		mw := multipart.NewWriter(pw)
		go func() {
			w, _ := mw.CreateFormField("options")
			io.WriteString(w, `{}`)
			w, _ = mw.CreateFormFile("spec", "spec.hcl")
			io.WriteString(w, bootSpec)
			if sig != nil {
				w, _ = mw.CreateFormFile("signature", "fw.sig")
				w.Write(sig)
			}
			w, _ = mw.CreateFormFile("firmware", "fw.bin")
			w.Write(fw)
			pw.CloseWithError(mw.Close())
		}()
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/jobs", pr)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		start := time.Now()
		resp, err := srv.Client().Do(req)
		d := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			b.Fatalf("submit: %d %s", resp.StatusCode, body)
		}
		if sig != nil && !bytes.Contains(body, []byte(`"signature_status":"verified"`)) {
			b.Fatalf("signed submit not verified: %s", body)
		}
		return d
	}
	post(nil) // warm up: the first store of these bytes
	var unsigned, s512, s256, sMini time.Duration
	b.ResetTimer()
	for i := range b.N {
		// Rotate the order so no variant always follows another.
		for k := range 4 {
			switch (i + k) % 4 {
			case 0:
				unsigned += post(nil)
			case 1:
				s512 += post(sig512)
			case 2:
				s256 += post(sig256)
			case 3:
				sMini += post(sigMini)
			}
		}
	}
	b.StopTimer()
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / n }
	b.ReportMetric(ms(unsigned), "ms/unsigned")
	b.ReportMetric(ms(s512), "ms/signed-sha512")
	b.ReportMetric(ms(s256), "ms/signed-sha256")
	b.ReportMetric(ms(sMini), "ms/signed-minisign")
	b.ReportMetric(100*(ms(sMini)-ms(unsigned))/ms(unsigned), "%added-minisign")
	b.ReportMetric(100*(ms(s512)-ms(unsigned))/ms(unsigned), "%added-sha512")
	b.ReportMetric(100*(ms(s256)-ms(unsigned))/ms(unsigned), "%added-sha256")
}
