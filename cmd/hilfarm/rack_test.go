package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hilfarm/hilfarm/rack"
)

// ca init + rack add write a CA whose certificates verify, a hub-side
// record with a bcrypt (not the password) and a bundle; revoke marks it.
func TestRackCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	ctx := context.Background()
	var out, errb bytes.Buffer
	if code := run(ctx, []string{"ca", "init", "--dir", dir, "--host", "127.0.0.1,hub.lab"}, &out, &errb); code != 0 {
		t.Fatalf("ca init: %d %s", code, errb.String())
	}
	if code := run(ctx, []string{"ca", "init", "--dir", dir, "--host", "x"}, &out, &errb); code == 0 {
		t.Fatal("ca init overwrote an existing CA")
	}
	if code := run(ctx, []string{"rack", "add", "r1", "--type", "stm32,esp32", "--dir", dir}, &out, &errb); code != 0 {
		t.Fatalf("rack add: %d %s", code, errb.String())
	}
	if code := run(ctx, []string{"rack", "add", "Bad/Name", "--type", "stm32", "--dir", dir}, &out, &errb); code != exitRejected {
		t.Fatalf("bad rack name: exit %d", code)
	}
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	caPEM := read(filepath.Join(dir, "ca.pem"))
	b := filepath.Join(dir, "bundles", "r1")
	pw := strings.TrimSpace(string(read(filepath.Join(b, "password"))))
	if _, err := rack.HubTLS(caPEM, read(filepath.Join(dir, rack.HubCertFile)), read(filepath.Join(dir, rack.HubKeyFile))); err != nil {
		t.Fatal(err)
	}
	if _, err := rack.RackTLS(read(filepath.Join(b, "ca.pem")), read(filepath.Join(b, "rack.pem")), read(filepath.Join(b, "rack-key.pem")), "hub.lab"); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(filepath.Join(b, "rack-key.pem")); st.Mode().Perm() != 0o600 {
		t.Errorf("rack key mode %v", st.Mode().Perm())
	}
	recs, err := rack.LoadRecords(filepath.Join(dir, "racks"))
	if err != nil || len(recs) != 1 || recs[0].Revoked || strings.Contains(recs[0].PassHash, pw) {
		t.Fatalf("records %+v %v", recs, err)
	}
	if code := run(ctx, []string{"rack", "revoke", "r1", "--dir", dir}, &out, &errb); code != 0 {
		t.Fatalf("revoke: %d %s", code, errb.String())
	}
	if recs, _ = rack.LoadRecords(filepath.Join(dir, "racks")); !recs[0].Revoked {
		t.Fatal("not revoked")
	}
}
