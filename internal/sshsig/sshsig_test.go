package sshsig

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ssh"
)

// sshKeygen signs with the real ssh-keygen; CI installs openssh-client.
func sshKeygen(t *testing.T) string {
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

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func TestVerifyRealSignatures(t *testing.T) {
	kg := sshKeygen(t)
	dir := t.TempDir()
	msg := []byte("firmware image bytes\x00\x01\x02")
	fw := filepath.Join(dir, "fw.bin")
	os.WriteFile(fw, msg, 0o644)
	for _, kt := range []struct{ typ, hash string }{{"ed25519", "sha512"}, {"ed25519", "sha256"}, {"ecdsa", "sha512"}, {"rsa", "sha256"}} {
		t.Run(kt.typ+"-"+kt.hash, func(t *testing.T) {
			key := filepath.Join(dir, kt.typ+kt.hash)
			args := []string{"-q", "-t", kt.typ, "-N", "", "-C", "ci@build", "-f", key}
			if kt.typ == "rsa" {
				args = append(args, "-b", "2048")
			}
			run(t, kg, args...)
			os.Remove(fw + ".sig")
			run(t, kg, "-Y", "sign", "-q", "-n", "hilfarm", "-f", key, "-O", "hashalg="+kt.hash, fw)
			armored, _ := os.ReadFile(fw + ".sig")
			sig, err := Parse(armored)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			pubLine, _ := os.ReadFile(key + ".pub")
			pub, _, _, _, err := ssh.ParseAuthorizedKey(pubLine)
			if err != nil {
				t.Fatal(err)
			}
			if sig.HashAlg != kt.hash {
				t.Errorf("HashAlg = %q, want %q", sig.HashAlg, kt.hash)
			}
			h := sig.NewHash()
			h.Write(msg)
			if err := sig.Verify(pub, "hilfarm", h.Sum(nil)); err != nil {
				t.Fatalf("Verify(good) = %v", err)
			}
			if err := sig.Verify(pub, "file", h.Sum(nil)); !errors.Is(err, ErrBadSignature) {
				t.Errorf("Verify(other namespace) = %v, want ErrBadSignature", err)
			}
			bad := append([]byte{}, msg...)
			bad[3] ^= 1
			h = sig.NewHash()
			h.Write(bad)
			if err := sig.Verify(pub, "hilfarm", h.Sum(nil)); !errors.Is(err, ErrBadSignature) {
				t.Errorf("Verify(flipped byte) = %v, want ErrBadSignature", err)
			}
		})
	}
}

func TestParseHostile(t *testing.T) {
	for name, in := range map[string][]byte{
		"empty":     nil,
		"huge":      make([]byte, MaxArmoredSize+1),
		"no armor":  []byte("hello"),
		"bad b64":   []byte(armorBegin + "\n!!!!\n" + armorEnd),
		"no magic":  []byte(armorBegin + "\nQUJDREVG\n" + armorEnd),
		"truncated": []byte(armorBegin + "\nU1NIU0lHAAAAAQ==\n" + armorEnd),
		"minisign":  []byte("untrusted comment: signature from minisign secret key\nRWQf6LRCGA9i59SLOFxz6NxvASXDJeRtuZykwQepbDEGt87ig1BNpWaVWuNrm73YiIiJbq71Wi+dP9eKL8OC351vwIasSSbXxwA=\n"),
	} {
		if _, err := Parse(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%s) = %v, want ErrMalformed", name, err)
		}
	}
}
