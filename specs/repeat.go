package specs

import (
	"fmt"
	"math/big"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// This file decodes a test's `repeat` block and the `power "cut"` step
// (docs/language.md, "repeat" and "Power-fail injection").

// Bounds of a campaign.
const (
	MaxRepeatCount     = 100_000
	MaxRepeatDuration  = 7 * 24 * time.Hour
	MaxSpread          = 16
	MaxCutDelay        = time.Hour // delay, random and sweep bounds, and a cut's off_for
	DefaultCutWithin   = DefaultWithin
	maxSeed            = 1<<53 - 1 // exact in a JSON or HCL number
	repeatIterationVar = "iteration"
	repeatCountVar     = "count"
)

var repeatAttrs = []string{repeatIterationVar, repeatCountVar}

var repeatSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "count"}, {Name: "duration"}, {Name: "stop_after_failures"},
		{Name: "min_pass_rate"}, {Name: "seed"}, {Name: "spread"},
	},
}

// powerAttrs are the attributes of a power step.
var powerAttrs = []hcl.AttributeSchema{{Name: "off_for"}, {Name: "after"}, {Name: "after_regex"}, {Name: "within"},
	{Name: "delay"}, {Name: "random"}, {Name: "sweep"}, {Name: "steps"}}

// cutAttrs are the attributes of a power step that only power "cut" takes.
var cutAttrs = []string{"after", "after_regex", "within", "delay", "random", "sweep", "steps"}

// repeatBlocks splits a test's blocks into its repeat blocks and its steps.
func repeatBlocks(blocks []*hcl.Block) (repeats, steps []*hcl.Block) {
	for _, b := range blocks {
		if b.Type == "repeat" {
			repeats = append(repeats, b)
		} else {
			steps = append(steps, b)
		}
	}
	return repeats, steps
}

// repeat decodes a test's repeat blocks (at most one).
func (d *decoder) repeat(blocks []*hcl.Block, retries *hcl.Attribute) *Repeat {
	if len(blocks) == 0 {
		return nil
	}
	for _, b := range blocks[1:] {
		d.errorf(b.DefRange, "Duplicate repeat block", "A test has at most one repeat block; the first is at %s.", shortPos(blocks[0].DefRange))
	}
	b := blocks[0]
	c := d.content(b.Body, repeatSchema)
	at := c.Attributes
	r := &Repeat{Range: rangeOf(b.DefRange), MinPassRate: 1}
	r.Count = d.integer(at["count"], 0, 1, MaxRepeatCount)
	r.Duration = d.boundedDuration(at["duration"], 0, false, MaxRepeatDuration)
	if at["count"] == nil && at["duration"] == nil {
		d.errorf(b.DefRange, "Invalid repeat block", `A repeat block needs a count (count = 100), a duration (duration = "2h"), or both (whichever ends first).`)
	}
	r.StopAfterFailures = d.integer(at["stop_after_failures"], 0, 1, MaxRepeatCount)
	if p := d.number(at["min_pass_rate"]); p != nil {
		if *p < 0 || *p > 1 {
			d.errorf(at["min_pass_rate"].Expr.Range(), "Value out of range", "min_pass_rate is the share of iterations that must pass: from 0 to 1; got %g.", *p)
		} else {
			r.MinPassRate = *p
		}
	}
	if a := at["seed"]; a != nil {
		if v, ok := d.value(a, cty.Number); ok {
			n, acc := v.AsBigFloat().Int64()
			if !v.AsBigFloat().IsInt() || acc != big.Exact || n < 1 || n > maxSeed {
				d.errorf(a.Expr.Range(), "Value out of range", "seed must be a whole number from 1 to %d; got %s (leave it out to have one chosen at run time and recorded in the result).", int64(maxSeed), v.AsBigFloat().Text('g', -1))
			} else {
				r.Seed = n
			}
		}
	}
	r.Spread = d.integer(at["spread"], 0, 1, MaxSpread)
	if retries != nil {
		d.errorf(retries.NameRange, "Retries with repeat", "A repeated test cannot also retry: its iterations are counted in its pass rate (use min_pass_rate or stop_after_failures instead).")
	}
	return r
}

