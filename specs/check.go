package specs

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// exprScope is what a run-time expression may refer to at its place in the
// file. check walks an expression's references against it and type-checks
// the expression by evaluating it with unknown values of the right types.
type exprScope struct {
	where    string // for messages: "a flash command", "this step"
	firmware bool
	board    bool
	vars     map[string]cty.Value // declared variables: their value, or unknown of their type; nil: var.* not allowed
	captures map[string]bool      // defined before this point; nil: capture.* not allowed
	measures map[string]bool      // defined before this point; nil: measure.* not allowed
	args     map[string]bool      // tool params; nil: arg.* not allowed
	repeat   bool                 // repeat.iteration and repeat.count (in a repeated test)
	// all captures and measurements defined anywhere in the spec, to tell
	// "used before it is defined" from "never defined".
	allCaptures map[string]bool
	allMeasures map[string]bool
}

var (
	firmwareAttrs = []string{"name", "version", "sha256", "path"}
	boardAttrs    = []string{"name", "type", "tags"}
)

func (s *exprScope) evalContext() *hcl.EvalContext {
	unknownStr := cty.UnknownVal(cty.String)
	vars := map[string]cty.Value{}
	fw := map[string]cty.Value{}
	for _, a := range firmwareAttrs {
		fw[a] = unknownStr
	}
	vars["firmware"] = cty.ObjectVal(fw)
	vars["board"] = cty.ObjectVal(map[string]cty.Value{
		"name": unknownStr, "type": unknownStr, "tags": cty.UnknownVal(cty.Map(cty.String)),
	})
	vars["var"] = cty.ObjectVal(s.vars)
	caps := map[string]cty.Value{}
	for k := range s.captures {
		caps[k] = unknownStr
	}
	vars["capture"] = cty.ObjectVal(caps)
	meas := map[string]cty.Value{}
	for k := range s.measures {
		meas[k] = cty.UnknownVal(cty.Number)
	}
	vars["measure"] = cty.ObjectVal(meas)
	args := map[string]cty.Value{}
	for k := range s.args {
		args[k] = unknownStr
	}
	vars["arg"] = cty.ObjectVal(args)
	if s.repeat {
		vars["repeat"] = cty.ObjectVal(map[string]cty.Value{
			repeatIterationVar: cty.UnknownVal(cty.Number), repeatCountVar: cty.UnknownVal(cty.Number)})
	}
	return &hcl.EvalContext{Variables: vars, Functions: newFunctions()}
}

// check validates a run-time expression: every reference must be allowed
// here, and its value must convert to want. It returns the value found with
// unknown inputs (known when the expression is constant) and whether the
// expression is valid.
func (d *decoder) check(expr hcl.Expression, s *exprScope, want cty.Type, what string) (cty.Value, bool) {
	ok := true
	for _, tr := range expr.Variables() {
		if !d.checkTraversal(tr, s) {
			ok = false
		}
	}
	if !ok {
		return cty.NilVal, false
	}
	var ctx *hcl.EvalContext
	if !isConstant(expr) { // a literal needs no context (large specs are mostly literals)
		ctx = s.evalContext()
	}
	v, diags := expr.Value(ctx)
	if diags.HasErrors() {
		d.add(diags...)
		return cty.NilVal, false
	}
	if v.IsKnown() && v.IsNull() {
		d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value",
			Detail: fmt.Sprintf("The %s must not be null.", what), Subject: expr.Range().Ptr()})
		return cty.NilVal, false
	}
	cv, err := convert.Convert(v, want)
	if err != nil {
		d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Incorrect value type",
			Detail:  fmt.Sprintf("The %s must be a %s; this expression is a %s.", what, want.FriendlyName(), v.Type().FriendlyName()),
			Subject: expr.Range().Ptr()})
		return cty.NilVal, false
	}
	return cv, true
}

// checkRegex checks a pattern expression and compiles it when it is constant.
func (d *decoder) checkRegex(expr hcl.Expression, s *exprScope, what string) (*regexp.Regexp, bool) {
	v, ok := d.check(expr, s, cty.String, what)
	if !ok || !v.IsKnown() {
		return nil, ok
	}
	if err := CheckRegex(v.AsString()); err != nil {
		d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Regular expression too large",
			Detail: fmt.Sprintf("The %s is too large: %v.", what, err), Subject: expr.Range().Ptr()})
		return nil, false
	}
	re, err := regexp.Compile(v.AsString())
	if err != nil {
		d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid regular expression",
			Detail:  fmt.Sprintf("The %s is not a valid RE2 regular expression: %s.", what, strings.TrimPrefix(err.Error(), "error parsing regexp: ")),
			Subject: expr.Range().Ptr()})
		return nil, false
	}
	return re, true
}

