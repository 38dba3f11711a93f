package farm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/specs"
)

// sshKey is a key pair made by the real ssh-keygen.
type sshKey struct {
	priv, pub string // paths
	line      string // the .pub line
	id        string // SHA256 fingerprint
}

func needSSHKeygen(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("ssh-keygen")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ssh-keygen missing under CI (Debian openssh-client is in DEB_PACKAGES)")
		}
		t.Skip("ssh-keygen not installed (Debian package openssh-client)")
	}
	return p
}

func newSSHKey(t testing.TB, dir, name string) sshKey {
	t.Helper()
	kg := needSSHKeygen(t)
	k := sshKey{priv: filepath.Join(dir, name)}
	k.pub = k.priv + ".pub"
	if out, err := exec.Command(kg, "-q", "-t", "ed25519", "-N", "", "-C", name+"@build", "-f", k.priv).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	b, err := os.ReadFile(k.pub)
	if err != nil {
		t.Fatal(err)
	}
	k.line = strings.TrimSpace(string(b))
	tk, err := specs.ParseTrustedKey(k.line)
	if err != nil {
		t.Fatal(err)
	}
	k.id = tk.KeyID
	return k
}

// sign signs data with ssh-keygen -Y sign and returns the armored signature.
func (k sshKey) sign(t testing.TB, data []byte, extra ...string) []byte {
	t.Helper()
	f, err := os.CreateTemp(filepath.Dir(k.priv), "msg-*")
	if err != nil {
		t.Fatal(err)
	}
	f.Write(data)
	f.Close()
	args := append([]string{"-Y", "sign", "-q", "-n", "hilfarm", "-f", k.priv}, extra...)
	if out, err := exec.Command(needSSHKeygen(t), append(args, f.Name())...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v\n%s", err, out)
	}
	sig, err := os.ReadFile(f.Name() + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func trustFarm(mode string, keys ...sshKey) string {
	var quoted []string
	for _, k := range keys {
		quoted = append(quoted, fmt.Sprintf("%q", k.line))
	}
	return `
farm "test" { max_upload = "4KiB" }
board_type "sim" {}
board "sim-a" {
  type = "sim"
  emulator "sim" {}
}
trust {
  mode = "` + mode + `"
  keys = [` + strings.Join(quoted, ", ") + `]
}
`
}

// submitParts posts a submission with optional signature and sbom parts
// (before the firmware, as hilfarm submit sends them).
func (e *apiEnv) submitParts(t *testing.T, fw, sig, sbom []byte) apiAnswer {
	t.Helper()
	ct, body := partsBody(fw, sig, sbom)
	return e.do(t, "POST", "/api/v1/jobs", e.tokens[RoleSubmitter], ct, body)
}

func partsBody(fw, sig, sbom []byte) (string, *bytes.Buffer) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, _ := mw.CreateFormField("options")
	io.WriteString(w, `{}`)
	w, _ = mw.CreateFormFile("spec", "spec.hcl")
	io.WriteString(w, bootSpec)
	if sig != nil {
		w, _ = mw.CreateFormFile("signature", "fw.hcl.sig")
		w.Write(sig)
	}
	if sbom != nil {
		w, _ = mw.CreateFormFile("sbom", "sbom.cdx.json")
		w.Write(sbom)
	}
	w, _ = mw.CreateFormFile("firmware", "fw.hcl")
	w.Write(fw)
	mw.Close()
	return mw.FormDataContentType(), &buf
}

// storedNothing checks a rejected submission left no job and no firmware.
func storedNothing(t *testing.T, e *apiEnv, jobsBefore int) {
	t.Helper()
	js, err := e.tc.db.Jobs(context.Background(), store.JobFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(js) != jobsBefore {
		t.Errorf("rejected submission left a job: %d jobs, want %d", len(js), jobsBefore)
	}
	ents, _ := os.ReadDir(e.tc.fwDir)
	for _, de := range ents {
		if strings.HasPrefix(de.Name(), ".") {
			t.Errorf("rejected submission left %s in the firmware store", de.Name())
		}
	}
}

func decodeJob(t *testing.T, a apiAnswer) JobView {
	t.Helper()
	var v JobView
	if err := json.Unmarshal(a.body, &v); err != nil {
		t.Fatalf("job JSON: %v: %s", err, a.body)
	}
	return v
}

func TestTrustRequired(t *testing.T) {
	leakCheck(t)
	dir := t.TempDir()
	ci, other := newSSHKey(t, dir, "ci"), newSSHKey(t, dir, "other")
	e := startAPI(t, trustFarm("required", ci), nil)
	fw := []byte(goodModel)

	t.Run("missing signature", func(t *testing.T) {
		a := e.submitParts(t, fw, nil, nil)
		if a.status != 422 || !strings.Contains(string(a.body), ci.id) {
			t.Fatalf("unsigned under required = %d %s, want 422 naming %s", a.status, a.body, ci.id)
		}
		storedNothing(t, e, 0)
	})
	t.Run("wrong key", func(t *testing.T) {
		a := e.submitParts(t, fw, other.sign(t, fw), nil)
		if a.status != 422 || !strings.Contains(string(a.body), ci.id) || !strings.Contains(string(a.body), other.id) {
			t.Fatalf("signed by another key = %d %s, want 422 naming the signer and %s", a.status, a.body, ci.id)
		}
		storedNothing(t, e, 0)
	})
	t.Run("tampered image", func(t *testing.T) {
		sig := ci.sign(t, fw)
		bad := bytes.Clone(fw)
		bad[len(bad)/2] ^= 0x01
		a := e.submitParts(t, bad, sig, nil)
		if a.status != 422 || !strings.Contains(string(a.body), "does not match") {
			t.Fatalf("one byte flipped after signing = %d %s, want 422", a.status, a.body)
		}
		storedNothing(t, e, 0)
	})
	t.Run("wrong namespace", func(t *testing.T) {
		f := filepath.Join(dir, "ns")
		os.WriteFile(f, fw, 0o644)
		if out, err := exec.Command(needSSHKeygen(t), "-Y", "sign", "-q", "-n", "file", "-f", ci.priv, f).CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
		sig, _ := os.ReadFile(f + ".sig")
		if a := e.submitParts(t, fw, sig, nil); a.status != 422 || !strings.Contains(string(a.body), "namespace") {
			t.Fatalf("namespace file = %d %s, want 422", a.status, a.body)
		}
		storedNothing(t, e, 0)
	})
	t.Run("hostile signatures", func(t *testing.T) {
		for name, c := range map[string]struct {
			sig    []byte
			status int
		}{
			"huge":     {bytes.Repeat([]byte("A"), 10<<20), 413},
			"garbage":  {[]byte("-----BEGIN SSH SIGNATURE-----\n!!!\n-----END SSH SIGNATURE-----\n"), 422},
			"truncate": {ci.sign(t, fw)[:200], 422},
			"minisign": {[]byte("untrusted comment: x\nRWQf6LRCGA9i59SLOFxz6NxvASXDJeRtuZykwQepbDEGt87ig1BNpWaVWuNrm73YiIiJbq71Wi+dP9eKL8OC351vwIasSSbXxwA=\n"), 422},
		} {
			a := e.submitParts(t, fw, c.sig, nil)
			if a.status != c.status {
				t.Errorf("%s signature = %d %s, want %d", name, a.status, a.body, c.status)
			}
			errorBody(t, a)
		}
		storedNothing(t, e, 0)
	})
	for _, hashAlg := range []string{"sha512", "sha256"} {
		t.Run("good signature "+hashAlg, func(t *testing.T) {
			a := e.submitParts(t, fw, ci.sign(t, fw, "-O", "hashalg="+hashAlg), nil)
			if a.status != 201 {
				t.Fatalf("good signature = %d %s", a.status, a.body)
			}
			v := decodeJob(t, a)
			if v.Firmware.SignatureStatus != store.SigVerified || v.Firmware.Signer == nil || v.Firmware.Signer.KeyID != ci.id || v.Firmware.Signer.Comment != "ci@build" || v.Firmware.Signer.HashAlg != hashAlg {
				t.Fatalf("signer = %s %+v, want verified by %s (ci@build)", v.Firmware.SignatureStatus, v.Firmware.Signer, ci.id)
			}
			if fin := e.tc.wait(t, v.ID); fin.State != store.StatePassed {
				t.Fatalf("signed job ended %s: %s", fin.State, fin.Reason)
			}
		})
	}
}

func TestTrustOptional(t *testing.T) {
	leakCheck(t)
	dir := t.TempDir()
	ci, other := newSSHKey(t, dir, "ci"), newSSHKey(t, dir, "other")
	e := startAPI(t, trustFarm("optional", ci), nil)
	fw := []byte(goodModel)

	a := e.submitParts(t, fw, nil, nil)
	if a.status != 201 || decodeJob(t, a).Firmware.SignatureStatus != store.SigUnsigned || decodeJob(t, a).Firmware.Signer != nil {
		t.Fatalf("unsigned under optional = %d %s, want 201 unsigned", a.status, a.body)
	}
	a = e.submitParts(t, fw, ci.sign(t, fw), nil)
	if a.status != 201 || decodeJob(t, a).Firmware.Signer == nil || decodeJob(t, a).Firmware.Signer.KeyID != ci.id {
		t.Fatalf("signed under optional = %d %s, want 201 verified", a.status, a.body)
	}
	a = e.submitParts(t, fw, other.sign(t, fw), nil)
	if a.status != 422 {
		t.Fatalf("badly signed under optional = %d %s, want 422 (a given signature is checked)", a.status, a.body)
	}
	storedNothing(t, e, 2)
}

func TestTrustOffIgnoresSignatures(t *testing.T) {
	leakCheck(t)
	dir := t.TempDir()
	other := newSSHKey(t, dir, "other")
	e := startAPI(t, trustFarm("off", other), nil)
	a := e.submitParts(t, []byte(goodModel), []byte("not even a signature"), nil)
	if a.status != 201 || decodeJob(t, a).Firmware.SignatureStatus != store.SigNotChecked {
		t.Fatalf("trust off = %d %s, want 201 not-checked", a.status, a.body)
	}
}

// TestTrustStoreTamperedBeforeFlash changes the stored firmware while the
// job waits for its board: the job ends in error blamed on the farm, the
// board's health is untouched and nothing is flashed.
func TestTrustStoreTamperedBeforeFlash(t *testing.T) {
	leakCheck(t)
	dir := t.TempDir()
	ci := newSSHKey(t, dir, "ci")
	e := startAPI(t, trustFarm("required", ci), nil)
	ctx := context.Background()
	if err := e.tc.SetMaintenance(ctx, "sim-a", true, "hold the job", "test"); err != nil {
		t.Fatal(err)
	}
	fw := []byte(goodModel)
	a := e.submitParts(t, fw, ci.sign(t, fw), nil)
	if a.status != 201 {
		t.Fatalf("submit = %d %s", a.status, a.body)
	}
	v := decodeJob(t, a)
	path := e.tc.FirmwarePath(v.Firmware.SHA256)
	bad := bytes.Clone(fw)
	bad[0] ^= 0x20
	if err := os.WriteFile(path, bad, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := e.tc.SetMaintenance(ctx, "sim-a", false, "", "test"); err != nil {
		t.Fatal(err)
	}
	fin := e.tc.wait(t, v.ID)
	if fin.State != store.StateError || !strings.Contains(fin.Reason, "farm fault") || !strings.Contains(fin.Reason, "changed after submit") {
		t.Fatalf("tampered store: job %s %q, want error blaming the farm", fin.State, fin.Reason)
	}
	if len(fin.Attempts) != 1 {
		t.Errorf("tampered store: %d attempts, want 1 (no other board would do better)", len(fin.Attempts))
	}
	bv, _ := e.tc.Board("sim-a")
	if bv.State != BoardIdle {
		t.Errorf("board after a farm fault: %s (%s), want idle", bv.State, bv.Reason)
	}
	e.tc.mu.Lock()
	infra := e.tc.slots["sim-a"].infraInRow
	e.tc.mu.Unlock()
	if infra != 0 {
		t.Errorf("board infra errors after a farm fault = %d, want 0", infra)
	}
	// A resubmission of the genuine bytes restores the store and passes.
	if a := e.submitParts(t, fw, ci.sign(t, fw), nil); a.status != 201 {
		t.Fatalf("resubmit = %d %s", a.status, a.body)
	} else if fin := e.tc.wait(t, decodeJob(t, a).ID); fin.State != store.StatePassed {
		t.Fatalf("resubmitted job %s: %s", fin.State, fin.Reason)
	}
}

// TestTrustPartsOrder: signature and sbom parts are bounded, single, and
// must precede the firmware (it may already be streaming into the store).
func TestTrustPartsOrder(t *testing.T) {
	leakCheck(t)
	dir := t.TempDir()
	ci := newSSHKey(t, dir, "ci")
	e := startAPI(t, trustFarm("optional", ci), nil)
	fw := []byte(goodModel)
	sig := ci.sign(t, fw)
	post := func(parts ...[2]string) apiAnswer {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for _, p := range parts {
			w, _ := mw.CreateFormFile(p[0], p[0])
			io.WriteString(w, p[1])
		}
		mw.Close()
		return e.do(t, "POST", "/api/v1/jobs", e.tokens[RoleSubmitter], mw.FormDataContentType(), &buf)
	}
	for name, c := range map[string]struct {
		parts [][2]string
		want  string
	}{
		// (With options and spec first the firmware streams into a job at
		// once; that job outlives a later 400 until submits are atomic, i11b.)
		"signature after firmware": {[][2]string{{"spec", bootSpec}, {"firmware", goodModel}, {"signature", string(sig)}}, "must come before the firmware"},
		"sbom after firmware":      {[][2]string{{"spec", bootSpec}, {"firmware", goodModel}, {"sbom", goodSBOM}}, "must come before the firmware"},
		"two signatures":           {[][2]string{{"signature", string(sig)}, {"signature", string(sig)}, {"spec", bootSpec}, {"firmware", goodModel}}, "two signature parts"},
		"empty signature":          {[][2]string{{"signature", ""}, {"spec", bootSpec}, {"firmware", goodModel}}, "signature part is empty"},
	} {
		a := post(c.parts...)
		if a.status != 400 || !strings.Contains(errorBody(t, a).Error, c.want) {
			t.Errorf("%s = %d %s, want 400 %q", name, a.status, a.body, c.want)
		}
	}
	storedNothing(t, e, 0)
	// The spooled order (signature and firmware before the spec) works.
	a := post([2]string{"signature", string(sig)}, [2]string{"firmware", goodModel}, [2]string{"spec", bootSpec})
	if a.status != 201 || decodeJob(t, a).Firmware.SignatureStatus != store.SigVerified {
		t.Errorf("signature, firmware, spec = %d %s, want 201 verified", a.status, a.body)
	}
}

// TestTrustPerBoardType: a job must satisfy the policy of every board type
// its selector can match; a type's override narrows the farm's keys.
func TestTrustPerBoardType(t *testing.T) {
	leakCheck(t)
	dir := t.TempDir()
	ci, release := newSSHKey(t, dir, "ci"), newSSHKey(t, dir, "release")
	src := fmt.Sprintf(`
farm "test" { max_upload = "4KiB" }
board_type "sim" {}
board_type "lab" {}
board "sim-a" {
  type = "sim"
  tags = { rack = "r1" }
  emulator "sim" {}
}
board "lab-a" {
  type = "lab"
  tags = { rack = "r1" }
  emulator "sim" {}
}
trust {
  mode = "optional"
  keys = [%q]
  board_type "lab" {
    mode = "required"
    keys = [%q]
  }
}
`, ci.line, release.line)
	tc := startController(t, src, nil)
	fw := []byte(goodModel)
	anySpec := strings.Replace(bootSpec, `board { type = "sim" }`, `board { tags = { rack = "r1" } }`, 1)
	labSpec := strings.Replace(bootSpec, `"sim"`, `"lab"`, 1)
	for _, c := range []struct {
		name, spec, typ string
		sig             []byte
		want            string // "" = accepted
	}{
		{"sim, unsigned", bootSpec, "", nil, ""},
		{"sim, ci key", bootSpec, "", ci.sign(t, fw), ""},
		{"sim, release key", bootSpec, "", release.sign(t, fw), "does not accept"},
		{"lab, unsigned", labSpec, "", nil, "board type lab accepts " + release.id},
		{"lab, release key", labSpec, "", release.sign(t, fw), ""},
		{"lab, ci key", labSpec, "", ci.sign(t, fw), "does not accept"},
		{"any board narrowed to lab by the submitter, unsigned", anySpec, "lab", nil, "requires a signed candidate"},
		{"any board, release key (sim refuses it)", anySpec, "", release.sign(t, fw), "board type sim does not accept"},
		{"any board, unsigned (lab requires)", anySpec, "", nil, "requires a signed candidate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := tc.submit(t, c.spec, goodModel, func(s *Submission) { s.Signature = c.sig; s.Type = c.typ })
			if c.want == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			var rej *RejectedError
			if !errors.As(err, &rej) || rej.Status != 422 || !strings.Contains(rej.Message, c.want) {
				t.Fatalf("Submit = %v, %v; want 422 with %q", v, err, c.want)
			}
		})
	}
}

func TestVerdictOfUnfinishedJob(t *testing.T) {
	leakCheck(t)
	e := startAPI(t, testFarm, nil)
	for _, b := range []string{"sim-a", "sim-b"} {
		if err := e.tc.SetMaintenance(context.Background(), b, true, "hold", "test"); err != nil {
			t.Fatal(err)
		}
	}
	a := e.submitParts(t, []byte(goodModel), nil, nil)
	id := decodeJob(t, a).ID
	if a := e.do(t, "GET", "/api/v1/jobs/"+id+"/verdict", e.tokens[RoleViewer], "", nil); a.status != 409 {
		t.Errorf("verdict of a queued job = %d %s, want 409", a.status, a.body)
	}
	if a := e.do(t, "GET", "/api/v1/jobs/"+id+"/sbom", e.tokens[RoleViewer], "", nil); a.status != 404 {
		t.Errorf("sbom of a job without one = %d %s, want 404", a.status, a.body)
	}
}

func TestWebhookPayloadCarriesProvenance(t *testing.T) {
	j := store.Job{ID: "j1", State: store.StatePassed, Firmware: store.Firmware{SHA256: "ab12", Size: 42, Provenance: store.Provenance{
		SignatureStatus: store.SigVerified, Signer: &store.Signer{KeyID: "SHA256:k", Comment: "ci@build"},
		SBOM: &store.SBOMSummary{Format: "CycloneDX", SpecVersion: "1.5", Components: 7}, Signature: []byte("secret-ish")}}}
	b, err := json.Marshal(NewWebhookPayload(j, "http://farm:8080"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"size":42`, `"signature_status":"verified"`, `"key_id":"SHA256:k"`, `"comment":"ci@build"`, `"components":7`, `"verdict":"http://farm:8080/api/v1/jobs/j1/verdict"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("payload lacks %s: %s", want, b)
		}
	}
	if strings.Contains(string(b), "secret-ish") {
		t.Errorf("payload carries the raw signature: %s", b)
	}
}

// miniKey is a minisign key pair made by the real minisign.
type miniKey struct {
	sec, pub string // paths
	text     string // the .pub file (two lines)
	id       string
}

func newMiniKey(t testing.TB, dir, name string) miniKey {
	t.Helper()
	ms, err := exec.LookPath("minisign")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("minisign missing under CI (Debian minisign is in DEB_PACKAGES)")
		}
		t.Skip("minisign not installed (Debian package minisign)")
	}
	k := miniKey{sec: filepath.Join(dir, name+".key"), pub: filepath.Join(dir, name+".pub")}
	if out, err := exec.Command(ms, "-G", "-W", "-p", k.pub, "-s", k.sec).CombinedOutput(); err != nil {
		t.Fatalf("minisign -G: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(k.pub)
	k.text = strings.TrimSpace(string(b))
	tk, err := specs.ParseTrustedKey(k.text)
	if err != nil {
		t.Fatal(err)
	}
	k.id = tk.KeyID
	return k
}

func (k miniKey) sign(t testing.TB, data []byte, comment string) []byte {
	t.Helper()
	f, _ := os.CreateTemp(filepath.Dir(k.sec), "msg-*")
	f.Write(data)
	f.Close()
	if out, err := exec.Command("minisign", "-S", "-s", k.sec, "-m", f.Name(), "-t", comment).CombinedOutput(); err != nil {
		t.Fatalf("minisign -S: %v\n%s", err, out)
	}
	sig, _ := os.ReadFile(f.Name() + ".minisig")
	return sig
}

func TestTrustMinisign(t *testing.T) {
	leakCheck(t)
	dir := t.TempDir()
	mk, other, ssh := newMiniKey(t, dir, "release"), newMiniKey(t, dir, "other"), newSSHKey(t, dir, "ci")
	e := startAPI(t, fmt.Sprintf(`
farm "test" { max_upload = "4KiB" }
board_type "sim" {}
board "sim-a" {
  type = "sim"
  emulator "sim" {}
}
trust {
  mode = "required"
  keys = [%q, %q]
}
`, mk.text, ssh.line), nil)
	fw := []byte(goodModel)
	a := e.submitParts(t, fw, mk.sign(t, fw, "build 7 of main"), nil)
	if a.status != 201 {
		t.Fatalf("minisign-signed = %d %s", a.status, a.body)
	}
	v := decodeJob(t, a)
	if s := v.Firmware.Signer; s == nil || s.KeyID != mk.id || s.KeyType != "minisign" || s.SignedComment != "build 7 of main" || s.HashAlg != "blake2b-512" {
		t.Fatalf("signer = %+v, want minisign key %s with the trusted comment", s, mk.id)
	}
	if fin := e.tc.wait(t, v.ID); fin.State != store.StatePassed {
		t.Fatalf("minisign-signed job %s: %s (the check before flashing must pass too)", fin.State, fin.Reason)
	}
	if a := e.submitParts(t, fw, ssh.sign(t, fw), nil); a.status != 201 {
		t.Errorf("SSH-signed beside a minisign key = %d %s", a.status, a.body)
	}
	bad := bytes.Clone(fw)
	bad[1] ^= 0x40
	for name, c := range map[string]struct {
		fw, sig []byte
		want    string
	}{
		"tampered":        {bad, mk.sign(t, fw, "x"), "does not match"},
		"other key":       {fw, other.sign(t, fw, "x"), other.id},
		"altered comment": {fw, bytes.Replace(mk.sign(t, fw, "build 7"), []byte("build 7"), []byte("build 8"), 1), "trusted comment was altered"},
	} {
		a := e.submitParts(t, c.fw, c.sig, nil)
		if a.status != 422 || !strings.Contains(string(a.body), c.want) || !strings.Contains(string(a.body), mk.id) {
			t.Errorf("%s = %d %s, want 422 with %q naming %s", name, a.status, a.body, c.want, mk.id)
		}
	}
	storedNothing(t, e, 2)
}
