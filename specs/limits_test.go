package specs

import (
	"strings"
	"testing"
)

// TestExpressionLimits: a submitted spec cannot make the controller build
// huge values; each attempt is a diagnostic, quickly.
func TestExpressionLimits(t *testing.T) {
	spec := func(expr string) []byte {
		return []byte("spec \"s\" {\n  board { type = \"sim\" }\n  description = " + expr + "\n  test \"t\" {\n    send { line = \"x\" }\n  }\n}\n")
	}
	for _, tc := range []struct{ name, expr, want string }{
		{"format width", `format("%300000000s", "a")`, "width or precision above 1024"},
		{"format precision", `format("%.99999f", 1)`, "width or precision above 1024"},
		{"range", `join(",", range(100000))`, "more than 1024 elements"},
		{"join", `join(format("%1000s", ""), split(",", format("%1000s", "")))`, ""},
		{"replace", `replace(format("%1000s", ""), " ", format("%1000s", "x"))`, "larger than 65536 bytes"},
		{"indent", `indent(1000, replace(format("%1000s", ""), " ", "\n"))`, "larger than 65536 bytes"},
		{"for", `join("", [for i in range(1000): join("", [for j in range(1000): "xxxx"])])`, "for expressions are not allowed in specs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := ParseSpec(spec(tc.expr), "s.hcl", SpecOptions{})
			if tc.want == "" {
				if diags.HasErrors() {
					t.Fatalf("a modest expression was refused: %v", diags.Err())
				}
				return
			}
			if !diags.HasErrors() || !strings.Contains(diags.Err().Error(), tc.want) {
				t.Errorf("diagnostics = %v, want %q", diags.Err(), tc.want)
			}
		})
	}
	// The JSON syntax parses templates at evaluation: a for in one is refused too.
	js := `{"spec": {"s": {"board": {"type": "sim"}, "description": "${join(\"\", [for i in range(10): \"x\"])}", "test": {"t": {"send": {"line": "x"}}}}}}`
	if _, diags := ParseSpec([]byte(js), "s.hcl.json", SpecOptions{}); !diags.HasErrors() || !strings.Contains(diags.Err().Error(), "for expressions are not allowed") {
		t.Errorf("JSON spec with a for expression: %v", diags.Err())
	}
}
