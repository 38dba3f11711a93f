package specs

import (
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// Limits on expressions. Specs are submitted by CI jobs and evaluated by the
// controller (at submit and while a job runs), so an expression must not be
// able to exhaust its memory or CPU: no value may grow past MaxValueBytes,
// functions that amplify their input are checked before they run, and
// `for` expressions (whose nesting multiplies) are not allowed in specs.
const (
	// MaxValueBytes bounds any string (or the strings of any collection) a
	// function returns.
	MaxValueBytes = 64 << 10
	// MaxRange bounds the number of elements range() may produce.
	MaxRange = 1024
	// maxFormatWidth bounds a width or precision in format() verbs.
	maxFormatWidth = 1024
	// MaxEvalBytes bounds the bytes that all the function calls and
	// templates of one evaluation may produce together (the values of a
	// tuple of many calls, say).
	MaxEvalBytes = 4 << 20
	// maxArgBytes bounds the size of a function's arguments together.
	maxArgBytes = 4 * MaxValueBytes
)

// evalBudget is what one evaluation context has produced so far.
type evalBudget struct{ used atomic.Int64 }

func (b *evalBudget) charge(what string, n int) error {
	if b == nil {
		return nil
	}
	if b.used.Add(int64(n)) > MaxEvalBytes {
		return fmt.Errorf("%s: the expression produces more than %d bytes in all (limit of one evaluation)", what, MaxEvalBytes)
	}
	return nil
}

// chargeFunc is the name under which an evaluation context holds its
// budget (as a function, so that templates can charge it too). It is not
// an identifier, so no expression can call it.
const chargeFunc = "hilfarm:charge"

// newFunctions returns the functions of one evaluation context, with a
// budget of their own: every result is charged to it.
func newFunctions() map[string]function.Function { return newFunctionsOf(Functions()) }

func newFunctionsOf(base map[string]function.Function) map[string]function.Function {
	b := &evalBudget{}
	fs := limitedFunctions(base, b)
	fs[chargeFunc] = function.New(&function.Spec{
		Params: []function.Parameter{{Name: "n", Type: cty.Number}},
		Type:   function.StaticReturnType(cty.Bool),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			n, _ := args[0].AsBigFloat().Int64()
			if err := b.charge("template", int(n)); err != nil {
				return cty.NilVal, err
			}
			return cty.True, nil
		},
	})
	return fs
}

// NewEvalContext returns an evaluation context with hilfarm's bounded
// functions (and a fresh budget) and the given variables.
func NewEvalContext(vars map[string]cty.Value) *hcl.EvalContext {
	return &hcl.EvalContext{Variables: vars, Functions: newFunctions()}
}

// chargeTemplate charges n bytes of a template's result to ctx's budget.
func chargeTemplate(ctx *hcl.EvalContext, n int) error {
	for ; ctx != nil; ctx = ctx.Parent() {
		if f, ok := ctx.Functions[chargeFunc]; ok {
			_, err := f.Call([]cty.Value{cty.NumberIntVal(int64(n))})
			return err
		}
	}
	return nil
}

// limited wraps f: pre (if any) vets the arguments before f runs, and the
// result may not exceed MaxValueBytes.
func limited(name string, f function.Function, pre func(args []cty.Value) error, b *evalBudget) function.Function {
	return function.New(&function.Spec{
		Description: f.Description(),
		Params:      f.Params(),
		VarParam:    f.VarParam(),
		Type: func(args []cty.Value) (cty.Type, error) {
			return f.ReturnTypeForValues(args)
		},
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			known := true
			for _, a := range args {
				known = known && a.IsWhollyKnown()
			}
			if known {
				n := 0
				for _, a := range args {
					n += valueBytes(a, maxArgBytes+1-n)
					if n > maxArgBytes {
						return cty.NilVal, fmt.Errorf("%s: the arguments are larger than %d bytes", name, maxArgBytes)
					}
				}
				if pre != nil {
					if err := pre(args); err != nil {
						return cty.NilVal, err
					}
				}
			}
			v, err := f.Call(args)
			if err != nil {
				return v, err
			}
			if n := valueBytes(v, MaxValueBytes+1); n > MaxValueBytes {
				return cty.NilVal, fmt.Errorf("%s: the result is larger than %d bytes", name, MaxValueBytes)
			} else if err := b.charge(name, n); err != nil {
				return cty.NilVal, err
			}
			return v, nil
		},
	})
}

// valueBytes is the size of v's strings (and a little per element), counted
// up to stop.
func valueBytes(v cty.Value, stop int) int {
	if !v.IsKnown() || v.IsNull() {
		return 0
	}
	ty := v.Type()
	switch {
	case ty == cty.String:
		return len(v.AsString())
	case ty.IsListType() || ty.IsSetType() || ty.IsTupleType() || ty.IsMapType() || ty.IsObjectType():
		n := 0
		for it := v.ElementIterator(); it.Next() && n < stop; {
			k, e := it.Element()
			n += 8 + valueBytes(e, stop-n)
			if k.Type() == cty.String {
				n += len(k.AsString())
			}
		}
		return n
	default:
		return 8
	}
}

