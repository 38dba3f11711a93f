package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hilfarm/hilfarm/rack"
)

// Farm CA and rack credentials for multi-rack farms (docs/racks.md). These
// commands only write files; the hub and rack agents that use them are in
// package rack and are not yet started by `hilfarm serve`.

func init() {
	register(command{name: "ca", summary: "create the farm CA and the hub's leaf certificate (multi-rack farms)", run: runCA})
	register(command{name: "rack", summary: "add, list and revoke rack credentials (multi-rack farms)", run: runRack})
}

const caUsage = "hilfarm ca init --dir DIR --host HOST[,HOST...]"

func runCA(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "init" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintf(stderr, "Usage: %s\n", caUsage)
			return errHelp
		}
		return usageError("usage: %s", caUsage)
	}
	fs := newFlagSet("ca init", caUsage,
		"Create a farm CA in DIR (ca.pem, ca-key.pem) and sign the hub's leaf-listener\n"+
			"certificate (hub.pem, hub-key.pem) for the given host names or IP addresses.", stderr)
	dir := fs.String("dir", "", "farm CA `directory` (created; keep ca-key.pem private)")
	hosts := fs.String("host", "", "comma-separated `names` racks use to reach the hub")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *dir == "" || *hosts == "" || fs.NArg() != 0 {
		return usageError("usage: %s", caUsage)
	}
	ca, err := rack.NewCA("hilfarm farm CA")
	if err != nil {
		return err
	}
	if err := ca.Save(*dir); err != nil {
		return err
	}
	cert, key, err := ca.Issue("hub", splitList(*hosts))
	if err != nil {
		return err
	}
	if err := writeSecret(filepath.Join(*dir, rack.HubCertFile), cert, 0o644); err != nil {
		return err
	}
	if err := writeSecret(filepath.Join(*dir, rack.HubKeyFile), key, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "farm CA and hub certificate written to %s\n", *dir)
	return nil
}

const rackUsage = "hilfarm rack add NAME --type T[,T...] | list | revoke NAME  --dir DIR"

func runRack(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "add" && args[0] != "list" && args[0] != "revoke") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintf(stderr, "Usage: %s\n", rackUsage)
			return errHelp
		}
		return usageError("usage: %s", rackUsage)
	}
	sub := args[0]
	fs := newFlagSet("rack "+sub, rackUsage,
		"Rack credentials live in DIR/racks/NAME.json (the hub's side: board types and\n"+
			"a bcrypt of the password). 'add' also writes DIR/bundles/NAME/ (ca.pem,\n"+
			"rack.pem, rack-key.pem, password) to copy to the rack. 'revoke' marks the\n"+
			"rack revoked; a running hub applies it with Hub.Reload without restarting.", stderr)
	dir := fs.String("dir", "", "farm CA `directory` (from hilfarm ca init)")
	types := fs.String("type", "", "add: comma-separated board `types` the rack has")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *dir == "" {
		return usageError("usage: %s", rackUsage)
	}
	racksDir := filepath.Join(*dir, "racks")
	switch sub {
	case "list":
		recs, err := rack.LoadRecords(racksDir)
		if err != nil {
			return err
		}
		for _, r := range recs {
			state := "active"
			if r.Revoked {
				state = "revoked"
			}
			fmt.Fprintf(stdout, "%s\t%s\t%s\n", r.Name, strings.Join(r.Types, ","), state)
		}
		return nil
	case "revoke":
		if fs.NArg() != 1 {
			return usageError("usage: hilfarm rack revoke NAME --dir DIR")
		}
		name := fs.Arg(0)
		recs, err := rack.LoadRecords(racksDir)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Name == name {
				r.Revoked = true
				if err := rack.SaveRecord(racksDir, r); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "rack %s revoked\n", name)
				return nil
			}
		}
		return &exitError{code: exitRejected, msg: fmt.Sprintf("no rack %q in %s", name, racksDir)}
	}
	// add
	if fs.NArg() != 1 || *types == "" {
		return usageError("usage: hilfarm rack add NAME --type T[,T...] --dir DIR")
	}
	name := fs.Arg(0)
	if err := rack.CheckName("rack", name); err != nil {
		return &exitError{code: exitRejected, msg: err.Error()}
	}
	if _, err := os.Stat(filepath.Join(racksDir, name+".json")); err == nil {
		return &exitError{code: exitRejected, msg: fmt.Sprintf("rack %s already exists (revoke it and pick a new name)", name)}
	}
	ca, err := rack.LoadCA(*dir)
	if err != nil {
		return err
	}
	pw, hash, err := rack.NewPassword()
	if err != nil {
		return err
	}
	rec := rack.Record{Name: name, Types: splitList(*types), PassHash: hash}
	cert, key, err := ca.Issue("rack-"+name, nil)
	if err != nil {
		return err
	}
	bundle := filepath.Join(*dir, "bundles", name)
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return fmt.Errorf("rack %s: %w", name, err)
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"ca.pem", ca.PEM, 0o644}, {"rack.pem", cert, 0o644}, {"rack-key.pem", key, 0o600}, {"password", []byte(pw + "\n"), 0o600},
	} {
		if err := writeSecret(filepath.Join(bundle, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	if err := rack.SaveRecord(racksDir, rec); err != nil {
		return &exitError{code: exitRejected, msg: err.Error()}
	}
	fmt.Fprintf(stdout, "rack %s added (types %s); copy %s to the rack\n", name, strings.Join(rec.Types, ","), bundle)
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func writeSecret(path string, data []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
