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

// A rack block whose credentials bundle is missing stops serve at start
// with a message naming the file and the command that writes it, before
// anything is created; a bad hub URL is a diagnostic at its position.
func TestServeRackBlockErrors(t *testing.T) {
	dir := t.TempDir()
	farmPath := filepath.Join(dir, "farm.hcl")
	write := func(rack string) {
		if err := os.WriteFile(farmPath, []byte(cliTestFarm+rack), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "data")
	write("rack \"r1\" {\n  hub         = \"tls://127.0.0.1:7422\"\n  credentials = \"bundles/r1\"\n}\n")
	code, _, errs := runCLI("serve", "--farm", farmPath, "--data", data, "--listen", "127.0.0.1:0")
	if code == 0 || !strings.Contains(errs, "rack r1: credentials") || !strings.Contains(errs, filepath.Join(dir, "bundles", "r1", "ca.pem")) ||
		!strings.Contains(errs, "hilfarm rack add r1") {
		t.Errorf("missing bundle: exit %d, stderr %q; want an error naming the missing ca.pem and hilfarm rack add r1", code, errs)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("data dir %s exists after a refused start (err %v)", data, err)
	}

	write("rack \"r1\" {\n  hub         = \"hub.lab:7422\"\n  credentials = \"bundles/r1\"\n}\n")
	code, _, errs = runCLI("serve", "--farm", farmPath, "--data", data, "--listen", "127.0.0.1:0")
	if code != exitInfra || !strings.Contains(errs, "Invalid hub URL") || !strings.Contains(errs, "farm.hcl:23:17") {
		t.Errorf("bad hub URL: exit %d, stderr %q; want 2 and the diagnostic at farm.hcl:23:17", code, errs)
	}
}

// Without a rack or hub block serve starts no rack agent and no hub:
// nothing under <data>/rack or <data>/hub, neither in the log.
func TestServeWithoutRackBlock(t *testing.T) {
	dir := t.TempDir()
	farmPath := filepath.Join(dir, "farm.hcl")
	if err := os.WriteFile(farmPath, []byte(cliTestFarm), 0o644); err != nil {
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
		ready: func(context.Context, string, *store.DB) error { return errStopServe }})
	if err != errStopServe {
		t.Fatalf("serve: %v", err)
	}
	if _, err := os.Stat(filepath.Join(data, "rack")); !os.IsNotExist(err) {
		t.Errorf("%s/rack exists without a rack block (err %v)", data, err)
	}
	if _, err := os.Stat(filepath.Join(data, "hub")); !os.IsNotExist(err) {
		t.Errorf("%s/hub exists without a hub block (err %v)", data, err)
	}
	if strings.Contains(logb.String(), "rack agent") || strings.Contains(logb.String(), "hub started") {
		t.Errorf("a rack agent was started without a rack block:\n%s", logb.String())
	}
}

var errStopServe = &exitError{code: 9, msg: "test: stop"}
