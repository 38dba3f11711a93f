package minisig

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func minisign(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("minisign")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("minisign missing under CI (Debian minisign is in DEB_PACKAGES)")
		}
		t.Skip("minisign not installed (Debian package minisign)")
	}
	return p
}

func TestVerifyRealSignatures(t *testing.T) {
	ms := minisign(t)
	dir := t.TempDir()
	pub, sec, msg := filepath.Join(dir, "k.pub"), filepath.Join(dir, "k.key"), filepath.Join(dir, "fw.bin")
	data := []byte("firmware\x00bytes")
	os.WriteFile(msg, data, 0o644)
	if out, err := exec.Command(ms, "-G", "-W", "-p", pub, "-s", sec).CombinedOutput(); err != nil {
		t.Fatalf("minisign -G: %v\n%s", err, out)
	}
	if out, err := exec.Command(ms, "-S", "-s", sec, "-m", msg, "-t", "build 42").CombinedOutput(); err != nil {
		t.Fatalf("minisign -S: %v\n%s", err, out)
	}
	pubText, _ := os.ReadFile(pub)
	k, err := ParsePublicKey(string(pubText))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(k.Comment, k.KeyID()) {
		t.Errorf("key id %s not in minisign's comment %q", k.KeyID(), k.Comment)
	}
	raw, _ := os.ReadFile(msg + ".minisig")
	s, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	h := s.NewHash()
	h.Write(data)
	if err := s.Verify(k, h.Sum(nil)); err != nil || s.TrustedComment != "build 42" {
		t.Fatalf("Verify(good) = %v, comment %q", err, s.TrustedComment)
	}
	data[0] ^= 1
	h = s.NewHash()
	h.Write(data)
	if err := s.Verify(k, h.Sum(nil)); !errors.Is(err, ErrBadSignature) {
		t.Errorf("Verify(flipped byte) = %v", err)
	}
	data[0] ^= 1
	altered := strings.Replace(string(raw), "build 42", "build 43", 1)
	s2, _ := Parse([]byte(altered))
	h = s.NewHash()
	h.Write(data)
	if err := s2.Verify(k, h.Sum(nil)); !errors.Is(err, ErrBadSignature) {
		t.Errorf("Verify(altered trusted comment) = %v", err)
	}
	// Legacy (-l) signatures are refused.
	os.Remove(msg + ".minisig")
	if out, err := exec.Command(ms, "-S", "-l", "-s", sec, "-m", msg).CombinedOutput(); err != nil {
		t.Fatalf("minisign -S -l: %v\n%s", err, out)
	}
	raw, _ = os.ReadFile(msg + ".minisig")
	if _, err := Parse(raw); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "legacy") {
		t.Errorf("Parse(legacy) = %v", err)
	}
}

func TestParseHostile(t *testing.T) {
	for _, in := range []string{"", "x", strings.Repeat("a", MaxSize+1), "untrusted comment: x\n!!\ntrusted comment: y\nzz\n",
		"-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n"} {
		if _, err := Parse([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%.30q) = %v", in, err)
		}
	}
	for _, in := range []string{"", "RWQ", "ssh-ed25519 AAAA x", "a\nb\nc"} {
		if _, err := ParsePublicKey(in); err == nil {
			t.Errorf("ParsePublicKey(%q) accepted", in)
		}
	}
}