// boundedDuration parses a duration that must be positive (or, with
// zeroOK, not negative) and at most hi.
func (d *decoder) boundedDuration(a *hcl.Attribute, def time.Duration, zeroOK bool, hi time.Duration) time.Duration {
	if a == nil {
		return def
	}
	v, ok := d.value(a, cty.String)
	if !ok {
		return def
	}
	t, msg := parseBoundedDuration(v.AsString(), zeroOK, hi)
	if msg != "" {
		d.errorf(a.Expr.Range(), "Invalid duration", "The attribute %q %s", a.Name, msg)
		return def
	}
	return t
}

// parseBoundedDuration parses s; msg explains why it is refused.
func parseBoundedDuration(s string, zeroOK bool, hi time.Duration) (time.Duration, string) {
	t, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, fmt.Sprintf("must be a duration such as \"500ms\", \"10s\" or \"2m\"; %q is not one.", s)
	case t < 0 || t == 0 && !zeroOK:
		if zeroOK {
			return 0, fmt.Sprintf("is %q; it must not be negative.", s)
		}
		return 0, fmt.Sprintf("is %q; it must be longer than zero.", s)
	case t > hi:
		return 0, fmt.Sprintf("is %q; it must be at most %s.", s, hi)
	}
	return t, ""
}

// durationPair reads a [lo, hi] list of durations (random, sweep).
func (d *decoder) durationPair(a *hcl.Attribute) []time.Duration {
	v, ok := d.value(a, cty.List(cty.String))
	if !ok {
		return nil
	}
	if v.LengthInt() != 2 {
		d.errorf(a.Expr.Range(), "Invalid "+a.Name, `%s is a range of two durations, [lo, hi], e.g. ["0ms", "800ms"]; it has %d element(s).`, a.Name, v.LengthInt())
		return nil
	}
	out := make([]time.Duration, 0, 2)
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		t, msg := parseBoundedDuration(e.AsString(), true, MaxCutDelay)
		if msg != "" {
			d.errorf(a.Expr.Range(), "Invalid "+a.Name, "Each bound of %s %s", a.Name, msg)
			return nil
		}
		out = append(out, t)
	}
	if out[0] > out[1] {
		d.errorf(a.Expr.Range(), "Invalid "+a.Name, "The range of %s is [lo, hi] with lo <= hi; %s is above %s.", a.Name, out[0], out[1])
		return nil
	}
	return out
}

