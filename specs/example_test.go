package specs_test

import (
	"fmt"
	"os"

	"github.com/hilfarm/hilfarm/specs"
)

func ExampleParseSpec() {
	src := []byte(`
spec "smoke" {
  board { type = "sim" }
  test "shell answers" {
    send { line = "version" }
    expect {
      regex   = "v([0-9.]+)"
      capture = "version"
    }
    assert { that = capture.version == firmware.version }
  }
}
`)
	s, diags := specs.ParseSpec(src, "smoke.hcl", specs.SpecOptions{})
	if diags.HasErrors() {
		_ = diags.WriteText(os.Stderr, 78, false)
		return
	}
	scope := &specs.Scope{Firmware: specs.Firmware{Version: "1.4.2"}, Captures: map[string]string{"version": "1.4.2"}}
	steps := s.Tests[0].Steps
	b, _ := steps[0].Send.Bytes(scope, s.LineEnding)
	m, _ := steps[1].Expect.Pattern.Compile(scope)
	ok, _ := steps[2].Assert.That.Bool(scope)
	fmt.Printf("%s: %d test, send %q, expect %s, assert %v\n", s.Name, len(s.Tests), b, m, ok)
	// Output: smoke: 1 test, send "version\n", expect /v([0-9.]+)/, assert true
}

func ExampleDiagnostics_WriteText() {
	_, diags := specs.ParseSpec([]byte("spec \"x\" {\n  board { type = \"sim\" }\n  timeout = \"soon\"\n  test \"t\" {\n    reset {}\n  }\n}\n"), "x.hcl", specs.SpecOptions{})
	_ = diags.WriteText(os.Stdout, 78, false)
	// Output:
	// Error: Invalid duration
	//
	//   on x.hcl:3:13, in spec "x":
	//    3:   timeout = "soon"
	//
	// The attribute "timeout" must be a duration such as "500ms", "10s" or "2m";
	// "soon" is not one.
	//
}
