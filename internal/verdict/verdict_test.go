package verdict

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "verdict-key.pem")
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("new key mode %v, want 0600", fi.Mode().Perm())
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil || !k1.Equal(k2) {
		t.Fatalf("reloaded key differs: %v", err)
	}
	os.Chmod(path, 0o644)
	if _, err := LoadOrCreateKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key accepted: %v", err)
	}
	os.Chmod(path, 0o600)
	os.WriteFile(path, []byte("garbage"), 0o600)
	if _, err := LoadOrCreateKey(path); err == nil {
		t.Error("garbage key accepted")
	}
}

func TestSignVerify(t *testing.T) {
	key, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "k.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pub, _, err := ParsePublicKey([]byte(PublicKeyLine(key, "lab")))
	if err != nil {
		t.Fatal(err)
	}
	st := &Statement{Farm: "lab", Job: "j1", Firmware: Firmware{SHA256: strings.Repeat("a", 64), Size: 3}, Outcome: "passed", Ended: time.Unix(1, 0).UTC()}
	env, err := Sign(key, st)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(env)
	got, err := Verify(b, pub)
	if err != nil || got.Job != "j1" || got.Outcome != "passed" {
		t.Fatalf("Verify = %+v, %v", got, err)
	}
	payload, _ := base64.StdEncoding.DecodeString(env.Payload)
	env.Payload = base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(payload), "passed", "failed", 1)))
	b, _ = json.Marshal(env)
	if _, err := Verify(b, pub); !errors.Is(err, ErrInvalid) {
		t.Errorf("Verify(altered outcome) = %v, want ErrInvalid", err)
	}
	for _, bad := range []string{``, `{}`, `[]`, `{"payload_type":"` + PayloadType + `","payload":"!","key_id":"","signature":""}`, `{"x":1}`} {
		if _, err := Verify([]byte(bad), pub); !errors.Is(err, ErrInvalid) {
			t.Errorf("Verify(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}
