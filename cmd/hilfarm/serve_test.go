package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hilfarm/hilfarm/specs"
)

// A port in use stops serve before it creates anything in the data dir.
func TestServePortTakenCreatesNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	farmPath := filepath.Join(dir, "farm.hcl")
	if err := os.WriteFile(farmPath, []byte(cliTestFarm), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	code, _, errs := runCLI("serve", "--farm", farmPath, "--data", data, "--listen", ln.Addr().String())
	if code != exitInfra || !strings.Contains(errs, "--listen") {
		t.Errorf("exit %d, stderr %q; want 2 and a hint naming --listen", code, errs)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("data dir %s exists after a failed bind (err %v)", data, err)
	}
}

// Without --data, a farm data_dir this user cannot write gives way to a
// per-user state dir, which serve then prints with the URL and the command
// for a first admin token.
func TestServeNewcomerPath(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "not-a-dir")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	farmPath := filepath.Join(dir, "farm.hcl")
	src := strings.Replace(cliTestFarm, "anonymous_read = false", "anonymous_read = false\n  data_dir = \""+blocker+"/data\"", 1)
	if err := os.WriteFile(farmPath, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	t.Setenv("XDG_STATE_HOME", state)
	t.Setenv("INVOCATION_ID", "")
	f, diags := specs.LoadFarm(farmPath)
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	got, err := serveDataDir(f, "")
	if want := filepath.Join(state, "hilfarm", "cli-test"); err != nil || got != want {
		t.Fatalf("serveDataDir = %q, %v; want %q", got, err, want)
	}
	if got, err := serveDataDir(f, "/x"); got != "/x" || err != nil {
		t.Errorf("--data /x gave %q, %v", got, err)
	}
	// Under systemd the data never moves silently.
	t.Setenv("INVOCATION_ID", "abc")
	if _, err := serveDataDir(f, ""); err == nil || !strings.Contains(err.Error(), "--data") {
		t.Errorf("under systemd: %v, want an error naming --data", err)
	}
	t.Setenv("INVOCATION_ID", "")

	// The banner.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := newWatched()
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, serveConfig{farm: f, dataDir: got, ln: ln, log: slog.New(slog.DiscardHandler), stdout: out, banner: true})
	}()
	out.waitFor(t, 0, "--role admin\n")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	for _, want := range []string{"URL:     http://" + ln.Addr().String(), "data:    " + got, "2 of them emulated", "hilfarm token create --data " + got + " --name admin --role admin"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, out.String())
		}
	}
}