// cut decodes a power "cut" step's plan; scope is the step's expression
// scope and rep the test's repeat block (nil: the test is not repeated).
func (d *decoder) cut(b *hcl.Block, at hcl.Attributes, scope *exprScope, rep *Repeat) *CutPlan {
	c := &CutPlan{}
	if at["after"] != nil && at["after_regex"] != nil {
		d.errorf(at["after_regex"].NameRange, "Invalid power step", `A cut waits for after (text) or after_regex, not both.`)
	}
	if a := at["after"]; a != nil {
		if _, ok := d.check(a.Expr, scope, cty.String, "cut's after text"); ok {
			x := NewExpr(a.Expr, d.src)
			c.After = &Pattern{Text: &x}
			if v, diags := a.Expr.Value(nil); !diags.HasErrors() && v.Type() == cty.String && v.IsKnown() && !v.IsNull() && v.AsString() == "" {
				d.errorf(a.Expr.Range(), "Empty after text", "A cut after empty text would cut at once; name something the board prints, or leave after out.")
			}
		}
	} else if a := at["after_regex"]; a != nil {
		if _, ok := d.checkRegex(a.Expr, scope, "cut's after_regex"); ok {
			x := NewExpr(a.Expr, d.src)
			c.After = &Pattern{Regex: &x}
		}
	}
	if a := at["within"]; a != nil {
		if at["after"] == nil && at["after_regex"] == nil {
			d.errorf(a.NameRange, "Invalid power step", "within bounds the wait for after or after_regex; this cut has neither.")
		}
		c.AfterWithin = d.duration(a, DefaultCutWithin)
	} else if at["after"] != nil || at["after_regex"] != nil {
		c.AfterWithin = DefaultCutWithin
	}

	var got []string
	for _, n := range []string{"delay", "random", "sweep"} {
		if at[n] != nil {
			got = append(got, n)
		}
	}
	if len(got) != 1 {
		d.errorf(b.DefRange, "Invalid power step", `A power "cut" step needs exactly one of delay = "150ms", random = [lo, hi] or sweep = [lo, hi]; it has %d.`, len(got))
	}
	if a := at["delay"]; a != nil {
		if v, ok := d.check(a.Expr, scope, cty.String, "cut delay"); ok {
			if v.IsKnown() {
				if _, msg := parseBoundedDuration(v.AsString(), true, MaxCutDelay); msg != "" {
					d.errorf(a.Expr.Range(), "Invalid duration", "The cut delay %s", msg)
				}
			}
			x := NewExpr(a.Expr, d.src)
			c.Delay = &x
		}
	}
	if a := at["random"]; a != nil {
		c.Random = d.durationPair(a)
		if rep == nil {
			d.errorf(a.NameRange, "Random cut outside a campaign", `A random cut delay needs the seed of a repeated test: add a repeat block to the test, or use delay = "150ms".`)
		}
	}
	if a := at["sweep"]; a != nil {
		c.Sweep = d.durationPair(a)
		if rep == nil {
			d.errorf(a.NameRange, "Sweep without repeat", `A swept cut spreads its delays over the iterations of a repeated test: add a repeat block to the test, or use delay = "150ms".`)
		}
	}
	if a := at["steps"]; a != nil {
		if at["sweep"] == nil {
			d.errorf(a.NameRange, "Invalid power step", "steps applies to sweep only.")
		}
		c.Steps = d.integer(a, 0, 1, MaxRepeatCount)
	} else if at["sweep"] != nil && rep != nil && rep.Count == 0 && rep.Duration > 0 {
		d.errorf(at["sweep"].NameRange, "Sweep without steps", "The sweep's steps default to the repeat count, but this repeat runs for a duration only: give steps = N.")
	}
	return c
}

// DelayOf evaluates a cut's fixed delay (Delay) in scope: a duration
// from 0 to MaxCutDelay.
func (c CutPlan) DelayOf(s *Scope) (time.Duration, error) {
	if c.Delay == nil {
		return 0, fmt.Errorf("the cut has no fixed delay")
	}
	v, err := c.Delay.String(s)
	if err != nil {
		return 0, err
	}
	t, msg := parseBoundedDuration(v, true, MaxCutDelay)
	if msg != "" {
		return 0, &EvalError{Range: c.Delay.Range, Summary: "the cut delay " + msg}
	}
	return t, nil
}

// SweepDelay is the delay of a swept cut in iteration i (from 1) when
// the sweep has steps evenly spaced delays from Sweep[0] to Sweep[1]
// (steps <= 1: Sweep[0]); iteration i takes delay number (i-1) mod steps.
func (c CutPlan) SweepDelay(i, steps int) time.Duration {
	if len(c.Sweep) != 2 {
		return 0
	}
	lo, hi := c.Sweep[0], c.Sweep[1]
	if steps <= 1 {
		return lo
	}
	k := (i - 1) % steps
	if k < 0 {
		k += steps
	}
	// lo + (hi-lo)*k/(steps-1), without overflow: hi-lo <= MaxCutDelay.
	return lo + time.Duration(int64(hi-lo)/int64(steps-1)*int64(k)+int64(hi-lo)%int64(steps-1)*int64(k)/int64(steps-1))
}
