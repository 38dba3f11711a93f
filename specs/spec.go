package specs

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Spec defaults.
const (
	DefaultSpecTimeout = 10 * time.Minute
	DefaultWithin      = 10 * time.Second // expect, measure and wait for a line
	DefaultLineEnding  = "\n"
	MaxRetries         = 10
)

// Variable types.
const (
	TypeString = "string"
	TypeNumber = "number"
	TypeBool   = "bool"
)

// SpecOptions tunes ParseSpec and LoadSpec.
type SpecOptions struct {
	// Vars override variables' defaults (e.g. from a job submission); each
	// value is parsed per the variable's type ("3.5", "true").
	Vars map[string]string
	// Farm, when set, validates the spec against it: some board matches the
	// selector, and every flash step, gpio line and tool exists on the
	// matching boards.
	Farm *Farm
	// RequireVars makes a variable with neither a default nor an override
	// an error (at submit). Without it such a variable is simply left out
	// of Spec.Vars, and expressions using it are type-checked only.
	RequireVars bool
	// IgnoreUnknownVars skips entries of Vars that the spec does not
	// declare instead of reporting them (for validating many specs with
	// one set of --var flags).
	IgnoreUnknownVars bool
}

var specFileSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "spec", LabelNames: []string{"name"}},
		{Type: "variable", LabelNames: []string{"name"}},
	},
}

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "type"}, {Name: "default"}, {Name: "description"}},
}

var specSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "description"}, {Name: "timeout"}, {Name: "idle_timeout"}, {Name: "line_ending"},
		{Name: "fail_on"}, {Name: "fail_on_regex"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "board"}, {Type: "setup"}, {Type: "test", LabelNames: []string{"name"}}, {Type: "teardown"},
	},
}

var selectorSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "type"}, {Name: "tags"}},
}

var stepBlocks = []hcl.BlockHeaderSchema{
	{Type: string(StepFlash)},
	{Type: string(StepPower), LabelNames: []string{"action"}},
	{Type: string(StepReset)},
	{Type: string(StepSend)},
	{Type: string(StepExpect)},
	{Type: string(StepMeasure), LabelNames: []string{"name"}},
	{Type: string(StepAssert)},
	{Type: string(StepGPIO), LabelNames: []string{"line"}},
	{Type: string(StepWait)},
	{Type: string(StepTool), LabelNames: []string{"name"}},
}

var sectionSchema = &hcl.BodySchema{Blocks: stepBlocks}

var testSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "retries"}, {Name: "timeout"}},
	Blocks:     append([]hcl.BlockHeaderSchema{{Type: "repeat"}}, stepBlocks...),
}

var stepSchemas = map[StepKind]*hcl.BodySchema{
	StepFlash:   {Attributes: []hcl.AttributeSchema{{Name: "timeout"}}},
	StepPower:   {Attributes: powerAttrs},
	StepReset:   {},
	StepSend:    {Attributes: []hcl.AttributeSchema{{Name: "line"}, {Name: "raw"}}},
	StepExpect:  {Attributes: []hcl.AttributeSchema{{Name: "text"}, {Name: "regex"}, {Name: "within"}, {Name: "capture"}}},
	StepMeasure: {Attributes: []hcl.AttributeSchema{{Name: "regex", Required: true}, {Name: "group"}, {Name: "unit"}, {Name: "within"}, {Name: "min"}, {Name: "max"}, {Name: "marginal_min"}, {Name: "marginal_max"}}},
	StepAssert:  {Attributes: []hcl.AttributeSchema{{Name: "that", Required: true}, {Name: "message"}}},
	StepGPIO:    {Attributes: []hcl.AttributeSchema{{Name: "set", Required: true}, {Name: "for"}}},
	StepWait:    {Attributes: []hcl.AttributeSchema{{Name: "for"}, {Name: "gpio"}, {Name: "value"}, {Name: "within"}}},
	StepTool:    {Attributes: []hcl.AttributeSchema{{Name: "args"}, {Name: "timeout"}, {Name: "capture"}}},
}

// LoadSpec reads and decodes a test spec file (.hcl, or .hcl.json for the JSON syntax).
func LoadSpec(path string, opts SpecOptions) (*Spec, Diagnostics) {
	src, diags := readSource(path)
	if diags.HasErrors() {
		diags[0].Detail = path + ": " + diags[0].Detail
		return nil, newDiagnostics(diags, nil)
	}
	return ParseSpec(src, path, opts)
}

