package specs

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Firmware describes a firmware candidate (firmware.* in expressions).
type Firmware struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
	Path    string `json:"path"`
}

// BoardInfo describes the board a job runs on (board.* in expressions).
type BoardInfo struct {
	Name string            `json:"name"`
	Type string            `json:"type"`
	Tags map[string]string `json:"tags,omitempty"`
}

// Scope is what a run-time expression can see. Nil maps are empty.
type Scope struct {
	Firmware Firmware
	Board    BoardInfo
	Vars     map[string]any     // string, float64 or bool
	Captures map[string]string  // capture.*
	Measures map[string]float64 // measure.*
	Args     map[string]string  // arg.* (tool templates only)
	// Repeat is set while a repeated test runs: repeat.iteration (from 1)
	// and repeat.count (0 when by duration only).
	Repeat *RepeatScope
}

// RepeatScope is repeat.* of a campaign's iteration.
type RepeatScope struct {
	Iteration int
	Count     int
}

// Expr is an HCL expression kept for evaluation at run time, when the
// firmware, board, captures and measurements are known. Its zero value is
// not an expression (see IsZero).
type Expr struct {
	Source string `json:"source"` // the expression as written
	Range  Range  `json:"range"`
	expr   hcl.Expression
}

// NewExpr wraps an HCL expression. src is the file's source, used to keep the
// expression's text for display.
func NewExpr(e hcl.Expression, src []byte) Expr {
	r := e.Range()
	x := Expr{Range: rangeOf(r), expr: e}
	if src != nil && r.Start.Byte >= 0 && r.End.Byte <= len(src) && r.Start.Byte <= r.End.Byte {
		x.Source = string(src[r.Start.Byte:r.End.Byte])
	}
	return x
}

// IsZero reports whether e holds no expression.
func (e Expr) IsZero() bool { return e.expr == nil }

// MarshalJSON keeps the JSON form stable: the source text and its range.
func (e Expr) MarshalJSON() ([]byte, error) {
	type plain struct {
		Source string `json:"source"`
		Range  Range  `json:"range"`
	}
	return json.Marshal(plain{e.Source, e.Range})
}

func rangeOf(r hcl.Range) Range {
	return Range{
		Filename: r.Filename,
		Start:    Pos{Line: r.Start.Line, Column: r.Start.Column, Byte: r.Start.Byte},
		End:      Pos{Line: r.End.Line, Column: r.End.Column, Byte: r.End.Byte},
	}
}

// EvalError is an expression that failed at run time. Spec validation
// makes these rare (a capture that turned out not to be a number, say).
type EvalError struct {
	Range   Range
	Summary string
}

func (e *EvalError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.Range.Filename, e.Range.Start.Line, e.Range.Start.Column, e.Summary)
}

func (e Expr) eval(s *Scope, want cty.Type) (cty.Value, error) {
	if e.expr == nil {
		return cty.NilVal, &EvalError{Summary: "no expression"}
	}
	var ctx *hcl.EvalContext
	if !isConstant(e.expr) { // a literal needs no context: building one costs more than the step
		ctx = s.EvalContext()
	}
	v, diags := e.expr.Value(ctx)
	if diags.HasErrors() {
		return cty.NilVal, &EvalError{Range: e.Range, Summary: diags.Error()}
	}
	if v.IsNull() {
		return cty.NilVal, &EvalError{Range: e.Range, Summary: "expression is null"}
	}
	if !v.IsWhollyKnown() {
		return cty.NilVal, &EvalError{Range: e.Range, Summary: "expression value is not known"}
	}
	if want != cty.DynamicPseudoType {
		cv, err := convert.Convert(v, want)
		if err != nil {
			return cty.NilVal, &EvalError{Range: e.Range, Summary: fmt.Sprintf("%s required: %s", want.FriendlyName(), err)}
		}
		v = cv
	}
	return v, nil
}

// String evaluates e as a string.
func (e Expr) String(s *Scope) (string, error) {
	v, err := e.eval(s, cty.String)
	if err != nil {
		return "", err
	}
	return v.AsString(), nil
}

