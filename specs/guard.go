package specs

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Limits on regular expressions (expect, fail_on_regex, measure, and the
// regex, regexall and replace functions). Go's regexp runs in time linear
// in the input, but proportional to the size of the compiled program too:
// a huge alternation makes every search over the console window slow.
const (
	// MaxRegexBytes bounds the length of a pattern.
	MaxRegexBytes = 4096
	// MaxRegexProgram bounds the number of instructions of a compiled
	// pattern (regexp/syntax), counted after simplification, so that
	// repetitions such as x{1000} count at their real size.
	MaxRegexProgram = 4000
)

// RegexLimitError is a pattern over one of the regex limits.
type RegexLimitError struct {
	Limit string // "length" or "program size"
	Value int    // the pattern's
	Max   int
}

func (e *RegexLimitError) Error() string {
	switch e.Limit {
	case "length":
		return fmt.Sprintf("regular expression is %d bytes long; the limit is %d bytes (regex length limit)", e.Value, e.Max)
	}
	return fmt.Sprintf("regular expression compiles to %d instructions; the limit is %d (regex program size limit)", e.Value, e.Max)
}

// CheckRegex checks a pattern against MaxRegexBytes and MaxRegexProgram.
// A pattern that does not parse is not its business: regexp.Compile says why.
func CheckRegex(pattern string) error {
	if len(pattern) > MaxRegexBytes {
		return &RegexLimitError{Limit: "length", Value: len(pattern), Max: MaxRegexBytes}
	}
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return nil
	}
	if n := len(prog.Inst); n > MaxRegexProgram {
		return &RegexLimitError{Limit: "program size", Value: n, Max: MaxRegexProgram}
	}
	return nil
}

// compileRegex checks pattern's limits and compiles it.
func compileRegex(pattern string) (*regexp.Regexp, error) {
	if err := CheckRegex(pattern); err != nil {
		return nil, err
	}
	return regexp.Compile(pattern)
}

// boundTemplates makes every template of a native-syntax file check its
// result's size as it is built, and charge it to the evaluation's budget:
// concatenation is not a function, so the function limits do not see it.
// Each multi-part TemplateExpr gets one part, a boundedTemplate holding
// the original parts.
func boundTemplates(f *hcl.File) {
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok {
		return
	}
	hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
		if t, ok := n.(*hclsyntax.TemplateExpr); ok && len(t.Parts) > 1 {
			inner := &hclsyntax.TemplateExpr{Parts: t.Parts, SrcRange: t.SrcRange}
			t.Parts = []hclsyntax.Expression{&boundedTemplate{TemplateExpr: inner}}
		}
		return nil
	})
}

// boundedTemplate is a template's parts, concatenated with a bound.
// Embedding the TemplateExpr keeps the node's walk (its references, for
// Variables) and ranges.
type boundedTemplate struct {
	*hclsyntax.TemplateExpr
}

// Value concatenates the parts as TemplateExpr.Value does, refusing a
// result larger than MaxValueBytes and charging the result to the
// evaluation's budget.
func (e *boundedTemplate) Value(ctx *hcl.EvalContext) (cty.Value, hcl.Diagnostics) {
	var buf strings.Builder
	var diags hcl.Diagnostics
	known := true
	marks := cty.ValueMarks{}
	for _, part := range e.Parts {
		pv, pd := part.Value(ctx)
		diags = append(diags, pd...)
		if pv.IsNull() {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid template interpolation value",
				Detail:  "The expression result is null. Cannot include a null value in a string template.",
				Subject: part.Range().Ptr(), Context: &e.SrcRange, Expression: part, EvalContext: ctx})
			continue
		}
		uv, pm := pv.Unmark()
		for k, v := range pm {
			marks[k] = v
		}
		if !uv.IsKnown() {
			known = false
			continue
		}
		sv, err := convert.Convert(uv, cty.String)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid template interpolation value",
				Detail:  fmt.Sprintf("Cannot include the given value in a string template: %s.", err.Error()),
				Subject: part.Range().Ptr(), Context: &e.SrcRange, Expression: part, EvalContext: ctx})
			continue
		}
		if known && !diags.HasErrors() {
			if buf.Len()+len(sv.AsString()) > MaxValueBytes {
				return cty.UnknownVal(cty.String), append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Value too large",
					Detail:  fmt.Sprintf("This template's result is larger than %d bytes (the limit of any value in a spec).", MaxValueBytes),
					Subject: e.SrcRange.Ptr(), Expression: e, EvalContext: ctx})
			}
			buf.WriteString(sv.AsString())
		}
	}
	if !known || diags.HasErrors() {
		return cty.UnknownVal(cty.String).WithMarks(marks), diags
	}
	if err := chargeTemplate(ctx, buf.Len()); err != nil {
		return cty.UnknownVal(cty.String), append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Value too large",
			Detail: err.Error(), Subject: e.SrcRange.Ptr(), Expression: e, EvalContext: ctx})
	}
	return cty.StringVal(buf.String()).WithMarks(marks), diags
}
