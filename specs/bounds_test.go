package specs

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// Each case of issue 10 that once crashed or bloated the parser: a
// diagnostic naming the limit, at file:line:col, and nothing more.
func TestBoundedParsing(t *testing.T) {
	spec := func(step string) string {
		return "spec \"s\" {\n  board { type = \"sim\" }\n  test \"t\" {\n    " + step + "\n  }\n}\n"
	}
	part := `${join("",formatlist("%1000s",range(60)))}`
	for _, tc := range []struct {
		name, file, src string
		summary, where  string // where: "line:col" of the diagnostic
	}{
		{"100,000 parentheses", "p.hcl", spec("assert { that = " + strings.Repeat("(", 100000) + "true" + strings.Repeat(")", 100000) + " }"),
			"Nesting too deep", "4:82"},
		{"300,000-deep list", "l.hcl", spec("assert { that = length(" + strings.Repeat("[", 300000) + strings.Repeat("]", 300000) + ") > 0 }"),
			"Nesting too deep", "4:88"},
		{"nesting through strings and interpolations", "s.hcl", spec(`send { line = ` + strings.Repeat(`"${`, 40) + `"x"` + strings.Repeat(`}"`, 40) + ` }`),
			"Nesting too deep", "4:"},
		{"nesting in a heredoc", "h.hcl", spec("send {\n line = <<EOT\n" + strings.Repeat("${(", 40) + "1" + strings.Repeat(")}", 40) + "\nEOT\n}"),
			"Nesting too deep", "6:"},
		{"template concatenation", "c.hcl", spec(`expect { text = "` + strings.Repeat(part, 1000) + `" }`),
			"Value too large", "4:21"},
		{"tuple of function calls", "u.hcl", strings.Replace(spec(`send { line = "x" }`), "  test", "  description = tostring(length(["+strings.Repeat(`join("",formatlist("%1000s",range(60))),`, 1000)+"]))\n  test", 1),
			"Error in function call", "3:"},
		{"variable interpolated many times", "v.hcl", "variable \"x\" {\n  default = join(\"\",formatlist(\"%1000s\",range(60)))\n}\n" + spec(`send { line = "`+strings.Repeat("${var.x}", 5000)+`" }`),
			"Value too large", "7:19"},
		{"a long chain of operators", "o.hcl", spec(`assert { that = 1` + strings.Repeat("+1", 15000) + ` > 0 }`),
			"Expression too long", "4:"},
		{"operators through brackets", "o.hcl", spec(`assert { that = ` + strings.Repeat("1-1-1-1-(", 60) + "1" + strings.Repeat("*1", 100) + strings.Repeat(")", 60) + ` > 0 }`),
			"Expression too long", "4:"},
		{"a chain of conditionals", "o.hcl", spec(`assert { that = ` + strings.Repeat("true ? true : ", 300) + `false }`),
			"Expression too long", "4:"},
		{"unary operators", "o.hcl", spec(`assert { that = ` + strings.Repeat("!", 1000) + `true }`),
			"Expression too long", "4:"},
		{"too many tokens", "t.hcl", spec(`send { line = tostring(length([` + strings.Repeat("1,", 40000) + `])) }`),
			"Too many tokens", "4:"},
		{"too many steps", "n.hcl", spec(strings.Repeat("send { line = \"x\" }\n    ", MaxSteps+5)),
			"Too many steps", fmt.Sprint(4+MaxSteps, ":5")},
		{"regex program size", "r.hcl", spec(`expect { regex = "x{1000}y{1000}z{1000}w{1000}v{100}" }`),
			"Regular expression too large", "4:22"},
		{"regex length", "r.hcl", spec(`expect { regex = "` + strings.Repeat("a", MaxRegexBytes+1) + `" }`),
			"Regular expression too large", "4:22"},
		{"regex function", "f.hcl", spec(`assert { that = length(regexall("x{1000}y{1000}z{1000}w{1000}v{100}", "abc")) > 0 }`),
			"Error in function call", "4:"},
		{"native for", "f.hcl", spec(`assert { that = length([for i in range(3): i]) > 0 }`),
			"for expressions are not allowed in specs", "4:28"},
		{"JSON for with a \\n escape", "j.hcl.json", `{"spec":{"s":{"board":{"type":"sim"},"description":"${join(\"\",[for\na in range(1000): join(\"\",[for\nb in range(1000): \"xxxxxxxx\"])])}","test":{"t":{"send":{"line":"x"}}}}}}`,
			"for expressions are not allowed in specs", "1:52"},
		{"JSON template directive for", "j.hcl.json", `{"spec":{"s":{"board":{"type":"sim"},"description":"%{for\ta in range(3)}x%{endfor}","test":{"t":{"send":{"line":"x"}}}}}}`,
			"for expressions are not allowed in specs", "1:52"},
		{"JSON 1 MB deep nesting", "d.hcl.json", `{"spec":{"s":{"description":` + strings.Repeat("[", 500000) + strings.Repeat("]", 500000) + `}}}`,
			"Nesting too deep", "1:"},
		{"JSON nesting inside a string", "d.hcl.json", `{"spec":{"s":{"description":"${` + strings.Repeat("(", 1000) + "1" + strings.Repeat(")", 1000) + `}"}}}`,
			"Nesting too deep", "1:"},
		{"JSON interpolations", "i.hcl.json", `{"spec":{"s":{"board":{"type":"sim"},"description":"` + strings.Repeat("${var.x}", MaxInterpolations+1) + `"}}}`,
			"Too many template interpolations", "1:52"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := ParseSpec([]byte(tc.src), tc.file, SpecOptions{})
			if !diags.HasErrors() {
				t.Fatal("accepted")
			}
			found := false
			for _, d := range diags.List() {
				if d.Summary == tc.summary && d.Range != nil {
					at := fmt.Sprintf("%d:%d", d.Range.Start.Line, d.Range.Start.Column)
					if strings.HasPrefix(at, tc.where) && d.Range.Filename == tc.file {
						found = true
					} else {
						t.Errorf("%q at %s:%s, want %s", d.Summary, d.Range.Filename, at, tc.where)
					}
				}
			}
			if !found {
				t.Errorf("no %q diagnostic with a place; got %v", tc.summary, diags.Err())
			}
		})
	}
}

