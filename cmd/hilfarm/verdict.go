package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/hilfarm/hilfarm/farm"
	"github.com/hilfarm/hilfarm/internal/verdict"
	"github.com/hilfarm/hilfarm/specs"
)

func init() {
	register(command{name: "verify-verdict", summary: "check a job's signed verdict statement against the farm's public key", run: runVerifyVerdict})
	register(command{name: "verdict", summary: "download a finished job's signed verdict statement", run: runVerdict})
	register(command{name: "farm-key", summary: "print the farm's public verdict key (from the data dir or the server)", run: runFarmKey})
}

const verifyVerdictUsage = "hilfarm verify-verdict --key FARM.pub [--firmware FILE | --sha256 HEX] [--outcome passed] [--json] VERDICT.json"

// runVerifyVerdict checks a verdict offline: the signature under the farm
// key, then what the caller expects of it. Exit 0: valid and as expected;
// 1: invalid or not as expected.
func runVerifyVerdict(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("verify-verdict", verifyVerdictUsage,
		"Checks that VERDICT.json (from hilfarm verdict or GET /api/v1/jobs/ID/verdict)\n"+
			"was signed by the farm key and not altered, then that it is about the given\n"+
			"firmware and has the given outcome. Use it before promoting a build.", stderr)
	keyPath := fs.String("key", "", "the farm's public verdict key `file` (from hilfarm farm-key)")
	fwPath := fs.String("firmware", "", "require the verdict to be about this firmware `file` (its sha256)")
	sha := fs.String("sha256", "", "require the verdict to be about the firmware with this `digest`")
	outcome := fs.String("outcome", "passed", "require this `outcome` (empty: any)")
	spec := fs.String("spec", "", "require this spec `name`")
	asJSON := fs.Bool("json", false, "print the verified statement as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *keyPath == "" {
		return usageError("usage: %s", verifyVerdictUsage)
	}
	keyLine, err := os.ReadFile(*keyPath)
	if err != nil {
		return fmt.Errorf("farm key: %w", err)
	}
	pub, keyID, err := verdict.ParsePublicKey(keyLine)
	if err != nil {
		return err
	}
	env, err := readBounded(fs.Arg(0), verdict.MaxEnvelopeSize)
	if err != nil {
		return err
	}
	st, err := verdict.Verify(env, pub)
	if err != nil {
		return &exitError{code: exitFailed, msg: fmt.Sprintf("%s: %v", fs.Arg(0), err)}
	}
	want := strings.ToLower(strings.TrimPrefix(*sha, "sha256:"))
	if *fwPath != "" {
		f, err := os.Open(*fwPath)
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("firmware %s: %w", *fwPath, err)
		}
		got := hex.EncodeToString(h.Sum(nil))
		if want != "" && want != got {
			return usageError("--sha256 %s and --firmware %s (sha256 %s) disagree", want, *fwPath, got)
		}
		want = got
	}
	var problems []string
	if want != "" && st.Firmware.SHA256 != want {
		problems = append(problems, fmt.Sprintf("it is about firmware sha256:%s, not sha256:%s", st.Firmware.SHA256, want))
	}
	if *outcome != "" && st.Outcome != *outcome {
		problems = append(problems, fmt.Sprintf("its outcome is %s, not %s", st.Outcome, *outcome))
	}
	if *spec != "" && st.Spec.Name != *spec {
		problems = append(problems, fmt.Sprintf("its spec is %s, not %s", st.Spec.Name, *spec))
	}
	if *asJSON {
		b, _ := json.MarshalIndent(st, "", "  ")
		fmt.Fprintln(stdout, string(b))
	} else {
		signer := st.Candidate.SignatureStatus
		if st.Candidate.SignerKeyID != "" {
			signer = "signed by " + st.Candidate.SignerKeyID + " " + st.Candidate.SignerComment
		}
		fmt.Fprintf(stdout, "verdict signed by farm %s (%s)\njob %s: %s\nfirmware %s sha256:%s (%d bytes), %s\nspec %s sha256:%s on %s (%s)\nended %s\n",
			st.Farm, keyID, st.Job, st.Outcome, st.Firmware.Name, st.Firmware.SHA256, st.Firmware.Size, strings.TrimSpace(signer),
			st.Spec.Name, st.Spec.SHA256, st.Board, st.BoardType, st.Ended.Format("2006-01-02T15:04:05Z"))
	}
	if len(problems) > 0 {
		return &exitError{code: exitFailed, msg: "verdict is valid but not what was asked for: " + strings.Join(problems, "; ")}
	}
	return nil
}

func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, &exitError{code: exitFailed, msg: fmt.Sprintf("%s: larger than %d bytes: not a verdict", path, limit)}
	}
	return b, nil
}

const verdictUsage = "hilfarm verdict [--server URL] [--token T] [-o FILE] JOB"

func runVerdict(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("verdict", verdictUsage, "Downloads the signed verdict statement of a finished job (check it with hilfarm verify-verdict).", stderr)
	cf := addClientFlags(fs)
	out := fs.String("o", "", "write it to `file` instead of stdout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("usage: %s", verdictUsage)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	w := stdout
	var f *os.File
	if *out != "" {
		if f, err = os.CreateTemp(filepath.Dir(*out), ".verdict-*"); err != nil {
			return err
		}
		defer os.Remove(f.Name())
		defer f.Close()
		w = f
	}
	if err := c.download(ctx, "/api/v1/jobs/"+url.PathEscape(fs.Arg(0))+"/verdict", w); err != nil {
		return err
	}
	if f != nil {
		if err := f.Close(); err != nil {
			return err
		}
		return os.Rename(f.Name(), *out)
	}
	return nil
}

const farmKeyUsage = "hilfarm farm-key [--data DIR | --farm FILE | --server URL]"

// runFarmKey prints the farm's public verdict key: from the data dir (on
// the farm's host; the key is made there at the first serve) or from a
// running server.
func runFarmKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("farm-key", farmKeyUsage, "Prints the public key that verifies the farm's verdicts, in authorized_keys form.", stderr)
	data := fs.String("data", "", "data `dir` of the farm")
	farmFile := fs.String("farm", "", "farm `file` whose data_dir to use")
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("usage: %s", farmKeyUsage)
	}
	if *data == "" && *farmFile == "" {
		if *cf.server == "" {
			return usageError("give --data DIR, --farm FILE or --server URL")
		}
		c, err := cf.client()
		if err != nil {
			return err
		}
		return c.download(ctx, "/api/v1/verdict-key", stdout)
	}
	dir, name := *data, "farm"
	if *farmFile != "" {
		f, diags := specs.LoadFarm(*farmFile)
		if diags.HasErrors() {
			return fmt.Errorf("%s: %w", *farmFile, diags.Err())
		}
		dir, name = resolveDataDir(f, *data), f.Name
	}
	key, err := verdict.LoadOrCreateKey(filepath.Join(dir, farm.VerdictKeyFile))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no verdict key in %s: %w", dir, err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, verdict.PublicKeyLine(key, name))
	return nil
}