// ParseSpec decodes and validates a test spec's source. filename names it
// in diagnostics and picks the syntax. Every error in the file is
// reported; the spec is nil when there is one.
func ParseSpec(src []byte, filename string, opts SpecOptions) (*Spec, Diagnostics) {
	f, files, diags := parse(src, filename)
	if diags.HasErrors() {
		return nil, newDiagnostics(diags, files)
	}
	if fd := noForExpressions(f, filename); fd.HasErrors() {
		return nil, newDiagnostics(append(diags, fd...), files)
	}
	d := &decoder{diags: diags, src: src}
	spec := d.specFile(f.Body, filename, opts)
	if spec != nil && opts.Farm != nil {
		d.againstFarm(spec, opts.Farm)
	}
	if d.diags.HasErrors() {
		return nil, newDiagnostics(d.diags, files)
	}
	return spec, newDiagnostics(d.diags, files)
}

func (d *decoder) specFile(body hcl.Body, filename string, opts SpecOptions) *Spec {
	c := d.content(body, specFileSchema)
	spec := &Spec{Filename: filename, Timeout: DefaultSpecTimeout, LineEnding: DefaultLineEnding}

	// Variables first: their values are in scope for everything else.
	varVals := map[string]cty.Value{}
	spec.Vars = map[string]any{}
	names := newNameCheck("variable")
	d.ctx = &hcl.EvalContext{Functions: newFunctions()}
	for _, b := range c.Blocks {
		if b.Type != "variable" {
			continue
		}
		names.check(d, b.Labels[0], b.LabelRanges[0])
		v, val := d.variable(b, opts)
		spec.Variables = append(spec.Variables, v)
		varVals[v.Name] = val
		if val.IsKnown() {
			spec.Vars[v.Name] = ctyToGo(val)
		}
	}
	for _, k := range keys(opts.Vars) {
		if _, ok := varVals[k]; !ok && !opts.IgnoreUnknownVars {
			d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown variable override",
				Detail: fmt.Sprintf("The spec declares no variable %q.%s", k, didYouMean(k, keys(varVals)))})
		}
	}
	if len(spec.Vars) == 0 {
		spec.Vars = nil
	}
	d.ctx = &hcl.EvalContext{Functions: newFunctions(), Variables: map[string]cty.Value{"var": cty.ObjectVal(varVals)}}

	var specBlocks []*hcl.Block
	for _, b := range c.Blocks {
		if b.Type == "spec" {
			specBlocks = append(specBlocks, b)
		}
	}
	switch len(specBlocks) {
	case 0:
		d.errorf(body.MissingItemRange(), "Missing spec block", `A spec file needs one spec "NAME" { ... } block.`)
		return nil
	case 1:
	default:
		d.errorf(specBlocks[1].DefRange, "Duplicate spec block", "A spec file holds one spec; the first is at %s.", shortPos(specBlocks[0].DefRange))
	}
	d.spec(specBlocks[0], spec, varVals)
	return spec
}

