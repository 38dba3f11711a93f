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

// Sniff tells a farm file from a spec by its content: a top-level farm
// block makes a farm file, a spec block a spec. It returns KindUnknown
// when the file does not parse or has neither.
func Sniff(src []byte, filename string) string {
	f, _, diags := parse(src, filename)
	if diags.HasErrors() || f == nil {
		return KindUnknown
	}
	c, _, _ := f.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
		{Type: "farm", LabelNames: []string{"name"}},
		{Type: "spec", LabelNames: []string{"name"}},
	}})
	if c == nil {
		return KindUnknown
	}
	for _, b := range c.Blocks {
		return b.Type
	}
	return KindUnknown
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
