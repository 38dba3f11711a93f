package main

import (
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/hilfarm/hilfarm/farm"
	"go.uber.org/goleak"
)

// TestCLIConvention checks the rules every command follows: flags before
// or after positional arguments, --version, --json carrying the API's
// fields, and a missing token that says what to do and exits 3.
func TestCLIConvention(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	s := startCLIServer(t)
	admin := s.tokens[farm.RoleAdmin]
	viewer := s.tokens[farm.RoleViewer]

	t.Run("--version and version", func(t *testing.T) {
		for _, args := range [][]string{{"--version"}, {"version"}} {
			code, out, _ := runCLI(args...)
			if code != 0 || !strings.HasPrefix(out, "hilfarm ") {
				t.Errorf("%v: exit %d, %q", args, code, out)
			}
		}
	})

	t.Run("flags after the positional argument", func(t *testing.T) {
		code, out, errs := runCLI("board", "sim-a", "--server", s.url, "--token", viewer, "--json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		var b map[string]any
		if err := json.Unmarshal([]byte(out), &b); err != nil {
			t.Fatalf("board --json: %v\n%s", err, out)
		}
		if b["name"] != "sim-a" || b["emulated"] != true {
			t.Errorf("board --json = %v, want name sim-a, emulated true", b)
		}
		code, _, errs = runCLI("board", "--server", s.url, "sim-a", "maintenance", "on", "--token", admin, "--reason", "rewiring")
		if code != 0 {
			t.Fatalf("maintenance on: exit %d: %s", code, errs)
		}
		code, out, errs = runCLI("board", "sim-a", "--token", viewer, "--server", s.url)
		if code != 0 || !strings.Contains(out, "rewiring") {
			t.Errorf("board after maintenance: exit %d, %q %s", code, out, errs)
		}
		if code, _, errs = runCLI("board", "sim-a", "maintenance", "off", "--server", s.url, "--token", admin); code != 0 {
			t.Errorf("maintenance off: exit %d: %s", code, errs)
		}
	})

	t.Run("boards --json keeps every API field", func(t *testing.T) {
		code, out, errs := runCLI("boards", "--json", "--server", s.url, "--token", viewer)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		var bs []map[string]any
		if err := json.Unmarshal([]byte(out), &bs); err != nil || len(bs) != 2 {
			t.Fatalf("boards --json: %v\n%s", err, out)
		}
		for _, b := range bs {
			if _, ok := b["emulated"]; !ok {
				t.Errorf("board %v: no emulated field", b["name"])
			}
		}
	})

	t.Run("token list --json", func(t *testing.T) {
		code, out, errs := runCLI("token", "list", "--data", s.dataDir, "--json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		var toks []map[string]any
		if err := json.Unmarshal([]byte(out), &toks); err != nil || len(toks) != len(farm.Roles) {
			t.Fatalf("token list --json: %v\n%s", err, out)
		}
		if _, ok := toks[0]["role"]; !ok || strings.Contains(out, "hash") {
			t.Errorf("token list --json: %s", out)
		}
	})

	t.Run("validate --json, flags after files", func(t *testing.T) {
		code, out, errs := runCLI("validate", examples+"/specs/boot-smoke.hcl", "--farm", examples+"/farm.hcl", "--json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		var rs []map[string]any
		if err := json.Unmarshal([]byte(out), &rs); err != nil || len(rs) != 2 {
			t.Fatalf("validate --json: %v\n%s", err, out)
		}
		if rs[0]["kind"] != "farm" || rs[1]["kind"] != "spec" || rs[1]["valid"] != true || rs[1]["matching_boards"] == nil {
			t.Errorf("validate --json = %s", out)
		}
	})

	t.Run("a missing token names --token and exits 3", func(t *testing.T) {
		code, _, errs := runCLI("boards", "--server", s.url)
		if code != exitRejected || !strings.Contains(errs, "--token") || !strings.Contains(errs, "HILFARM_TOKEN") {
			t.Errorf("exit %d, stderr %q; want 3 and a hint naming --token and HILFARM_TOKEN", code, errs)
		}
		code, _, errs = runCLI("board", "sim-a", "maintenance", "on", "--reason", "x", "--server", s.url, "--token", viewer)
		if code != exitRejected || !strings.Contains(errs, "role") {
			t.Errorf("viewer maintenance: exit %d, stderr %q; want 3 and a hint about the role", code, errs)
		}
	})

	t.Run("an unknown flag anywhere is a usage error naming it", func(t *testing.T) {
		code, _, errs := runCLI("board", "sim-a", "--bogus", "--server", s.url)
		if code != exitInfra || !strings.Contains(errs, "bogus") {
			t.Errorf("exit %d, stderr %q", code, errs)
		}
	})
}

func TestLogFormats(t *testing.T) {
	for _, c := range []struct {
		format, journal, want string
	}{
		{"json", "", `"msg":"hello"`},
		{"text", "8:1", "level=INFO msg=hello"},
		{"auto", "", "level=INFO msg=hello"},
		{"auto", "8:1", "<6>level=INFO msg=hello"},
	} {
		t.Setenv("JOURNAL_STREAM", c.journal)
		t.Setenv("INVOCATION_ID", c.journal)
		var b strings.Builder
		log, err := newLoggerFormat(&b, "info", c.format)
		if err != nil {
			t.Fatal(err)
		}
		log.Debug("hidden")
		log.Info("hello")
		if !strings.Contains(b.String(), c.want) || strings.Contains(b.String(), "hidden") {
			t.Errorf("format %s, journal %q: %q, want %q", c.format, c.journal, b.String(), c.want)
		}
		if c.journal != "" && c.format == "auto" && strings.Contains(b.String(), "time=") {
			t.Errorf("under systemd the journal stamps the time: %q", b.String())
		}
	}
	if _, err := newLoggerFormat(io.Discard, "loud", "text"); err == nil {
		t.Error("--log-level loud accepted")
	}
	if _, err := newLoggerFormat(io.Discard, "info", "xml"); err == nil {
		t.Error("--log-format xml accepted")
	}
}