func (d *decoder) variable(b *hcl.Block, opts SpecOptions) (Variable, cty.Value) {
	v := Variable{Name: d.ident(b, "variable")}
	c := d.content(b.Body, variableSchema)
	v.Description = d.str(c.Attributes["description"], "")
	ty := cty.NilType
	if a := c.Attributes["type"]; a != nil {
		switch kw := hcl.ExprAsKeyword(a.Expr); kw {
		case TypeString:
			ty = cty.String
		case TypeNumber:
			ty = cty.Number
		case TypeBool:
			ty = cty.Bool
		default:
			d.errorf(a.Expr.Range(), "Invalid variable type", "A variable's type is string, number or bool.")
			ty = cty.String
		}
	}
	var def cty.Value
	if a := c.Attributes["default"]; a != nil {
		val, diags := a.Expr.Value(d.ctx)
		d.add(diags...)
		if !diags.HasErrors() && !val.IsNull() {
			if ty == cty.NilType {
				switch val.Type() {
				case cty.Number, cty.Bool:
					ty = val.Type()
				default:
					ty = cty.String
				}
			}
			cv, err := convert.Convert(val, ty)
			if err != nil || !cv.IsWhollyKnown() {
				d.errorf(a.Expr.Range(), "Invalid default value", "The default of variable %q must be a %s.", v.Name, ty.FriendlyName())
			} else if n := valueBytes(cv, MaxValueBytes+1); n > MaxValueBytes {
				d.errorf(a.Expr.Range(), "Value too large", "The default of variable %q is larger than %d bytes (the limit of any value in a spec).", v.Name, MaxValueBytes)
			} else {
				def = cv
			}
		}
	}
	if ty == cty.NilType {
		ty = cty.String
	}
	v.Type = ty.FriendlyName()
	if def != cty.NilVal {
		v.Default = ctyToGo(def)
	}
	val := def
	if s, ok := opts.Vars[v.Name]; ok {
		o, err := parseOverride(s, ty)
		if err == nil && len(s) > MaxValueBytes {
			err = fmt.Errorf("larger than %d bytes", MaxValueBytes)
		}
		if err != nil {
			d.errorf(b.DefRange, "Invalid value for variable", "The value given for var.%s, %q, is not a %s.", v.Name, s, ty.FriendlyName())
		} else {
			val = o
		}
	}
	if val == cty.NilVal {
		if opts.RequireVars {
			d.errorf(b.DefRange, "Missing variable value", "The variable %q has no default: give it a value.", v.Name)
		}
		val = cty.UnknownVal(ty)
	}
	return v, val
}

func parseOverride(s string, ty cty.Type) (cty.Value, error) {
	switch ty {
	case cty.Number:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return cty.NilVal, err
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return cty.NilVal, fmt.Errorf("%q is not a finite number", s)
		}
		return cty.NumberFloatVal(f), nil
	case cty.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return cty.NilVal, err
		}
		return cty.BoolVal(b), nil
	}
	return cty.StringVal(s), nil
}

func ctyToGo(v cty.Value) any {
	switch v.Type() {
	case cty.Number:
		f, _ := v.AsBigFloat().Float64()
		return f
	case cty.Bool:
		return v.True()
	}
	return v.AsString()
}

// runState tracks what captures and measurements exist at a point of the run order.
type runState struct {
	captures map[string]bool
	measures map[string]bool
}

func (r runState) clone() runState {
	c := runState{captures: map[string]bool{}, measures: map[string]bool{}}
	for k := range r.captures {
		c.captures[k] = true
	}
	for k := range r.measures {
		c.measures[k] = true
	}
	return c
}

// specCtx is what decoding steps of one spec needs.
type specCtx struct {
	vars        map[string]cty.Value
	allCaptures map[string]bool
	allMeasures map[string]bool
	measureName *nameCheck
	steps       int     // decoded so far, against MaxSteps
	repeat      *Repeat // the repeat block of the test being decoded; nil: not repeated
}

// MaxSteps bounds the steps of a spec: setup, every test and teardown together.
const MaxSteps = 2000

func (sc *specCtx) scope(st runState) *exprScope {
	return &exprScope{where: "a spec", firmware: true, board: true, vars: sc.vars, repeat: sc.repeat != nil,
		captures: st.captures, measures: st.measures, allCaptures: sc.allCaptures, allMeasures: sc.allMeasures}
}