// Bool evaluates e as a bool.
func (e Expr) Bool(s *Scope) (bool, error) {
	v, err := e.eval(s, cty.Bool)
	if err != nil {
		return false, err
	}
	return v.True(), nil
}

// Number evaluates e as a number.
func (e Expr) Number(s *Scope) (float64, error) {
	v, err := e.eval(s, cty.Number)
	if err != nil {
		return 0, err
	}
	f, _ := v.AsBigFloat().Float64()
	return f, nil
}

// isConstant reports whether x is a literal: a literal value, or a
// template whose parts are all literals (most send texts and expect
// patterns). Its value needs no evaluation context.
func isConstant(x hcl.Expression) bool {
	switch t := x.(type) {
	case *hclsyntax.LiteralValueExpr:
		return true
	case *hclsyntax.TemplateWrapExpr:
		return isConstant(t.Wrapped)
	case *boundedTemplate:
		return isConstant(t.TemplateExpr)
	case *hclsyntax.TemplateExpr:
		for _, p := range t.Parts {
			if !isConstant(p) {
				return false
			}
		}
		return true
	}
	return false
}

// EvalContext builds the HCL evaluation context of the scope: firmware,
// board, var, capture, measure and arg, plus the safe standard functions.
func (s *Scope) EvalContext() *hcl.EvalContext {
	if s == nil {
		s = &Scope{}
	}
	tags := map[string]cty.Value{}
	for k, v := range s.Board.Tags {
		tags[k] = cty.StringVal(v)
	}
	vars := map[string]cty.Value{}
	for k, v := range s.Vars {
		vars[k] = goToCty(v)
	}
	caps := map[string]cty.Value{}
	for k, v := range s.Captures {
		caps[k] = cty.StringVal(v)
	}
	meas := map[string]cty.Value{}
	for k, v := range s.Measures {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue // cannot be a cty number; the runner never stores one
		}
		meas[k] = cty.NumberVal(new(big.Float).SetFloat64(v))
	}
	args := map[string]cty.Value{}
	for k, v := range s.Args {
		args[k] = cty.StringVal(v)
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{
			"firmware": cty.ObjectVal(map[string]cty.Value{
				"name":    cty.StringVal(s.Firmware.Name),
				"version": cty.StringVal(s.Firmware.Version),
				"sha256":  cty.StringVal(s.Firmware.SHA256),
				"path":    cty.StringVal(s.Firmware.Path),
			}),
			"board": cty.ObjectVal(map[string]cty.Value{
				"name": cty.StringVal(s.Board.Name),
				"type": cty.StringVal(s.Board.Type),
				"tags": mapOrEmpty(tags),
			}),
			"var":     cty.ObjectVal(vars),
			"capture": cty.ObjectVal(caps),
			"measure": cty.ObjectVal(meas),
			"arg":     cty.ObjectVal(args),
		},
		Functions: newFunctions(), // with a budget of its own
	}
	if s.Repeat != nil {
		ctx.Variables["repeat"] = cty.ObjectVal(map[string]cty.Value{
			repeatIterationVar: cty.NumberIntVal(int64(s.Repeat.Iteration)),
			repeatCountVar:     cty.NumberIntVal(int64(s.Repeat.Count)),
		})
	}
	return ctx
}

func mapOrEmpty(m map[string]cty.Value) cty.Value {
	if len(m) == 0 {
		return cty.MapValEmpty(cty.String) // cty.MapVal panics on an empty map
	}
	return cty.MapVal(m)
}

func goToCty(v any) cty.Value {
	switch x := v.(type) {
	case string:
		return cty.StringVal(x)
	case bool:
		return cty.BoolVal(x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return cty.StringVal(fmt.Sprint(x)) // cty numbers are finite
		}
		return cty.NumberFloatVal(x)
	case int:
		return cty.NumberIntVal(int64(x))
	case int64:
		return cty.NumberIntVal(x)
	default:
		return cty.StringVal(fmt.Sprint(x))
	}
}
