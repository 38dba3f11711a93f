package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hilfarm/hilfarm/farm"
	"github.com/hilfarm/hilfarm/farm/store"
)

func init() {
	register(command{name: "token", summary: "create, list and revoke API tokens (on the server's data dir)", run: runToken})
}

const tokenUsage = "hilfarm token create --name NAME --role ROLE | list [--json] | revoke ID  [--data DIR | --farm FILE]"

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "create" && args[0] != "list" && args[0] != "revoke") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintf(stderr, "Usage: %s\n", tokenUsage)
			return errHelp
		}
		return usageError("usage: %s", tokenUsage)
	}
	sub := args[0]
	fs := newFlagSet("token "+sub, tokenUsage,
		"Manage API tokens directly in the store of a data dir (run it on the farm's\n"+
			"host, as the user that runs hilfarm serve). A token is shown once, when it is\n"+
			"created: only its SHA-256 is stored. Roles: "+strings.Join(farm.Roles, " < ")+".", stderr)
	loc := addStoreFlags(fs)
	name := fs.String("name", "", "token `name` (who or what uses it, e.g. ci-main)")
	role := fs.String("role", "", "token `role`: "+strings.Join(farm.Roles, ", "))
	asJSON := fs.Bool("json", false, "list: print JSON (the hash is never shown)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	db, err := loc.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	switch sub {
	case "create":
		if fs.NArg() != 0 || *name == "" || *role == "" {
			return usageError("usage: hilfarm token create --name NAME --role ROLE")
		}
		tok, t, err := farm.CreateToken(ctx, db, *name, *role, time.Now())
		if err != nil {
			return err
		}
		if err := db.Audit(ctx, auditRecord("cli", "token.create", t.ID, t.Name+" "+t.Role)); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "token %s (%s, role %s) created; it is shown only once:\n", t.ID, t.Name, t.Role)
		fmt.Fprintln(stdout, tok)
		return nil
	case "list":
		if fs.NArg() != 0 {
			return usageError("usage: hilfarm token list")
		}
		toks, err := db.Tokens(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			if toks == nil {
				toks = []store.Token{}
			}
			return writeJSON(stdout, toks)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tROLE\tCREATED\tLAST USED\tREVOKED")
		for _, t := range toks {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, fmtTime(t.Created), fmtTime(t.LastUsed), fmtTime(t.Revoked))
		}
		return tw.Flush()
	default: // revoke
		if fs.NArg() != 1 {
			return usageError("usage: hilfarm token revoke ID")
		}
		id := strings.TrimPrefix(fs.Arg(0), "hf_")
		id, _, _ = strings.Cut(id, "_") // a whole token works too
		if err := db.RevokeToken(ctx, id, time.Now()); err != nil {
			return err
		}
		if err := db.Audit(ctx, auditRecord("cli", "token.revoke", id, "")); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "token %s revoked\n", id)
		return nil
	}
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}
