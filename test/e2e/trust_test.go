package e2e

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSignedCandidateBinary runs the promotion recipe with the real binary:
// serve with a required trust policy, sign with ssh-keygen, submit --wait,
// fetch the verdict, verify it; an unsigned submit is rejected (exit 3)
// and an altered verdict fails (exit 1).
func TestSignedCandidateBinary(t *testing.T) {
	kg, err := exec.LookPath("ssh-keygen")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ssh-keygen missing under CI (openssh-client is in DEB_PACKAGES)")
		}
		t.Skip("ssh-keygen not installed")
	}
	f := newFarm(t, 1)
	key := filepath.Join(f.dir, "release")
	if out, err := exec.Command(kg, "-q", "-t", "ed25519", "-N", "", "-C", "release@ci", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	pub, _ := os.ReadFile(key + ".pub")
	farmSrc, _ := os.ReadFile(f.farm)
	farmSrc = append(farmSrc, fmt.Sprintf("trust {\n  mode = \"required\"\n  keys = [%q]\n}\n", strings.TrimSpace(string(pub)))...)
	os.WriteFile(f.farm, farmSrc, 0o644)
	f.serve(t)
	sub, viewer := f.token(t, "submitter"), f.token(t, "viewer")
	server := "http://" + f.addr
	fw := filepath.Join(f.dir, "fw.hcl")

	code := func(err error) int {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	}
	_, err = f.hilfarm(t, "submit", "--server", server, "--token", sub, "--firmware", fw, "--spec", "quick.hcl")
	if code(err) != 3 || !strings.Contains(err.Error(), "release@ci") {
		t.Fatalf("unsigned submit: %v, want exit 3 naming release@ci", err)
	}
	if out, err := exec.Command(kg, "-Y", "sign", "-q", "-n", "hilfarm", "-f", key, fw).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if _, err := f.hilfarm(t, "submit", "--server", server, "--token", sub, "--firmware", fw, "--signature", fw+".sig",
		"--spec", "quick.hcl", "--quiet", "--json", "job.json"); err != nil {
		t.Fatal(err)
	}
	var job struct{ ID string }
	b, _ := os.ReadFile(filepath.Join(f.dir, "job.json"))
	json.Unmarshal(b, &job)
	keyLine, err := f.hilfarm(t, "farm-key", "--farm", f.farm)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(f.dir, "farm.pub"), []byte(keyLine), 0o644)
	if fi, err := os.Stat(filepath.Join(f.dir, "data", "verdict-key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("verdict key: %v %v, want 0600", fi, err)
	}
	if _, err := f.hilfarm(t, "verdict", "--server", server, "--token", viewer, "-o", "verdict.json", job.ID); err != nil {
		t.Fatal(err)
	}
	out, err := f.hilfarm(t, "verify-verdict", "--key", "farm.pub", "--firmware", fw, "--outcome", "passed", "verdict.json")
	if err != nil || !strings.Contains(out, "release@ci") {
		t.Fatalf("verify-verdict: %v\n%s", err, out)
	}
	// Flip the outcome inside the signed payload: rejected.
	var env map[string]string
	b, _ = os.ReadFile(filepath.Join(f.dir, "verdict.json"))
	json.Unmarshal(b, &env)
	payload, _ := base64.StdEncoding.DecodeString(env["payload"])
	env["payload"] = base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"outcome":"passed"`, `"outcome":"failed"`, 1)))
	b, _ = json.Marshal(env)
	os.WriteFile(filepath.Join(f.dir, "forged.json"), b, 0o644)
	if _, err := f.hilfarm(t, "verify-verdict", "--key", "farm.pub", "--outcome", "failed", "forged.json"); code(err) != 1 {
		t.Errorf("forged verdict: %v, want exit 1", err)
	}
}
