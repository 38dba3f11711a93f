package farm

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestTrustInBrowser: the farm page shows the trust policy; the job page
// shows the signature (verified by which key, or unsigned) and the SBOM.
func TestTrustInBrowser(t *testing.T) {
	leakCheck(t)
	dir := t.TempDir()
	ci := newSSHKey(t, dir, "ci")
	e := startUI(t, trustFarm("optional", ci), nil)
	fw := []byte(goodModel)
	submit := func(sig, sbom []byte) string {
		ct, body := partsBody(fw, sig, sbom)
		req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/jobs", body)
		req.Header.Set("Authorization", "Bearer "+e.tokens[RoleSubmitter])
		req.Header.Set("Content-Type", ct)
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var v JobView
		if resp.StatusCode != 201 || json.Unmarshal(b, &v) != nil {
			t.Fatalf("submit: %d %s", resp.StatusCode, b)
		}
		waitJob(t, e.tc.Controller, v.ID)
		return v.ID
	}
	signed := submit(ci.sign(t, fw), []byte(goodSBOM))
	unsigned := submit(nil, nil)

	b := newBrowser(t)
	b.do("open the login page", chromedp.Navigate(e.srv.URL+"/login"))
	b.waitFor("the login form shows", `!!document.querySelector("#login-form")`)
	b.do("log in", chromedp.SetValue(chromedp.CSS("#token"), e.tokens[RoleViewer]), chromedp.Click(chromedp.CSS("#login-submit")))
	b.waitFor("the farm page shows the trust policy", textOf("#trust-mode", "optional"))
	if got := b.eval(`document.querySelector("#trust").innerText`); !strings.Contains(got, ci.id) || !strings.Contains(got, "ci@build") || !strings.Contains(got, "ssh-ed25519") {
		t.Errorf("trust box = %q, want key %s ci@build", got, ci.id)
	}
	b.shot("trust-farm")

	b.do("open the signed job", chromedp.Navigate(e.srv.URL+"/jobs/"+signed))
	b.waitFor("the signature is shown verified", textOf("#signature-status", "verified by "+ci.id+" (ci@build)"))
	b.waitFor("the SBOM is summarised", textOf("#sbom-status", "CycloneDX 1.6, 3 components (fw@2.0)"))
	if got := b.eval(`document.querySelector("#sbom-link").getAttribute("href") + " " + document.querySelector("#verdict-link").getAttribute("href")`); got != fmt.Sprintf("/api/v1/jobs/%s/sbom /api/v1/jobs/%s/verdict", signed, signed) {
		t.Errorf("links = %q", got)
	}
	b.shot("trust-job-signed")
	b.do("open the unsigned job", chromedp.Navigate(e.srv.URL+"/jobs/"+unsigned))
	b.waitFor("the job shows unsigned", textOf("#signature-status", "unsigned"))
	b.waitFor("the job has no SBOM", textOf("#sbom-status", "none"))
	if p := b.problems(); len(p) > 0 {
		t.Errorf("page problems: %v", p)
	}
}
