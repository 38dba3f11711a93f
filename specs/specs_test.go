package specs

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func parseSpec(t *testing.T, src string, opts SpecOptions) *Spec {
	t.Helper()
	s, d := ParseSpec([]byte(src), "test.hcl", opts)
	if d.HasErrors() {
		t.Fatalf("ParseSpec: %v", d.Err())
	}
	return s
}

// specErr parses src and returns its error diagnostics as "line:col summary" lines.
func specErr(t *testing.T, src string, opts SpecOptions) []string {
	t.Helper()
	s, d := ParseSpec([]byte(src), "test.hcl", opts)
	if !d.HasErrors() || s != nil {
		t.Fatalf("ParseSpec(%q) = %v, no error; want errors", src, s)
	}
	var out []string
	for _, x := range d.List() {
		if x.Range != nil {
			out = append(out, strings.Join([]string{itoa(x.Range.Start.Line) + ":" + itoa(x.Range.Start.Column), x.Summary}, " "))
		} else {
			out = append(out, x.Summary)
		}
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

const minimalSpec = `
spec "m" {
  board { type = "sim" }
  test "t" {
    expect { text = "x" }
    measure "v" {
      regex = "v=(\\d+)"
    }
    wait {
      gpio = "led"
    }
  }
}
`

func TestSpecDefaults(t *testing.T) {
	s := parseSpec(t, minimalSpec, SpecOptions{})
	if s.Timeout != 10*time.Minute || s.IdleTimeout != 0 || s.LineEnding != "\n" {
		t.Errorf("spec defaults: timeout %v idle %v line ending %q; want 10m, 0, \\n", s.Timeout, s.IdleTimeout, s.LineEnding)
	}
	st := s.Tests[0].Steps
	if got := st[0].Expect.Within; got != 10*time.Second {
		t.Errorf("expect within = %v, want 10s", got)
	}
	if m := st[1].Measure; m.Within != 10*time.Second || m.Group != 1 {
		t.Errorf("measure within %v group %d, want 10s and 1", m.Within, m.Group)
	}
	if w := st[2].Wait; w.Within != 10*time.Second || w.Value != 1 || w.GPIO != "led" {
		t.Errorf("wait = %+v, want gpio led value 1 within 10s", w)
	}
}

func TestFarmDefaults(t *testing.T) {
	src := `
farm "f" {}
board_type "t" {
  flash "command" {
    run = ["x", firmware.path]
  }
  tool "u" {
    run = ["y"]
  }
}
board "b" {
  type = "t"
  power "gpio" {
    line = 3
  }
  console "serial" {
    port = "/dev/serial/by-id/x"
  }
}
board "q" {
  type = "q"
  emulator "qemu" {
    machine = "virt"
  }
}
board_type "q" {}
`
	f, d := ParseFarm([]byte(src), "farm.hcl")
	if d.HasErrors() {
		t.Fatal(d.Err())
	}
	if f.Listen != ":8080" || f.DataDir != "/var/lib/hilfarm" || f.MaxUploadBytes != 64<<20 {
		t.Errorf("farm defaults: %q %q %d", f.Listen, f.DataDir, f.MaxUploadBytes)
	}
	bt := f.BoardType("t")
	if bt.Flash.Timeout != 5*time.Minute || bt.Tools[0].Timeout != time.Minute {
		t.Errorf("flash timeout %v, tool timeout %v; want 5m and 1m", bt.Flash.Timeout, bt.Tools[0].Timeout)
	}
	b := f.Board("b")
	want := Console{Port: "/dev/serial/by-id/x", Baud: 115200, DataBits: 8, Parity: "none", StopBits: "1"}
	if diff := cmp.Diff(want, *b.Console); diff != "" {
		t.Errorf("console defaults (-want +got):\n%s", diff)
	}
	if g := b.Power.GPIO; g.Line != "3" || g.OffFor != time.Second || g.ActiveLow {
		t.Errorf("gpio power = %+v, want line 3, off_for 1s", g)
	}
	if q := f.Board("q").Emulator.QEMU; q.Binary != "qemu-system-arm" || q.Load != "bios" {
		t.Errorf("qemu defaults = %+v", q)
	}
	if !f.CanFlash(b) || !f.CanFlash(f.Board("q")) {
		t.Error("CanFlash = false for a board with a flash command or an emulator")
	}
}

func TestVariables(t *testing.T) {
	src := `
variable "n" {
  type    = number
  default = 3
}
variable "on" { type = bool }
variable "who" { default = "me" }
spec "v" {
  board { type = "sim" }
  test "t" {
    assert { that = var.n > 2 && var.on }
    send { line = "hi ${var.who}" }
  }
}
`
	s := parseSpec(t, src, SpecOptions{})
	if diff := cmp.Diff(map[string]any{"n": 3.0, "who": "me"}, s.Vars); diff != "" {
		t.Errorf("Vars without overrides (-want +got):\n%s", diff)
	}
	if s.Variables[1].Default != nil || s.Variables[1].Type != "bool" || s.Variables[2].Type != "string" {
		t.Errorf("Variables = %+v", s.Variables)
	}
	s = parseSpec(t, src, SpecOptions{Vars: map[string]string{"n": "1.5", "on": "true", "who": "you"}, RequireVars: true})
	if diff := cmp.Diff(map[string]any{"n": 1.5, "on": true, "who": "you"}, s.Vars); diff != "" {
		t.Errorf("Vars with overrides (-want +got):\n%s", diff)
	}
	sc := &Scope{Vars: s.Vars}
	if ok, err := s.Tests[0].Steps[0].Assert.That.Bool(sc); err != nil || ok {
		t.Errorf("assert with n=1.5 = %v, %v; want false", ok, err)
	}
	b, err := s.Tests[0].Steps[1].Send.Bytes(sc, s.LineEnding)
	if err != nil || string(b) != "hi you\n" {
		t.Errorf("send = %q, %v; want \"hi you\\n\"", b, err)
	}

	for _, tc := range []struct {
		name string
		opts SpecOptions
		want []string
	}{
		{"missing at submit", SpecOptions{RequireVars: true}, []string{"6:1 Missing variable value"}},
		{"not a number", SpecOptions{Vars: map[string]string{"n": "three"}}, []string{"2:1 Invalid value for variable"}},
		{"not a bool", SpecOptions{Vars: map[string]string{"on": "yes please"}}, []string{"6:1 Invalid value for variable"}},
		{"unknown", SpecOptions{Vars: map[string]string{"nn": "1"}}, []string{"Unknown variable override"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, specErr(t, src, tc.opts)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStepOrder(t *testing.T) {
	src := `
spec "o" {
  board { type = "sim" }
  setup {
    power "cycle" {}
    expect { text = "a" }
    send { line = "b" }
    expect { text = "c" }
    reset {}
    send { raw = "d" }
  }
  test "t" {
    wait { for = "1s" }
    assert { that = true }
    wait { for = "2s" }
  }
}
`
	for _, name := range []string{"o.hcl", "o.hcl.json"} {
		s := parseSpec(t, src, SpecOptions{})
		if name == "o.hcl.json" {
			js := `{"spec": {"o": {"board": {"type": "sim"},
  "setup": {"power": {"cycle": {}}, "expect": {"text": "a"}, "send": {"line": "b"},
            "expect": {"text": "c"}, "reset": {}, "send": {"raw": "d"}},
  "test": {"t": {"wait": {"for": "1s"}, "assert": {"that": "${true}"}, "wait": {"for": "2s"}}}}}}`
			var d Diagnostics
			s, d = ParseSpec([]byte(js), name, SpecOptions{})
			if d.HasErrors() {
				t.Fatal(d.Err())
			}
		}
		var got []string
		for _, st := range s.AllSteps() {
			got = append(got, string(st.Kind))
		}
		want := []string{"power", "expect", "send", "expect", "reset", "send", "wait", "assert", "wait"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: step order (-want +got):\n%s", name, diff)
		}
		if s.Tests[0].Steps[2].Wait.For != 2*time.Second {
			t.Errorf("%s: third test step waits %v, want 2s", name, s.Tests[0].Steps[2].Wait.For)
		}
	}
}

func TestRuntime(t *testing.T) {
	farm := loadExampleFarm(t)
	s, d := LoadSpec("testdata/good/all-steps.hcl", SpecOptions{Farm: farm, Vars: map[string]string{"serial": "A1"}})
	if d.HasErrors() {
		t.Fatal(d.Err())
	}
	sc := &Scope{
		Firmware: Firmware{Name: "fw", Version: "2.0.1", SHA256: "abc", Path: "/tmp/fw.bin"},
		Board:    BoardInfo{Name: "nucleo-01", Type: "nucleo-f401re", Tags: map[string]string{"rack": "a"}},
		Vars:     s.Vars,
		Captures: map[string]string{"serial": "A1", "adc": "17"},
		Measures: map[string]float64{"temp": 23.5},
	}
	steps := s.Tests[0].Steps

	m, err := s.Setup[len(s.Setup)-1].Expect.Pattern.Compile(sc)
	if err != nil || string(m.Literal) != "Booting v2.0.1 on nucleo-01" || m.Regexp != nil {
		t.Errorf("expect text = %v, %v", m, err)
	}
	b, err := steps[0].Send.Bytes(sc, s.LineEnding)
	if err != nil || string(b) != "serial A1\r\n" {
		t.Errorf("send line = %q, %v; want \"serial A1\\r\\n\"", b, err)
	}
	b, err = steps[1].Send.Bytes(sc, s.LineEnding)
	if want := []byte{0x1b, '[', 'A', '\\', 0x03}; err != nil || !bytes.Equal(b, want) {
		t.Errorf("send raw = %q, %v; want %q", b, err, want)
	}
	m, err = steps[2].Expect.Pattern.Compile(sc)
	if err != nil || m.Regexp == nil || m.Regexp.FindStringSubmatch("serial=XY9")[1] != "XY9" {
		t.Errorf("expect regex = %v, %v", m, err)
	}
	ms := steps[3].Measure
	re, err := ms.Compile(sc)
	if err != nil || re.FindStringSubmatch("temp=-3.5")[ms.Group] != "-3.5" {
		t.Errorf("measure regex = %v, %v", re, err)
	}
	for v, want := range map[float64]string{-11: VerdictFail, -1: VerdictMarginal, 20: VerdictPass, 41: VerdictMarginal, 45: VerdictMarginal, 45.1: VerdictFail} {
		if got := ms.Judge(v); got != want {
			t.Errorf("Judge(%g) = %s, want %s (limits -10..45, marginal below 0 and above 40)", v, got, want)
		}
	}
	ok, err := steps[4].Assert.That.Bool(sc)
	if err != nil || !ok {
		t.Errorf("assert = %v, %v; want true", ok, err)
	}
	msg, err := steps[4].Assert.Message.String(sc)
	if err != nil || msg != "temp 23.5 on nucleo-01 (a)" {
		t.Errorf("assert message = %q, %v", msg, err)
	}
	if g := steps[5].GPIO; g.Set != 1 || g.For != 200*time.Millisecond || g.Line != "button" {
		t.Errorf("gpio step = %+v", g)
	}
	if w := steps[8].Wait; w.Value != 0 || w.Within != 2*time.Second {
		t.Errorf("wait step = %+v", w)
	}

	ts := steps[9].Tool
	args, err := ts.ArgValues(sc)
	if err != nil || args["channel"] != "A1-0" {
		t.Fatalf("tool args = %v, %v", args, err)
	}
	tool := farm.BoardType("nucleo-f401re").Tool(ts.Name)
	sc.Args = args
	argv, err := tool.Argv(sc)
	if want := []string{"hil-adc", "--board", "nucleo-01", "--channel", "A1-0"}; err != nil || !cmp.Equal(argv, want) {
		t.Errorf("tool argv = %q, %v; want %q", argv, err, want)
	}
	argv, err = farm.BoardType("nucleo-f401re").Flash.Argv(sc)
	if want := []string{"openocd", "-f", "board/st_nucleo_f4.cfg", "-c", "program /tmp/fw.bin verify reset exit"}; err != nil || !cmp.Equal(argv, want) {
		t.Errorf("flash argv = %q, %v; want %q", argv, err, want)
	}
	// A run-time failure names the expression's place.
	sc.Captures = map[string]string{"adc": "not a number"}
	_, err = steps[len(steps)-1].Assert.That.Bool(sc)
	if err == nil || !strings.Contains(err.Error(), "all-steps.hcl:") {
		t.Errorf("assert over a non-number capture: err = %v, want an error with the file position", err)
	}
}

func TestDecodeEscapes(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{`plain`, "plain", ""},
		{`\x03`, "\x03", ""},
		{`a\x1B[0m\\b`, "a\x1b[0m\\b", ""},
		{`\xff\x00`, "\xff\x00", ""},
		{`é`, "é", ""},
		{`\x0`, "", `\x at offset 0 needs two hex digits`},
		{`\xzz`, "", `\x at offset 0 needs two hex digits`},
		{`\n`, "", `unknown escape \n at offset 0 (only \xNN and \\ are escapes)`},
		{`end\`, "", `raw bytes end in a lone backslash`},
	} {
		got, err := decodeEscapes(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("decodeEscapes(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("decodeEscapes(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestSafeFunctions(t *testing.T) {
	for _, fn := range []string{`file("/etc/passwd")`, `templatefile("x", {})`, `env("HOME")`, `fileexists("/")`} {
		src := "spec \"f\" {\n  board { type = \"sim\" }\n  test \"t\" {\n    send { line = " + fn + " }\n  }\n}\n"
		got := specErr(t, src, SpecOptions{})
		if len(got) != 1 || got[0] != "4:19 Call to unknown function" {
			t.Errorf("spec calling %s: errors %q, want one \"Call to unknown function\" at 4:19", fn, got)
		}
	}
}

func TestSizeLimit(t *testing.T) {
	big := bytes.Repeat([]byte("# padding padding padding padding padding padding padding\n"), 10<<20/58)
	for name, d := range map[string]Diagnostics{
		"ParseSpec": second(ParseSpec(big, "big.hcl", SpecOptions{})),
		"ParseFarm": second(ParseFarm(big, "big.hcl")),
		"Format":    second(Format(big, "big.hcl")),
	} {
		l := d.List()
		if len(l) != 1 || l[0].Summary != "File too large" || !strings.Contains(l[0].Detail, "at most 1048576 bytes") {
			t.Errorf("%s of 10 MB: %+v, want one File too large", name, l)
		}
	}
	path := filepath.Join(t.TempDir(), "big.hcl")
	if err := os.WriteFile(path, big, 0o644); err != nil {
		t.Fatal(err)
	}
	_, d := LoadSpec(path, SpecOptions{})
	if l := d.List(); len(l) != 1 || l[0].Summary != "File too large" || !strings.Contains(l[0].Detail, "more than 1 MiB") {
		t.Errorf("LoadSpec of 10 MB: %+v", l)
	}
	// Exactly MaxFileSize is accepted (and then parsed).
	ok := append(bytes.Repeat([]byte(" "), MaxFileSize-len(minimalSpec)), minimalSpec...)
	if _, d := ParseSpec(ok, "max.hcl", SpecOptions{}); d.HasErrors() {
		t.Errorf("ParseSpec of exactly MaxFileSize bytes: %v", d.Err())
	}
}

func second[T any](_ T, d Diagnostics) Diagnostics { return d }

func TestDiagnosticsForms(t *testing.T) {
	src := "spec \"x\" {\n  board { type = \"sim\" }\n  timeout = \"soon\"\n  test \"t\" {\n    reset {}\n  }\n}\n"
	_, d := ParseSpec([]byte(src), "x.hcl", SpecOptions{})
	js, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"severity":"error","summary":"Invalid duration","detail":"The attribute \"timeout\" must be a duration such as \"500ms\", \"10s\" or \"2m\"; \"soon\" is not one.","range":{"filename":"x.hcl","start":{"line":3,"column":13,"byte":48},"end":{"line":3,"column":19,"byte":54}}}]`
	if string(js) != want {
		t.Errorf("JSON form:\n got %s\nwant %s", js, want)
	}
	wantErr := `x.hcl:3:13: Invalid duration: The attribute "timeout" must be a duration such as "500ms", "10s" or "2m"; "soon" is not one.`
	if err := d.Err(); err == nil || err.Error() != wantErr {
		t.Errorf("Err() = %v, want %s", err, wantErr)
	}
	var buf bytes.Buffer
	if err := d.WriteText(&buf, 0, true); err != nil || !strings.Contains(buf.String(), "\x1b[") {
		t.Errorf("WriteText with colour: %q, %v; want ANSI escapes", buf.String(), err)
	}
	_, ok := ParseSpec([]byte(minimalSpec), "m.hcl", SpecOptions{})
	if ok.Err() != nil || ok.HasErrors() || ok.Len() != 0 {
		t.Errorf("valid spec: Err() = %v", ok.Err())
	}
}

func TestFormat(t *testing.T) {
	in := "spec \"x\" {\nboard { type = \"sim\" }\n  timeout=\"1m\"\n    idle_timeout = \"5s\"\n}\n"
	want := "spec \"x\" {\n  board { type = \"sim\" }\n  timeout      = \"1m\"\n  idle_timeout = \"5s\"\n}\n"
	got, d := Format([]byte(in), "x.hcl")
	if d.HasErrors() || string(got) != want {
		t.Errorf("Format:\n%s\nwant:\n%s(%v)", got, want, d.Err())
	}
	again, _ := Format(got, "x.hcl")
	if !bytes.Equal(again, got) {
		t.Error("Format is not idempotent")
	}
	if out, d := Format([]byte("spec \"x\" {\n  a = \n"), "bad.hcl"); out != nil || !d.HasErrors() {
		t.Errorf("Format of a syntax error = %q, %v; want refusal", out, d.Err())
	}
	js := []byte(`{"spec": {"x": {}}}`)
	if out, d := Format(js, "x.hcl.json"); d.HasErrors() || !bytes.Equal(out, js) {
		t.Errorf("Format of JSON = %q, %v; want it unchanged", out, d.Err())
	}
	for _, f := range append(mustGlob(t, "../examples/specs/*.hcl"), "../examples/farm.hcl") {
		src, _ := os.ReadFile(f)
		if out, _ := Format(src, f); !bytes.Equal(out, src) {
			t.Errorf("%s is not formatted (hilfarm fmt -w %s)", f, f)
		}
	}
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil || len(m) == 0 {
		t.Fatalf("glob %s: %v, %d files", pattern, err, len(m))
	}
	return m
}

func TestSniff(t *testing.T) {
	for _, tc := range []struct{ src, name, want string }{
		{`farm "x" {}`, "a.hcl", KindFarm},
		{"board_type \"t\" {}\nfarm \"x\" {}", "a.hcl", KindFarm},
		{"variable \"v\" {}\nspec \"x\" {}", "a.hcl", KindSpec},
		{`{"spec": {"x": {}}}`, "a.hcl.json", KindSpec},
		{`{"farm": {"x": {}}}`, "a.hcl.json", KindFarm},
		{`spec "x" {`, "a.hcl", KindUnknown},
		{`thing "x" {}`, "a.hcl", KindUnknown},
		{"board \"b\" {\n  type = \"x\"\n}\n", "a.hcl", KindFarm},
		{"variable \"v\" {}\n", "a.hcl", KindSpec},
	} {
		if got := Sniff([]byte(tc.src), tc.name); got != tc.want {
			t.Errorf("Sniff(%q) = %q, want %q", tc.src, got, tc.want)
		}
	}
}

func TestSelector(t *testing.T) {
	farm := loadExampleFarm(t)
	names := func(bs []*Board) []string {
		var out []string
		for _, b := range bs {
			out = append(out, b.Name)
		}
		return out
	}
	for _, tc := range []struct {
		sel  Selector
		want []string
	}{
		{Selector{Type: "sim"}, []string{"sim-01", "sim-02"}},
		{Selector{Tags: map[string]string{"rack": "a"}}, []string{"nucleo-01", "nucleo-02"}},
		{Selector{Type: "nucleo-f401re", Tags: map[string]string{"shield": "sensor"}}, []string{"nucleo-01"}},
		{Selector{Type: "sim", Tags: map[string]string{"rack": "a"}}, nil},
	} {
		if got := names(farm.Match(tc.sel)); !cmp.Equal(got, tc.want) {
			t.Errorf("Match(%+v) = %q, want %q", tc.sel, got, tc.want)
		}
	}
}

// FuzzParseSpec feeds arbitrary bytes to the spec parser (and Format and
// Sniff): they must never panic, and a spec they accept must encode to JSON.
func FuzzParseSpec(f *testing.F) {
	seeds, _ := filepath.Glob("../examples/specs/*.hcl")
	more, _ := filepath.Glob("testdata/*/*.hcl*")
	for _, p := range append(seeds, more...) {
		if strings.HasSuffix(p, ".txt") || strings.HasSuffix(p, ".golden.json") {
			continue
		}
		src, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src, strings.HasSuffix(p, ".json"))
	}
	f.Fuzz(func(t *testing.T, src []byte, isJSON bool) {
		name := "fuzz.hcl"
		if isJSON {
			name = "fuzz.hcl.json"
		}
		s, d := ParseSpec(src, name, SpecOptions{Vars: map[string]string{"config_value": "3"}})
		if (s == nil) != d.HasErrors() {
			t.Fatalf("ParseSpec: spec %v with errors %v", s != nil, d.HasErrors())
		}
		if s != nil {
			if _, err := json.Marshal(s); err != nil {
				t.Fatalf("json.Marshal of a decoded spec: %v", err)
			}
		}
		_ = d.WriteText(&bytes.Buffer{}, 78, false)
		_, _ = json.Marshal(d)
		_, _ = Format(src, name)
		_ = Sniff(src, name)
	})
}

// BenchmarkParseSpec measures parsing and validating the largest example
// spec against the example farm (what the controller does per submission).
func BenchmarkParseSpec(b *testing.B) {
	src, err := os.ReadFile("../examples/specs/shell.hcl")
	if err != nil {
		b.Fatal(err)
	}
	farm, d := LoadFarm("../examples/farm.hcl")
	if d.HasErrors() {
		b.Fatal(d.Err())
	}
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, d := ParseSpec(src, "shell.hcl", SpecOptions{Farm: farm}); d.HasErrors() {
			b.Fatal(d.Err())
		}
	}
}

// BenchmarkLoadFarm measures loading the example farm.
func BenchmarkLoadFarm(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, d := LoadFarm("../examples/farm.hcl"); d.HasErrors() {
			b.Fatal(d.Err())
		}
	}
}

// FuzzParseFarm does for farm files what FuzzParseSpec does for specs.
func FuzzParseFarm(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/farm*.hcl")
	more, _ := filepath.Glob("testdata/*/*farm*.hcl.json")
	for _, p := range append(append(seeds, more...), "../examples/farm.hcl") {
		src, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src, strings.HasSuffix(p, ".json"))
	}
	f.Fuzz(func(t *testing.T, src []byte, isJSON bool) {
		name := "farm.hcl"
		if isJSON {
			name = "farm.hcl.json"
		}
		farm, d := ParseFarm(src, name)
		if (farm == nil) != d.HasErrors() {
			t.Fatalf("ParseFarm: farm %v with errors %v", farm != nil, d.HasErrors())
		}
		if farm != nil {
			if _, err := json.Marshal(farm); err != nil {
				t.Fatalf("json.Marshal of a decoded farm: %v", err)
			}
			for i := range farm.Boards {
				_ = farm.CanFlash(&farm.Boards[i])
			}
		}
		_ = d.WriteText(&bytes.Buffer{}, 78, false)
	})
}

// TestNonFiniteOverrideRejected: "NaN" or "Inf" for a number variable is a
// diagnostic, not a panic.
func TestNonFiniteOverrideRejected(t *testing.T) {
	src := []byte("variable \"lim\" {\n  type = number\n}\nspec \"s\" {\n  board { type = \"sim\" }\n  test \"t\" {\n    send { line = \"x ${var.lim}\" }\n  }\n}\n")
	for _, v := range []string{"NaN", "Inf", "-inf"} {
		_, diags := ParseSpec(src, "s.hcl", SpecOptions{Vars: map[string]string{"lim": v}})
		if !diags.HasErrors() || !strings.Contains(diags.Err().Error(), "is not a number") {
			t.Errorf("lim=%s: %v", v, diags.Err())
		}
	}
}
