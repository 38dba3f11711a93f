package specs

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
)

// Kinds of file, as told by Sniff.
const (
	KindUnknown = ""
	KindFarm    = "farm"
	KindSpec    = "spec"
)

// Sniff tells a farm file from a spec by its content: a top-level farm,
// board_type, board, webhook or rack block makes a farm file; a spec or variable
// block a spec (the first such block decides). It returns KindUnknown when
// the file does not parse or has none of them.
func Sniff(src []byte, filename string) string {
	f, _, diags := parse(src, filename)
	if diags.HasErrors() || f == nil {
		return KindUnknown
	}
	schema := &hcl.BodySchema{}
	for _, t := range []string{"farm", "board_type", "board", "webhook", "rack", "spec", "variable"} {
		schema.Blocks = append(schema.Blocks, hcl.BlockHeaderSchema{Type: t, LabelNames: []string{"name"}})
	}
	c, _, _ := f.Body.PartialContent(schema)
	if c == nil || len(c.Blocks) == 0 {
		return KindUnknown
	}
	first := c.Blocks[0]
	for _, b := range c.Blocks {
		if b.DefRange.Start.Byte < first.DefRange.Start.Byte {
			first = b
		}
	}
	switch first.Type {
	case "spec", "variable":
		return KindSpec
	}
	return KindFarm
}

// Format returns src in canonical layout (hclwrite.Format: aligned "=",
// two-space indent) after checking that it parses; a file with syntax
// errors is refused with their diagnostics. Files in JSON syntax (names
// ending in .json) are only syntax-checked and returned unchanged.
func Format(src []byte, filename string) ([]byte, Diagnostics) {
	_, files, diags := parse(src, filename)
	if diags.HasErrors() {
		return nil, newDiagnostics(diags, files)
	}
	if isJSON(filename) {
		return src, newDiagnostics(diags, files)
	}
	return hclwrite.Format(src), newDiagnostics(diags, files)
}