func (d *decoder) spec(b *hcl.Block, spec *Spec, vars map[string]cty.Value) {
	spec.Name = b.Labels[0]
	spec.Range = rangeOf(b.DefRange)
	c := d.content(b.Body, specSchema)
	spec.Description = d.str(c.Attributes["description"], "")
	spec.Timeout = d.duration(c.Attributes["timeout"], DefaultSpecTimeout)
	spec.IdleTimeout = d.duration(c.Attributes["idle_timeout"], 0)
	spec.LineEnding = d.str(c.Attributes["line_ending"], DefaultLineEnding)

	failScope := &exprScope{where: "fail_on", firmware: true, board: true, vars: vars}
	if a := c.Attributes["fail_on"]; a != nil {
		for _, e := range d.exprList(a) {
			if _, ok := d.check(e, failScope, cty.String, "fail_on pattern"); ok {
				x := NewExpr(e, d.src)
				spec.FailOn = append(spec.FailOn, Pattern{Text: &x})
			}
		}
	}
	if a := c.Attributes["fail_on_regex"]; a != nil {
		for _, e := range d.exprList(a) {
			if _, ok := d.checkRegex(e, failScope, "fail_on_regex pattern"); ok {
				x := NewExpr(e, d.src)
				spec.FailOn = append(spec.FailOn, Pattern{Regex: &x})
			}
		}
	}

	sc := &specCtx{vars: vars, allCaptures: map[string]bool{}, allMeasures: map[string]bool{}, measureName: newNameCheck("measurement")}
	var boardB, setupB, teardownB *hcl.Block
	var tests []*hcl.Block
	for _, x := range c.Blocks {
		var slot **hcl.Block
		switch x.Type {
		case "board":
			slot = &boardB
		case "setup":
			slot = &setupB
		case "teardown":
			slot = &teardownB
		case "test":
			tests = append(tests, x)
			continue
		}
		if *slot != nil {
			d.errorf(x.DefRange, "Duplicate "+x.Type+" block", "A spec has at most one %s block; the first is at %s.", x.Type, shortPos((*slot).DefRange))
			continue
		}
		*slot = x
	}
	if boardB == nil {
		d.errorf(b.DefRange, "Missing board block", `The spec needs a board selector, e.g. board { type = "sim" }.`)
	} else {
		sel := d.content(boardB.Body, selectorSchema)
		spec.Board.Type = d.str(sel.Attributes["type"], "")
		spec.Board.Tags = d.strMap(sel.Attributes["tags"])
		r := boardB.DefRange
		for i, name := range []string{"type", "tags"} {
			if a := sel.Attributes[name]; a != nil {
				if i == 0 || sel.Attributes["type"] == nil {
					r = a.Range
				} else {
					r = hcl.RangeBetween(r, a.Range)
				}
			}
		}
		spec.Board.Range = rangeOf(r)
		if spec.Board.Type == "" && len(spec.Board.Tags) == 0 {
			d.errorf(boardB.DefRange, "Empty board selector", "The board block needs a type, tags, or both.")
		}
	}
	if len(tests) == 0 {
		d.errorf(b.DefRange, "No tests", `The spec needs at least one test "NAME" { ... } block.`)
	}

	// Pass 1: the steps of every section, and every capture and measurement name.
	sections := func(x *hcl.Block, schema *hcl.BodySchema) ([]*hcl.Block, *hcl.BodyContent) {
		if x == nil {
			return nil, nil
		}
		cc := d.content(x.Body, schema)
		for _, s := range cc.Blocks {
			scanDefinition(s, sc)
		}
		return cc.Blocks, cc
	}
	setupSteps, _ := sections(setupB, sectionSchema)
	teardownSteps, _ := sections(teardownB, sectionSchema)
	testSteps := make([][]*hcl.Block, len(tests))
	testContent := make([]*hcl.BodyContent, len(tests))
	for i, t := range tests {
		testSteps[i], testContent[i] = sections(t, testSchema)
	}

	// Pass 2: decode in run order, tracking what is defined.
	start := runState{captures: map[string]bool{}, measures: map[string]bool{}}
	spec.Setup = d.steps(setupSteps, sc, &start)
	testNames := newNameCheck("test")
	for i, t := range tests {
		testNames.check(d, t.Labels[0], t.LabelRanges[0])
		st := start.clone()
		tt := Test{Name: t.Labels[0], Range: rangeOf(t.DefRange)}
		tt.Retries = d.integer(testContent[i].Attributes["retries"], 0, 0, MaxRetries)
		tt.Timeout = d.duration(testContent[i].Attributes["timeout"], 0)
		repeats, steps := repeatBlocks(testSteps[i])
		tt.Repeat = d.repeat(repeats, testContent[i].Attributes["retries"])
		sc.repeat = tt.Repeat
		tt.Steps = d.steps(steps, sc, &st)
		sc.repeat = nil
		if len(steps) == 0 {
			d.errorf(t.DefRange, "Empty test", "The test %q has no steps.", t.Labels[0])
		}
		spec.Tests = append(spec.Tests, tt)
	}
	td := start.clone()
	spec.Teardown = d.steps(teardownSteps, sc, &td)
}

// exprList splits a list attribute into its element expressions.
func (d *decoder) exprList(a *hcl.Attribute) []hcl.Expression {
	elems, diags := hcl.ExprList(a.Expr)
	d.add(diags...)
	return elems
}