func traversalAttr(tr hcl.Traversal) (string, hcl.Range, bool) {
	if len(tr) < 2 {
		return "", hcl.Range{}, false
	}
	switch t := tr[1].(type) {
	case hcl.TraverseAttr:
		return t.Name, t.SrcRange, true
	case hcl.TraverseIndex:
		if t.Key.Type() == cty.String && t.Key.IsKnown() && !t.Key.IsNull() {
			return t.Key.AsString(), t.SrcRange, true
		}
	}
	return "", hcl.Range{}, false
}

func (d *decoder) checkTraversal(tr hcl.Traversal, s *exprScope) bool {
	root := tr.RootName()
	rng := tr.SourceRange()
	name, _, hasName := traversalAttr(tr)
	notHere := func(detail string) bool {
		d.errorf(rng, "Reference not allowed here", "%s", detail)
		return false
	}
	fixed := func(attrs []string) bool {
		if !hasName {
			return true
		}
		for _, a := range attrs {
			if a == name {
				return true
			}
		}
		d.errorf(rng, "Unsupported attribute", "%s has no attribute %q; it has %s.", root, name, quoteList(attrs))
		return false
	}
	switch root {
	case "firmware":
		if !s.firmware {
			return notHere(fmt.Sprintf("firmware.* is not available in %s.", s.where))
		}
		return fixed(firmwareAttrs)
	case "board":
		if !s.board {
			return notHere(fmt.Sprintf("board.* is not available in %s.", s.where))
		}
		return fixed(boardAttrs)
	case "var":
		if s.vars == nil {
			return notHere(fmt.Sprintf("var.* is not available in %s.", s.where))
		}
		if !hasName {
			return true
		}
		if _, ok := s.vars[name]; !ok {
			d.errorf(rng, "Unknown variable", "There is no variable named %q.%s", name, didYouMean(name, keys(s.vars)))
			return false
		}
		return true
	case "capture", "measure":
		defined, all := s.captures, s.allCaptures
		noun := "capture"
		if root == "measure" {
			defined, all, noun = s.measures, s.allMeasures, "measurement"
		}
		if defined == nil {
			return notHere(fmt.Sprintf("%s.* is not available in %s.", root, s.where))
		}
		if !hasName || defined[name] {
			return true
		}
		if all[name] {
			d.errorf(rng, strings.ToUpper(noun[:1])+noun[1:]+" used before it is defined",
				"%s.%s is set by a later step (or in another test): a step can use only the %ss of the setup and of earlier steps of its own test.", root, name, noun)
			return false
		}
		d.errorf(rng, "Unknown "+noun, "No step defines %s.%s.%s", root, name, didYouMean(name, keys(defined)))
		return false
	case "repeat":
		if !s.repeat {
			return notHere(fmt.Sprintf("repeat.* is available only in the steps of a test with a repeat block, not in %s.", s.where))
		}
		return fixed(repeatAttrs)
	case "arg":
		if s.args == nil {
			return notHere(fmt.Sprintf("arg.* is only available in tool commands, not in %s.", s.where))
		}
		if !hasName || s.args[name] {
			return true
		}
		d.errorf(rng, "Unknown tool parameter", "arg.%s is not one of the tool's params (%s): add it to params.", name, quoteList(keys(s.args)))
		return false
	}
	allowed := []string{}
	if s.firmware {
		allowed = append(allowed, "firmware")
	}
	if s.board {
		allowed = append(allowed, "board")
	}
	if s.vars != nil {
		allowed = append(allowed, "var")
	}
	if s.captures != nil {
		allowed = append(allowed, "capture")
	}
	if s.measures != nil {
		allowed = append(allowed, "measure")
	}
	if s.args != nil {
		allowed = append(allowed, "arg")
	}
	if s.repeat {
		allowed = append(allowed, "repeat")
	}
	d.errorf(rng, "Unknown variable", "There is no variable named %q. Expressions in %s may refer to %s.", root, s.where, quoteList(allowed))
	return false
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// didYouMean suggests the closest name, as " Did you mean "x"?", or "".
func didYouMean(name string, options []string) string {
	if s := nameSuggestion(name, options); s != "" && s != name {
		return fmt.Sprintf(" Did you mean %q?", s)
	}
	return ""
}

func nameSuggestion(given string, options []string) string {
	best, bestD := "", 3
	for _, o := range options {
		if dist := levenshtein(given, o); dist < bestD {
			best, bestD = o, dist
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
