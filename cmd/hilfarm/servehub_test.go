package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/specs"
)

// A hub block whose directory lacks the CA files stops serve at start with
// a message naming the file and the command that writes it, before the
// data dir is created; a bad rack record stops it naming the record.
func TestServeHubBlockErrors(t *testing.T) {
	dir := t.TempDir()
	farmPath := filepath.Join(dir, "farm.hcl")
	if err := os.WriteFile(farmPath, []byte(cliTestFarm+"hub {\n  listen = \"127.0.0.1:1\"\n  dir = \"farmca\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	code, _, errs := runCLI("serve", "--farm", farmPath, "--data", data, "--listen", "127.0.0.1:0")
	if code == 0 || !strings.Contains(errs, filepath.Join(dir, "farmca", "ca.pem")) || !strings.Contains(errs, "hilfarm ca init") {
		t.Errorf("missing CA: exit %d, stderr %q; want an error naming farmca/ca.pem and hilfarm ca init", code, errs)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("data dir %s exists after a refused start (err %v)", data, err)
	}

	ca := filepath.Join(dir, "farmca")
	if code, _, errs := runCLI("ca", "init", "--dir", ca, "--host", "127.0.0.1"); code != 0 {
		t.Fatalf("ca init: exit %d: %s", code, errs)
	}
	if err := os.MkdirAll(filepath.Join(ca, "racks"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ca, "racks", "r9.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runCLI("serve", "--farm", farmPath, "--data", data, "--listen", "127.0.0.1:0")
	if code == 0 || !strings.Contains(errs, "r9.json") {
		t.Errorf("bad rack record: exit %d, stderr %q; want an error naming r9.json", code, errs)
	}
}

// With a hub block serve runs the hub: its leaf listener accepts TLS
// connections on the block's address while serve runs, its JetStream store
// is under <data>/hub, and both are gone when serve returns.
func TestServeHubBlockStartsHub(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "farmca")
	if code, _, errs := runCLI("ca", "init", "--dir", ca, "--host", "127.0.0.1"); code != 0 {
		t.Fatalf("ca init: exit %d: %s", code, errs)
	}
	if code, _, errs := runCLI("rack", "add", "r1", "--type", "sim", "--dir", ca); code != 0 {
		t.Fatalf("rack add: exit %d: %s", code, errs)
	}
	leaf, err := net.Listen("tcp", "127.0.0.1:0") // a free port for the hub
	if err != nil {
		t.Fatal(err)
	}
	leafAddr := leaf.Addr().String()
	leaf.Close()
	farmPath := filepath.Join(dir, "farm.hcl")
	if err := os.WriteFile(farmPath, []byte(cliTestFarm+"hub {\n  listen = \""+leafAddr+"\"\n  dir = \"farmca\"\n}\n"), 0o644); err != nil {
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
	data := filepath.Join(dir, "data")
	var logb strings.Builder
	err = serve(context.Background(), serveConfig{farm: f, dataDir: data, ln: ln, log: slog.New(slog.NewTextHandler(&logb, nil)), stdout: io.Discard,
		ready: func(context.Context, string, *store.DB) error {
			c, err := net.Dial("tcp", leafAddr)
			if err != nil {
				t.Errorf("hub leaf listener %s while serving: %v", leafAddr, err)
			} else {
				c.Close()
			}
			return errStopServe
		}})
	if err != errStopServe {
		t.Fatalf("serve: %v\n%s", err, logb.String())
	}
	if st, err := os.Stat(filepath.Join(data, "hub", "nats")); err != nil || !st.IsDir() {
		t.Errorf("hub JetStream store %s/hub/nats: %v", data, err)
	}
	if !strings.Contains(logb.String(), "hub started") {
		t.Errorf("no 'hub started' in the log:\n%s", logb.String())
	}
	if c, err := net.Dial("tcp", leafAddr); err == nil {
		c.Close()
		t.Errorf("hub leaf listener %s still accepts after serve returned", leafAddr)
	}
}