// scanDefinition notes the capture or measurement a step defines, if any.
func scanDefinition(b *hcl.Block, sc *specCtx) {
	switch StepKind(b.Type) {
	case StepMeasure:
		sc.allMeasures[b.Labels[0]] = true
	case StepExpect, StepTool:
		c, _, _ := b.Body.PartialContent(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "capture"}}})
		if c == nil || c.Attributes["capture"] == nil {
			return
		}
		v, diags := c.Attributes["capture"].Expr.Value(nil)
		if !diags.HasErrors() && v.Type() == cty.String && v.IsKnown() && !v.IsNull() {
			sc.allCaptures[v.AsString()] = true
		}
	}
}

func (d *decoder) steps(blocks []*hcl.Block, sc *specCtx, st *runState) []Step {
	var out []Step
	for _, b := range blocks {
		sc.steps++
		if sc.steps > MaxSteps {
			if sc.steps == MaxSteps+1 {
				d.errorf(b.DefRange, "Too many steps",
					"The spec has more than %d steps (setup, tests and teardown together); hilfarm refuses larger specs (limit: %d steps).", MaxSteps, MaxSteps)
			}
			continue
		}
		if s, ok := d.step(b, sc, st); ok {
			out = append(out, s)
		}
	}
	return out
}

func (d *decoder) step(b *hcl.Block, sc *specCtx, st *runState) (Step, bool) {
	kind := StepKind(b.Type)
	step := Step{Kind: kind, Range: rangeOf(b.DefRange)}
	c := d.content(b.Body, stepSchemas[kind])
	at := c.Attributes
	scope := sc.scope(*st)
	nerr := d.errCount()
	runExpr := func(a *hcl.Attribute, want cty.Type, what string) *Expr {
		if a == nil {
			return nil
		}
		if _, ok := d.check(a.Expr, scope, want, what); !ok {
			return nil
		}
		x := NewExpr(a.Expr, d.src)
		return &x
	}
	regexExpr := func(a *hcl.Attribute, what string) (*Expr, int) {
		if a == nil {
			return nil, -1
		}
		re, ok := d.checkRegex(a.Expr, scope, what)
		if !ok {
			return nil, -1
		}
		x := NewExpr(a.Expr, d.src)
		if re == nil {
			return &x, -1
		}
		return &x, re.NumSubexp()
	}
	exactlyOne := func(names ...string) {
		var got []string
		for _, n := range names {
			if at[n] != nil {
				got = append(got, n)
			}
		}
		if len(got) != 1 {
			d.errorf(b.DefRange, "Invalid "+b.Type+" step", "The %s step needs exactly one of %s.", b.Type, quoteList(names))
		}
	}
	var defines string // the capture this step defines, set after its own expressions are checked

	switch kind {
	case StepFlash:
		step.Flash = &FlashStep{Timeout: d.duration(at["timeout"], 0)}
	case StepPower:
		action := b.Labels[0]
		switch action {
		case PowerOn, PowerOff, PowerCycle, PowerCut:
		default:
			d.errorf(b.LabelRanges[0], "Invalid power action", "A power step is power \"on\", power \"off\", power \"cycle\" or power \"cut\"; got %q.", action)
		}
		step.Power = &PowerStep{Action: action}
		if action == PowerCut {
			step.Power.OffFor = d.boundedDuration(at["off_for"], 0, false, MaxCutDelay)
			step.Power.Cut = d.cut(b, at, scope, sc.repeat)
		} else {
			step.Power.OffFor = d.duration(at["off_for"], 0)
			for _, n := range cutAttrs {
				if at[n] != nil {
					d.errorf(at[n].NameRange, "Invalid power step", "%s applies to power \"cut\" only.", n)
				}
			}
		}
		if at["off_for"] != nil && action != PowerCycle && action != PowerCut {
			d.errorf(at["off_for"].NameRange, "Invalid power step", "off_for applies to power \"cycle\" and power \"cut\" only.")
		}
	case StepReset:
		step.Reset = &ResetStep{}
	case StepSend:
		exactlyOne("line", "raw")
		step.Send = &SendStep{Line: runExpr(at["line"], cty.String, "line to send")}
		if a := at["raw"]; a != nil {
			if v, ok := d.check(a.Expr, scope, cty.String, "raw bytes to send"); ok {
				if v.IsKnown() {
					if _, err := decodeEscapes(v.AsString()); err != nil {
						d.errorf(a.Expr.Range(), "Invalid escape in raw bytes", "%v. Write a byte as \\\\xNN in HCL (the string holds \\xNN), a backslash as \\\\\\\\.", err)
					}
				}
				x := NewExpr(a.Expr, d.src)
				step.Send.Raw = &x
			}
		}
	case StepExpect:
		exactlyOne("text", "regex")
		e := &ExpectStep{Within: d.duration(at["within"], DefaultWithin)}
		e.Pattern.Text = runExpr(at["text"], cty.String, "expected text")
		if a := at["text"]; e.Pattern.Text != nil {
			if v, diags := a.Expr.Value(nil); !diags.HasErrors() && v.Type() == cty.String && v.IsKnown() && !v.IsNull() && v.AsString() == "" {
				d.errorf(a.Expr.Range(), "Empty expected text", "An expect step with empty text would match at once; expect something the board prints.")
			}
		}
		e.Pattern.Regex, _ = regexExpr(at["regex"], "regex")
		if a := at["capture"]; a != nil {
			e.Capture = d.captureName(a)
			defines = e.Capture
		}
		step.Expect = e
	case StepMeasure:
		name := b.Labels[0]
		if !hclsyntax.ValidIdentifier(name) {
			d.errorf(b.LabelRanges[0], "Invalid name", "The measurement name %q must start with a letter or underscore and hold only letters, digits, underscores and dashes.", name)
		}
		sc.measureName.check(d, name, b.LabelRanges[0])
		m := &MeasureStep{Name: name, Group: 1, Within: d.duration(at["within"], DefaultWithin)}
		re, groups := regexExpr(at["regex"], "regex")
		if re != nil {
			m.Regex = *re
		}
		m.Group = d.integer(at["group"], 1, 0, 99)
		if groups >= 0 && m.Group > groups {
			r := b.DefRange
			if at["group"] != nil {
				r = at["group"].Expr.Range()
			} else if at["regex"] != nil {
				r = at["regex"].Expr.Range()
			}
			d.errorf(r, "No such regex group", "The measurement reads group %d, but the regex has %d group(s): put the number in parentheses, e.g. \"temp=([0-9.]+)C\".", m.Group, groups)
		}
		m.Unit = d.str(at["unit"], "")
		m.Min, m.Max = d.number(at["min"]), d.number(at["max"])
		m.MarginalMin, m.MarginalMax = d.number(at["marginal_min"]), d.number(at["marginal_max"])
		d.checkLimits(at, m)
		step.Measure = m
	case StepAssert:
		a := &AssertStep{Message: runExpr(at["message"], cty.String, "message")}
		if x := runExpr(at["that"], cty.Bool, "assert condition"); x != nil {
			a.That = *x
		}
		step.Assert = a
	case StepGPIO:
		g := &GPIOStep{Line: b.Labels[0], For: d.duration(at["for"], 0)}
		g.Set = d.level(at["set"])
		step.GPIO = g
	case StepWait:
		w := &WaitStep{}
		if at["for"] != nil && at["gpio"] != nil || at["for"] == nil && at["gpio"] == nil {
			d.errorf(b.DefRange, "Invalid wait step", `A wait step waits for a duration (for = "1s") or for a gpio line (gpio = "led", value = 1, within = "2s"), not both.`)
		}
		w.For = d.duration(at["for"], 0)
		if at["gpio"] != nil {
			w.GPIO = d.str(at["gpio"], "")
			w.Value = 1
			if at["value"] != nil {
				w.Value = d.level(at["value"])
			}
			w.Within = d.duration(at["within"], DefaultWithin)
		} else {
			for _, n := range []string{"value", "within"} {
				if at[n] != nil {
					d.errorf(at[n].NameRange, "Invalid wait step", "%s applies only when waiting for a gpio line.", n)
				}
			}
		}
		step.Wait = w
	case StepTool:
		t := &ToolStep{Name: b.Labels[0], Timeout: d.duration(at["timeout"], 0)}
		if a := at["args"]; a != nil {
			pairs, diags := hcl.ExprMap(a.Expr)
			d.add(diags...)
			t.Args = map[string]*Expr{}
			for _, p := range pairs {
				k := hcl.ExprAsKeyword(p.Key)
				if k == "" {
					kv, diags := p.Key.Value(nil)
					if diags.HasErrors() || kv.Type() != cty.String || !kv.IsKnown() || kv.IsNull() {
						d.errorf(p.Key.Range(), "Invalid argument name", "A tool argument's name is an identifier or a string.")
						continue
					}
					k = kv.AsString()
				}
				if x := runExpr(&hcl.Attribute{Name: k, Expr: p.Value}, cty.String, "tool argument "+strconv.Quote(k)); x != nil {
					t.Args[k] = x
				}
			}
		}
		if a := at["capture"]; a != nil {
			t.Capture = d.captureName(a)
			defines = t.Capture
		}
		step.Tool = t
	}
	if defines != "" {
		st.captures[defines] = true
	}
	if step.Measure != nil {
		st.measures[step.Measure.Name] = true
	}
	return step, d.errCount() == nerr
}

