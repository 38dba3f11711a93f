package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hilfarm/hilfarm/farm"
	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/specs"
)

// startServerWithFarm is startCLIServer with a farm file of the test's own.
func startServerWithFarm(t *testing.T, src string) *cliServer {
	t.Helper()
	dir := t.TempDir()
	farmPath := filepath.Join(dir, "farm.hcl")
	if err := os.WriteFile(farmPath, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	f, diags := specs.LoadFarm(farmPath)
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	readyc := make(chan *cliServer, 1)
	done := make(chan error, 1)
	dataDir := filepath.Join(dir, "data")
	go func() {
		done <- serve(ctx, serveConfig{farm: f, dataDir: dataDir, ln: ln, log: slog.New(slog.DiscardHandler), stdout: io.Discard,
			ready: func(ctx context.Context, url string, db *store.DB) error {
				toks := map[string]string{}
				for _, role := range farm.Roles {
					tok, _, err := farm.CreateToken(ctx, db, "cli-"+role, role, time.Now())
					if err != nil {
						return err
					}
					toks[role] = tok
				}
				readyc <- &cliServer{url: url, dataDir: dataDir, tokens: toks}
				return nil
			}})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case s := <-readyc:
		return s
	case err := <-done:
		t.Fatalf("serve ended before it was ready: %v", err)
	}
	return nil
}

func sshKeygenOrSkip(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("ssh-keygen")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ssh-keygen missing under CI (openssh-client is in DEB_PACKAGES)")
		}
		t.Skip("ssh-keygen not installed (Debian package openssh-client)")
	}
	return p
}

