package specs

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// golden compares got with the golden file, or rewrites it under -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./specs -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func loadExampleFarm(t *testing.T) *Farm {
	t.Helper()
	f, d := LoadFarm("../examples/farm.hcl")
	if d.HasErrors() {
		t.Fatalf("LoadFarm(examples/farm.hcl): %v", d.Err())
	}
	return f
}

// TestExamples decodes every example and compares its stable JSON form
// with testdata/examples/*.json.
func TestExamples(t *testing.T) {
	farm := loadExampleFarm(t)
	golden(t, "testdata/examples/farm.json", mustJSON(t, farm))

	files, _ := filepath.Glob("../examples/specs/*.hcl")
	if len(files) < 6 {
		t.Fatalf("found %d example specs, want at least 6", len(files))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			s, d := LoadSpec(f, SpecOptions{Farm: farm})
			if d.Len() > 0 {
				t.Fatalf("LoadSpec(%s): %v", f, (&Error{Diagnostics: d}).Error())
			}
			if len(farm.Match(s.Board)) == 0 {
				t.Errorf("%s: no board of the example farm matches", f)
			}
			golden(t, "testdata/examples/"+strings.TrimSuffix(name, ".hcl")+".json", mustJSON(t, s))
		})
	}
}

// TestGood decodes the valid inputs of testdata/good (JSON syntax among them).
func TestGood(t *testing.T) {
	farm := loadExampleFarm(t)
	files, _ := filepath.Glob("testdata/good/*.hcl*")
	for _, f := range files {
		if strings.HasSuffix(f, ".golden.json") {
			continue
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var v any
			var d Diagnostics
			if Sniff(src, f) == KindFarm {
				v, d = ParseFarm(src, f)
			} else {
				v, d = ParseSpec(src, f, SpecOptions{Farm: farm})
			}
			if d.Len() > 0 {
				t.Fatalf("%s: %v", f, (&Error{Diagnostics: d}).Error())
			}
			golden(t, f+".golden.json", mustJSON(t, v))
		})
	}
}

// TestJSONSyntax checks that the JSON twin of an example decodes to the
// same steps, in the same order, with the same values.
func TestJSONSyntax(t *testing.T) {
	farm := loadExampleFarm(t)
	h, d := LoadSpec("../examples/specs/boot-smoke.hcl", SpecOptions{Farm: farm})
	if d.HasErrors() {
		t.Fatal(d.Err())
	}
	j, d := LoadSpec("testdata/good/boot-smoke.hcl.json", SpecOptions{Farm: farm})
	if d.HasErrors() {
		t.Fatal(d.Err())
	}
	// Ranges and source text differ between the syntaxes; compare what the runner sees.
	summary := func(s *Spec) []string {
		out := []string{s.Name, s.Description, s.Board.Type, s.Timeout.String(), s.IdleTimeout.String()}
		sc := &Scope{Firmware: Firmware{Version: "1.0"}, Captures: map[string]string{"banner_version": "9.9"}}
		for _, p := range s.FailOn {
			m, err := p.Compile(sc)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, "fail_on "+m.String())
		}
		for _, st := range s.AllSteps() {
			line := string(st.Kind)
			switch {
			case st.Expect != nil:
				m, err := st.Expect.Pattern.Compile(sc)
				if err != nil {
					t.Fatal(err)
				}
				line += " " + m.String() + " " + st.Expect.Within.String() + " " + st.Expect.Capture
			case st.Send != nil:
				b, err := st.Send.Bytes(sc, s.LineEnding)
				if err != nil {
					t.Fatal(err)
				}
				line += " " + string(b)
			case st.Power != nil:
				line += " " + st.Power.Action
			}
			out = append(out, line)
		}
		return out
	}
	if diff := cmp.Diff(summary(h), summary(j)); diff != "" {
		t.Errorf("boot-smoke.hcl and boot-smoke.hcl.json differ (-hcl +json):\n%s", diff)
	}
}

// TestBad checks the exact diagnostics of every invalid input in
// testdata/bad: specs are checked against the example farm, or the farm
// named on a first line "# farm: PATH" (relative to testdata/).
func TestBad(t *testing.T) {
	farm := loadExampleFarm(t)
	files, _ := filepath.Glob("testdata/bad/*.hcl*")
	var inputs []string
	for _, f := range files {
		if !strings.HasSuffix(f, ".txt") {
			inputs = append(inputs, f)
		}
	}
	if len(inputs) < 25 {
		t.Fatalf("found %d bad inputs, want at least 25", len(inputs))
	}
	for _, f := range inputs {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var d Diagnostics
			if strings.HasPrefix(filepath.Base(f), "farm-") {
				var fm *Farm
				fm, d = ParseFarm(src, f)
				if fm != nil {
					t.Errorf("ParseFarm(%s) returned a farm despite errors", f)
				}
			} else {
				against := farm
				if first, _, _ := strings.Cut(string(src), "\n"); strings.HasPrefix(first, "# farm: ") {
					against, d = LoadFarm(filepath.Join("testdata", strings.TrimPrefix(first, "# farm: ")))
					if d.HasErrors() {
						t.Fatal(d.Err())
					}
				}
				var s *Spec
				s, d = ParseSpec(src, f, SpecOptions{Farm: against})
				if s != nil {
					t.Errorf("ParseSpec(%s) returned a spec despite errors", f)
				}
			}
			if !d.HasErrors() {
				t.Fatalf("%s: no error reported", f)
			}
			var buf bytes.Buffer
			if err := d.WriteText(&buf, 78, false); err != nil {
				t.Fatal(err)
			}
			golden(t, f+".txt", buf.Bytes())
		})
	}
}