func (d *decoder) captureName(a *hcl.Attribute) string {
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() || v.Type() != cty.String || !v.IsKnown() || v.IsNull() || !hclsyntax.ValidIdentifier(v.AsString()) {
		d.errorf(a.Expr.Range(), "Invalid capture name", "capture names the value for capture.NAME: a constant identifier such as \"version\".")
		return ""
	}
	return v.AsString()
}

// level reads a line value: 0, 1, false or true.
func (d *decoder) level(a *hcl.Attribute) int {
	if a == nil {
		return 0
	}
	v, diags := a.Expr.Value(d.ctx)
	d.add(diags...)
	if diags.HasErrors() || !v.IsWhollyKnown() {
		return 0
	}
	if !v.IsNull() && v.Type() == cty.Bool {
		if v.True() {
			return 1
		}
		return 0
	}
	if !v.IsNull() && v.Type() == cty.Number {
		if bf := v.AsBigFloat(); bf.IsInt() {
			if n, _ := bf.Int64(); n == 0 || n == 1 {
				return int(n)
			}
		}
	}
	d.errorf(a.Expr.Range(), "Invalid line value", "The attribute %q is a line level: 0, 1, false or true.", a.Name)
	return 0
}

func (d *decoder) checkLimits(at hcl.Attributes, m *MeasureStep) {
	bad := func(name, detail string, args ...any) {
		d.errorf(at[name].Expr.Range(), "Invalid measurement limits", detail, args...)
	}
	if m.Min != nil && m.Max != nil && *m.Min > *m.Max {
		bad("min", "min (%g) is above max (%g).", *m.Min, *m.Max)
	}
	if m.MarginalMin != nil {
		if m.Min != nil && *m.MarginalMin < *m.Min {
			bad("marginal_min", "marginal_min (%g) is below min (%g): the marginal band lies inside the limits.", *m.MarginalMin, *m.Min)
		} else if m.Max != nil && *m.MarginalMin > *m.Max {
			bad("marginal_min", "marginal_min (%g) is above max (%g).", *m.MarginalMin, *m.Max)
		} else if m.Min == nil {
			bad("marginal_min", "marginal_min needs min: it marks values between min and marginal_min as marginal.")
		}
	}
	if m.MarginalMax != nil {
		if m.Max != nil && *m.MarginalMax > *m.Max {
			bad("marginal_max", "marginal_max (%g) is above max (%g): the marginal band lies inside the limits.", *m.MarginalMax, *m.Max)
		} else if m.Min != nil && *m.MarginalMax < *m.Min {
			bad("marginal_max", "marginal_max (%g) is below min (%g).", *m.MarginalMax, *m.Min)
		} else if m.Max == nil {
			bad("marginal_max", "marginal_max needs max: it marks values between marginal_max and max as marginal.")
		}
	}
	if m.MarginalMin != nil && m.MarginalMax != nil && *m.MarginalMin > *m.MarginalMax {
		bad("marginal_min", "marginal_min (%g) is above marginal_max (%g).", *m.MarginalMin, *m.MarginalMax)
	}
}

// StepCount is the number of steps in setup, tests and teardown.
func (s *Spec) StepCount() int {
	n := len(s.Setup) + len(s.Teardown)
	for _, t := range s.Tests {
		n += len(t.Steps)
	}
	return n
}

// AllSteps returns every step in run order: setup, each test, teardown.
func (s *Spec) AllSteps() []*Step {
	var out []*Step
	add := func(st []Step) {
		for i := range st {
			out = append(out, &st[i])
		}
	}
	add(s.Setup)
	for i := range s.Tests {
		add(s.Tests[i].Steps)
	}
	add(s.Teardown)
	return out
}