var formatVerb = regexp.MustCompile(`%[-+# 0]*(\d*)(?:\.(\d*))?`)

func checkFormat(format string) error {
	for _, m := range formatVerb.FindAllStringSubmatch(format, -1) {
		for _, num := range m[1:] {
			if len(num) > 4 || (num != "" && atoiSmall(num) > maxFormatWidth) {
				return fmt.Errorf("format: a width or precision above %d is not allowed", maxFormatWidth)
			}
		}
	}
	return nil
}

func atoiSmall(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func toInt(v cty.Value) (int64, bool) {
	if v.Type() != cty.Number {
		return 0, false
	}
	i, _ := v.AsBigFloat().Int64()
	return i, true
}

// limitedFunctions wraps the functions that can amplify their input.
func limitedFunctions(fs map[string]function.Function, b *evalBudget) map[string]function.Function {
	out := make(map[string]function.Function, len(fs))
	for name, f := range fs {
		var pre func([]cty.Value) error
		switch name {
		case "format":
			pre = func(args []cty.Value) error { return checkFormat(args[0].AsString()) }
		case "formatlist":
			pre = func(args []cty.Value) error { return checkFormat(args[0].AsString()) }
		case "join":
			pre = func(args []cty.Value) error {
				sep := len(args[0].AsString())
				n := 0
				for _, l := range args[1:] {
					for it := l.ElementIterator(); it.Next(); {
						_, e := it.Element()
						n += sep + valueBytes(e, MaxValueBytes+1)
						if n > MaxValueBytes {
							return fmt.Errorf("join: the result would be larger than %d bytes", MaxValueBytes)
						}
					}
				}
				return nil
			}
		case "regex", "regexall":
			pre = func(args []cty.Value) error { return CheckRegex(args[0].AsString()) }
		case "replace":
			pre = func(args []cty.Value) error {
				str, sub, rep := args[0].AsString(), args[1].AsString(), args[2].AsString()
				if len(sub) > 1 && strings.HasPrefix(sub, "/") && strings.HasSuffix(sub, "/") {
					if err := CheckRegex(sub[1 : len(sub)-1]); err != nil {
						return err
					}
				}
				count := len(str) + 1 // a regular expression may match anywhere
				if !(len(sub) > 1 && strings.HasPrefix(sub, "/") && strings.HasSuffix(sub, "/")) && sub != "" {
					count = strings.Count(str, sub)
				}
				if len(str)+count*len(rep) > MaxValueBytes {
					return fmt.Errorf("replace: the result would be larger than %d bytes", MaxValueBytes)
				}
				return nil
			}
		case "indent":
			pre = func(args []cty.Value) error {
				n, ok := toInt(args[0])
				lines := strings.Count(args[1].AsString(), "\n") + 1
				if !ok || n < 0 || n > maxFormatWidth || int(n)*lines+len(args[1].AsString()) > MaxValueBytes {
					return fmt.Errorf("indent: the result would be larger than %d bytes", MaxValueBytes)
				}
				return nil
			}
		case "range":
			pre = func(args []cty.Value) error {
				nums := make([]float64, len(args))
				for i, a := range args {
					if a.Type() != cty.Number {
						return nil // range reports its own type errors
					}
					nums[i], _ = a.AsBigFloat().Float64()
				}
				start, limit, step := 0.0, 0.0, 1.0
				switch len(nums) {
				case 1:
					limit = nums[0]
				case 2:
					start, limit = nums[0], nums[1]
				case 3:
					start, limit, step = nums[0], nums[1], nums[2]
				default:
					return nil
				}
				if step != 0 && (limit-start)/step > MaxRange {
					return fmt.Errorf("range: more than %d elements", MaxRange)
				}
				return nil
			}
		}
		out[name] = limited(name, f, pre, b)
	}
	return out
}

// noForExpressions reports every `for` expression of a spec file: their
// nesting multiplies, so a few lines could exhaust the controller. The
// check is made on the parsed expressions: in the native syntax the file's
// tree; in the JSON syntax, where templates are parsed only when
// evaluated, each string parsed as the template it will be.
func noForExpressions(f *hcl.File, filename string) hcl.Diagnostics {
	var diags hcl.Diagnostics
	deny := func(r hcl.Range) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "for expressions are not allowed in specs",
			Detail:  "A spec is evaluated by the farm's controller; `for` expressions can multiply without bound, so specs cannot use them. List the values instead.",
			Subject: r.Ptr()})
	}
	if body, ok := f.Body.(*hclsyntax.Body); ok {
		hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
			if fe, ok := n.(*hclsyntax.ForExpr); ok {
				deny(fe.SrcRange)
			}
			return nil
		})
		return diags
	}
	jsonForExpressions(f.Bytes, filename, deny)
	return diags
}
