package specs

import (
	"fmt"
	"regexp"
	"strings"

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
)

// limited wraps f: pre (if any) vets the arguments before f runs, and the
// result may not exceed MaxValueBytes.
func limited(name string, f function.Function, pre func(args []cty.Value) error) function.Function {
	return function.New(&function.Spec{
		Description: f.Description(),
		Params:      f.Params(),
		VarParam:    f.VarParam(),
		Type: func(args []cty.Value) (cty.Type, error) {
			return f.ReturnTypeForValues(args)
		},
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if pre != nil {
				for _, a := range args {
					if !a.IsWhollyKnown() {
						return f.Call(args) // validation with placeholders: nothing to measure yet
					}
				}
				if err := pre(args); err != nil {
					return cty.NilVal, err
				}
			}
			v, err := f.Call(args)
			if err != nil {
				return v, err
			}
			if n := valueBytes(v, MaxValueBytes+1); n > MaxValueBytes {
				return cty.NilVal, fmt.Errorf("%s: the result is larger than %d bytes", name, MaxValueBytes)
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
func limitedFunctions(fs map[string]function.Function) map[string]function.Function {
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
		case "replace":
			pre = func(args []cty.Value) error {
				str, sub, rep := args[0].AsString(), args[1].AsString(), args[2].AsString()
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
		out[name] = limited(name, f, pre)
	}
	return out
}

// noForExpressions reports every `for` expression of a spec file: their
// nesting multiplies, so a few lines could exhaust the controller. In the
// JSON syntax, templates are parsed at evaluation, so their source is
// searched for a `for` instead.
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
	if loc := jsonFor.FindIndex(f.Bytes); loc != nil {
		deny(hcl.Range{Filename: filename, Start: hcl.Pos{Line: 1, Column: 1, Byte: loc[0]}, End: hcl.Pos{Line: 1, Column: 1, Byte: loc[1]}})
	}
	return diags
}

var jsonFor = regexp.MustCompile(`[\[{]\s*for\s`)