// The limits leave room for ordinary specs: nesting, templates and
// regexes of everyday size pass.
func TestBoundsAllowOrdinarySpecs(t *testing.T) {
	src := `variable "n" { default = 3 }
spec "s" {
  board { type = "sim" }
  description = "a ${format("%05d", var.n)} b ${upper("x")} c"
  test "t" {
    send { line = "x ${jsonencode([[[1, 2], {a = [3]}]])} y" }
    expect { regex = "v(\\d+)\\.(\\d+)\\.(\\d+)|booted in \\d{1,5} ms" }
    send {
      line = <<EOT
      heredoc ${var.n} %{ if var.n > 2 }big%{ else }small%{ endif }
      EOT
    }
    assert { that = length(regexall("[a-z]+", "abc def")) == 2 }
  }
}
`
	spec, diags := ParseSpec([]byte(src), "ok.hcl", SpecOptions{})
	if diags.HasErrors() {
		t.Fatalf("refused: %v", diags.Err())
	}
	if spec.Description != "a 00003 b X c" {
		t.Errorf("description = %q", spec.Description)
	}
	line, err := spec.Tests[0].Steps[0].Send.Bytes(&Scope{}, "\n")
	if err != nil || string(line) != "x [[[1,2],{\"a\":[3]}]] y\n" {
		t.Errorf("send line = %q, %v", line, err)
	}
}

// At run time too: a template over captures cannot grow past the value
// limit, and a regex built from a capture is checked before compiling.
func TestBoundedRuntime(t *testing.T) {
	src := spec2(`expect {
      regex   = "(.*)"
      capture = "c"
    }
    send { line = "` + strings.Repeat("${capture.c}", 100) + `" }
    expect { regex = capture.c }`)
	spec, diags := ParseSpec([]byte(src), "rt.hcl", SpecOptions{})
	if diags.HasErrors() {
		t.Fatalf("refused: %v", diags.Err())
	}
	s := &Scope{Captures: map[string]string{"c": strings.Repeat("x", 1000)}}
	_, err := spec.Tests[0].Steps[1].Send.Bytes(s, "\n")
	if err == nil || !strings.Contains(err.Error(), "larger than 65536 bytes") {
		t.Errorf("100 copies of a 1000-byte capture: %v", err)
	}
	s.Captures["c"] = "x{1000}y{1000}z{1000}w{1000}v{100}"
	_, err = spec.Tests[0].Steps[2].Expect.Pattern.Compile(s)
	if err == nil || !regexp.MustCompile(`rt\.hcl:9:\d+: .*regex program size limit`).MatchString(err.Error()) {
		t.Errorf("huge regex from a capture: %v", err)
	}
}

func spec2(steps string) string {
	return "spec \"s\" {\n  board { type = \"sim\" }\n  test \"t\" {\n    " + steps + "\n  }\n}\n"
}
