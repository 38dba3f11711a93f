package bounds

import (
	"fmt"
	"strings"
)

// input is a hostile file for `hilfarm validate`: at most 1 MiB.
type input struct {
	name string
	src  string
}

const specHead = "spec \"s\" {\n  board { type = \"sim\" }\n"
const specTail = "  test \"t\" {\n    send { line = \"x\" }\n  }\n}\n"

func fill(unit string, budget int) string { return strings.Repeat(unit, budget/len(unit)) }

// worstInputs are the inputs of issue 10 and their variants, each at (or
// near) the largest size that still reaches the part it attacks.
func worstInputs() []input {
	const mib = 1 << 20
	part := `${join("",formatlist("%1000s",range(60)))}`
	ins := []input{
		{"paren-100k.hcl", specHead + "  test \"u\" {\n    assert { that = " + strings.Repeat("(", 100000) + "true" + strings.Repeat(")", 100000) + " }\n  }\n" + specTail},
		{"list-300k.hcl", specHead + "  description = tostring(length(" + strings.Repeat("[", 300000) + strings.Repeat("]", 300000) + "))\n" + specTail},
		{"paren-1mib.hcl", specHead + "  description = " + fill("(", mib-200) + "\n}\n"},
		{"json-for-escape.hcl.json", `{"spec":{"s":{"board":{"type":"sim"},"description":"${join(\"\",[for\na in range(1000): join(\"\",[for\nb in range(1000): \"xxxxxxxx\"])])}","test":{"t":{"send":{"line":"x"}}}}}}`},
		{"template-23804.hcl", specHead + "  test \"u\" {\n    expect { text = \"" + strings.Repeat(part, 23804) + "\" }\n  }\n" + specTail},
		{"template-under-tokens.hcl", specHead + "  test \"u\" {\n    expect { text = \"" + strings.Repeat(part, 1900) + "\" }\n  }\n" + specTail},
		{"tuple-of-calls.hcl", specHead + "  description = tostring(length([" + strings.Repeat(`join("",formatlist("%1000s",range(60))),`, 1900) + "]))\n" + specTail},
		{"var-refs.hcl", "variable \"x\" {\n  default = join(\"\",formatlist(\"%1000s\",range(60)))\n}\n" + specHead + "  description = \"" + strings.Repeat("${var.x}", 10000) + "\"\n" + specTail},
		{"json-var-refs.hcl.json", `{"variable":{"x":{"default":"${join(\"\",formatlist(\"%1000s\",range(60)))}"}},"spec":{"s":{"board":{"type":"sim"},"description":"` + strings.Repeat("${var.x}", 127) + `","test":{"t":{"send":{"line":"x"}}}}}}`},
		{"json-deep-1mib.hcl.json", `{"spec":{"s":{"description":` + fill("[", mib/2-40) + fill("]", mib/2-40) + `}}}`},
		{"json-deep-objects.hcl.json", `{"spec":{"s":{"description":` + fill(`{"a":`, mib/2-40) + `1` + fill("}", mib/10) + `}}}`},
		{"flat-list.hcl", specHead + "  description = tostring(length([" + strings.Repeat("1,", 15900) + "]))\n" + specTail},
		{"flat-strings.hcl", specHead + "  description = tostring(length([" + strings.Repeat(`"abcdefghijklmnopqrstuvwxyz0123456789",`, 15900) + "]))\n" + specTail},
		{"json-flat.hcl.json", `{"spec":{"s":{"board":{"type":"sim"},"description":[` + strings.TrimSuffix(strings.Repeat("1,", 31900), ",") + `],"test":{"t":{"send":{"line":"x"}}}}}}`},
		{"json-object.hcl.json", `{"spec":{"s":{"board":{"type":"sim"},"d":{` + strings.TrimSuffix(strings.Repeat(`"k":"v",`, 15900), ",") + `},"test":{"t":{"send":{"line":"x"}}}}}}`},
		{"steps.hcl", specHead + "  test \"u\" {\n" + strings.Repeat("    send { line = \"x\" }\n", 1990) + "  }\n" + specTail},
		{"big-string.hcl", specHead + "  description = \"" + fill("x", mib-200) + "\"\n" + specTail},
		{"big-heredoc.hcl", specHead + "  description = <<EOT\n" + fill("abcdefghij\n", mib-300) + "EOT\n" + specTail},
		{"regex-alternation.hcl", specHead + "  test \"u\" {\n    expect { regex = \"" + strings.Repeat("abcdefgh|", 3600/9) + "x\" }\n  }\n" + specTail},
		{"regex-repeat.hcl", specHead + "  test \"u\" {\n    expect { regex = \"" + strings.Repeat("(?:x{1000}){1000}", 200) + "\" }\n  }\n" + specTail},
		{"comments.hcl", specHead + fill("# (((((((((( [[[[[ {{{{{ \"\"\"\n", mib-200) + specTail},
		{"operator-chain.hcl", specHead + "  description = tostring(1" + strings.Repeat("+1", 15900) + ")\n" + specTail},
		{"operator-chains-in-brackets.hcl", specHead + "  description = tostring(" + strings.Repeat("1-1-1-(", 60) + "1" + strings.Repeat(")", 60) + ")\n" + specTail},
		{"objects.hcl", specHead + "  description = tostring(length([" + strings.Repeat("{},", 10600) + "]))\n" + specTail},
		{"tests.hcl", specHead + strings.Repeat("  test \"t\" {\n    send { line = \"x\" }\n  }\n", 1990) + "}\n"},
		{"format-calls.hcl", specHead + "  description = tostring(length([" + strings.Repeat(`format("%1024s%1024s%1024s","a","b","c"),`, 1500) + "]))\n" + specTail},
	}
	for i, in := range ins {
		if len(in.src) > mib {
			panic(fmt.Sprintf("%s is %d bytes, more than 1 MiB", in.name, len(in.src)))
		}
		_ = i
	}
	return ins
}