func sh(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

const testSBOM = `{"bomFormat":"CycloneDX","specVersion":"1.5","version":1,
 "metadata":{"component":{"type":"firmware","name":"sim-good","version":"1.1.0"}},
 "components":[{"type":"library","name":"libc","version":"1"},
               {"type":"library","name":"drivers","components":[{"type":"library","name":"uart"}]}]}`

// TestSignedPromotionEndToEnd is the promotion recipe of docs/ci.md with
// the real ssh-keygen: sign, submit with the signature and SBOM, wait,
// fetch the signed verdict, verify it; then every altered field fails.
func TestSignedPromotionEndToEnd(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	kg := sshKeygenOrSkip(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "release")
	sh(t, kg, "-q", "-t", "ed25519", "-N", "", "-C", "release@ci", "-f", key)
	pub, _ := os.ReadFile(key + ".pub")
	s := startServerWithFarm(t, cliTestFarm+fmt.Sprintf("trust {\n  mode = \"required\"\n  keys = [%q]\n}\n", strings.TrimSpace(string(pub))))
	sub := s.tokens[farm.RoleSubmitter]

	fw := filepath.Join(dir, "fw.hcl")
	src, _ := os.ReadFile(examples + "/firmware/sim-good.hcl")
	os.WriteFile(fw, src, 0o644)
	sh(t, kg, "-Y", "sign", "-q", "-n", "hilfarm", "-f", key, fw)
	sbom := filepath.Join(dir, "sbom.cdx.json")
	os.WriteFile(sbom, []byte(testSBOM), 0o644)

	code, out, errs := runCLI("submit", "--server", s.url, "--token", sub, "--firmware", fw, "--spec", examples+"/specs/measure.hcl")
	if code != exitRejected || !strings.Contains(errs, "requires a signed candidate") || !strings.Contains(errs, "release@ci") {
		t.Fatalf("unsigned submit: exit %d, want 3 naming the accepted key\n%s%s", code, out, errs)
	}

	junit, js := filepath.Join(dir, "job.xml"), filepath.Join(dir, "job.json")
	code, out, errs = runCLI("submit", "--server", s.url, "--token", sub, "--firmware", fw, "--signature", fw+".sig", "--sbom", sbom,
		"--spec", examples+"/specs/measure.hcl", "--quiet", "--junit", junit, "--json", js)
	if code != exitOK {
		t.Fatalf("signed submit: exit %d\n%s%s", code, out, errs)
	}
	var j jobJSON
	b, _ := os.ReadFile(js)
	if err := json.Unmarshal(b, &j); err != nil || j.Firmware.Signer == nil || j.Firmware.Signer.Comment != "release@ci" || j.Firmware.SBOM == nil || j.Firmware.SBOM.Components != 3 || j.Firmware.Size != int64(len(src)) {
		t.Fatalf("job JSON lacks the provenance: %v %s", err, b)
	}
	x, _ := os.ReadFile(junit)
	for _, want := range []string{`name="firmware.signer.key_id" value="` + j.Firmware.Signer.KeyID + `"`, `name="sbom.components" value="3"`, `name="firmware.size"`} {
		if !strings.Contains(string(x), want) {
			t.Errorf("JUnit lacks %s:\n%s", want, x)
		}
	}

	keyFile := filepath.Join(dir, "farm.pub")
	code, keyLine, errs := runCLI("farm-key", "--server", s.url, "--token", s.tokens[farm.RoleViewer])
	if code != 0 || !strings.HasPrefix(keyLine, "ssh-ed25519 ") {
		t.Fatalf("farm-key --server: %d %q %q", code, keyLine, errs)
	}
	if code, local, _ := runCLI("farm-key", "--data", s.dataDir); code != 0 || strings.Fields(local)[1] != strings.Fields(keyLine)[1] {
		t.Errorf("farm-key --data = %q, --server = %q", local, keyLine)
	}
	os.WriteFile(keyFile, []byte(keyLine), 0o644)
	vfile := filepath.Join(dir, "verdict.json")
	if code, out, errs := runCLI("verdict", "--server", s.url, "--token", s.tokens[farm.RoleViewer], "-o", vfile, j.ID); code != 0 {
		t.Fatalf("verdict: %d %s %s", code, out, errs)
	}
	code, out, errs = runCLI("verify-verdict", "--key", keyFile, "--firmware", fw, "--outcome", "passed", vfile)
	if code != 0 || !strings.Contains(out, "passed") || !strings.Contains(out, "release@ci") {
		t.Fatalf("verify-verdict of a genuine verdict: exit %d\n%s%s", code, out, errs)
	}
	if fi, err := os.Stat(filepath.Join(s.dataDir, farm.VerdictKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("verdict key file: %v %v, want mode 0600", fi.Mode(), err)
	}

	// Any altered field of the statement, or of the envelope, is rejected.
	genuine, _ := os.ReadFile(vfile)
	var env map[string]string
	json.Unmarshal(genuine, &env)
	payload, _ := base64.StdEncoding.DecodeString(env["payload"])
	var st map[string]any
	json.Unmarshal(payload, &st)
	altered := 0
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			name := prefix + k
			if sub, ok := v.(map[string]any); ok {
				walk(name+".", sub)
				continue
			}
			old := v
			switch x := v.(type) {
			case string:
				m[k] = x + "x"
			case float64:
				m[k] = x + 1
			default:
				m[k] = "changed"
			}
			p2, _ := json.Marshal(st)
			m[k] = old
			e2 := map[string]string{}
			for ek, ev := range env {
				e2[ek] = ev
			}
			e2["payload"] = base64.StdEncoding.EncodeToString(p2)
			f := filepath.Join(dir, "altered.json")
			eb, _ := json.Marshal(e2)
			os.WriteFile(f, eb, 0o644)
			if code, out, errs := runCLI("verify-verdict", "--key", keyFile, "--outcome", "", f); code != exitFailed || !strings.Contains(errs, "altered") {
				t.Errorf("verdict with %s altered: exit %d, want 1\n%s%s", name, code, out, errs)
			}
			altered++
		}
	}
	walk("", st)
	if altered < 15 {
		t.Errorf("only %d statement fields were altered; the statement lacks fields", altered)
	}
	for _, k := range []string{"signature", "key_id", "payload_type"} {
		e2 := map[string]string{}
		for ek, ev := range env {
			e2[ek] = ev
		}
		e2[k] = strings.Replace(e2[k], e2[k][5:6], string(rune(e2[k][5]^1)), 1)
		eb, _ := json.Marshal(e2)
		f := filepath.Join(dir, "altered-env.json")
		os.WriteFile(f, eb, 0o644)
		if code, _, errs := runCLI("verify-verdict", "--key", keyFile, f); code != exitFailed {
			t.Errorf("envelope with %s altered: exit %d, want 1 (%s)", k, code, errs)
		}
	}
	// Another farm's key, the wrong firmware, the wrong outcome.
	other := filepath.Join(dir, "other")
	sh(t, kg, "-q", "-t", "ed25519", "-N", "", "-f", other)
	if code, _, _ := runCLI("verify-verdict", "--key", other+".pub", vfile); code != exitFailed {
		t.Errorf("verdict checked with another key: exit %d, want 1", code)
	}
	if code, _, errs := runCLI("verify-verdict", "--key", keyFile, "--firmware", examples+"/firmware/sim-regressed.hcl", vfile); code != exitFailed || !strings.Contains(errs, "not sha256:") {
		t.Errorf("verdict for other firmware: exit %d, want 1 (%s)", code, errs)
	}
	if code, _, errs := runCLI("verify-verdict", "--key", keyFile, "--outcome", "failed", vfile); code != exitFailed || !strings.Contains(errs, "outcome is passed") {
		t.Errorf("verdict with another outcome: exit %d, want 1 (%s)", code, errs)
	}
	junkKey := filepath.Join(dir, "junk.pub")
	os.WriteFile(junkKey, []byte("ssh-ed25519 AAAAnot-a-key"), 0o644)
	if code, _, errs := runCLI("verify-verdict", "--key", junkKey, vfile); code == 0 || !strings.Contains(errs, "farm public key") {
		t.Errorf("verify-verdict with a key that does not parse: exit %d (%s)", code, errs)
	}
	// A farm file whose trusted key does not parse: validate says where.
	badFarm := filepath.Join(dir, "bad-farm.hcl")
	os.WriteFile(badFarm, []byte(cliTestFarm+"trust {\n  keys = [\"ssh-ed25519 AAAA!!\"]\n}\n"), 0o644)
	if code, out, errs := runCLI("validate", badFarm); code != exitFailed || !strings.Contains(out+errs, "bad-farm.hcl:23:11") || !strings.Contains(out+errs, "Key does not parse") {
		t.Errorf("validate of a farm with a bad key: exit %d\n%s%s", code, out, errs)
	}
	huge := filepath.Join(dir, "huge.json")
	os.WriteFile(huge, make([]byte, 2<<20), 0o644)
	if code, _, _ := runCLI("verify-verdict", "--key", keyFile, huge); code != exitFailed {
		t.Errorf("huge verdict file: exit %d, want 1", code)
	}
}
