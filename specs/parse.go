package specs

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// MaxFileSize is the largest farm or spec file hilfarm reads (1 MiB). A
// larger input is refused with a diagnostic before it is parsed, so a huge
// upload cannot exhaust the controller's memory.
const MaxFileSize = 1 << 20

// isJSON reports whether filename is in HCL's JSON syntax (.json, e.g. spec.hcl.json).
func isJSON(filename string) bool { return strings.HasSuffix(filename, ".json") }

// readSource reads a file, refusing one larger than MaxFileSize.
func readSource(path string) ([]byte, hcl.Diagnostics) {
	f, err := os.Open(path)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read file", Detail: err.Error()}}
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read file", Detail: fmt.Sprintf("%s: %v", path, err)}}
	}
	return src, nil
}

// parse checks the size and parses src in the syntax its name implies.
func parse(src []byte, filename string) (*hcl.File, map[string]*hcl.File, hcl.Diagnostics) {
	if len(src) > MaxFileSize {
		return nil, nil, hcl.Diagnostics{tooBig(filename, len(src))}
	}
	// The parsers are recursive and keep every token: the depth and size
	// are checked first, by linear scans (bounds.go).
	p := hclparse.NewParser()
	var f *hcl.File
	var diags hcl.Diagnostics
	if isJSON(filename) {
		if pd := prescanJSON(src, filename); pd.HasErrors() {
			return nil, nil, pd
		}
		f, diags = p.ParseJSON(src, filename)
	} else {
		if pd := prescanNative(src, filename); pd.HasErrors() {
			return nil, nil, pd
		}
		f, diags = p.ParseHCL(src, filename)
		if f != nil {
			boundTemplates(f)
		}
	}
	return f, p.Files(), diags
}

func tooBig(filename string, n int) *hcl.Diagnostic {
	what := fmt.Sprintf("%d bytes", n)
	if n > MaxFileSize {
		what = "more than 1 MiB"
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "File too large",
		Detail:   fmt.Sprintf("%s is %s; hilfarm reads farm and spec files of at most %d bytes (1 MiB).", filename, what, MaxFileSize),
		Subject:  &hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos},
	}
}

// decoder collects diagnostics while decoding one file.
type decoder struct {
	diags hcl.Diagnostics
	src   []byte
	ctx   *hcl.EvalContext // static context: functions, and var.* in specs
	nerrs int              // errors added with add
}

func (d *decoder) add(diags ...*hcl.Diagnostic) {
	for _, x := range diags {
		if x.Severity == hcl.DiagError {
			d.nerrs++
		}
	}
	d.diags = append(d.diags, diags...)
}

// errCount is the number of errors added so far (after the initial diagnostics).
func (d *decoder) errCount() int { return d.nerrs }

func (d *decoder) errorf(r hcl.Range, summary, detail string, a ...any) {
	d.add(diagErr(r, summary, detail, a...))
}

// content decodes body against schema; unknown blocks and attributes are errors.
// Blocks come back in source order whatever the syntax.
func (d *decoder) content(body hcl.Body, schema *hcl.BodySchema) *hcl.BodyContent {
	c, diags := body.Content(schema)
	d.add(diags...)
	if c == nil {
		c = &hcl.BodyContent{Attributes: hcl.Attributes{}}
	}
	sort.SliceStable(c.Blocks, func(i, j int) bool {
		return c.Blocks[i].DefRange.Start.Byte < c.Blocks[j].DefRange.Start.Byte
	})
	return c
}

// value evaluates a static attribute and converts it to want. ok is false
// when the attribute is absent, the value is unknown (a variable without a
// value), or an error was reported.
func (d *decoder) value(a *hcl.Attribute, want cty.Type) (cty.Value, bool) {
	if a == nil {
		return cty.NilVal, false
	}
	v, diags := a.Expr.Value(d.ctx)
	d.add(diags...)
	if diags.HasErrors() {
		return cty.NilVal, false
	}
	if v.IsNull() {
		d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value",
			Detail: fmt.Sprintf("The attribute %q must not be null.", a.Name), Subject: a.Expr.Range().Ptr(),
			Expression: a.Expr, EvalContext: d.ctx})
		return cty.NilVal, false
	}
	cv, err := convert.Convert(v, want)
	if err != nil {
		d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Incorrect attribute value type",
			Detail:  fmt.Sprintf("Inappropriate value for attribute %q: %s.", a.Name, convertMsg(err)),
			Subject: a.Expr.Range().Ptr(), Expression: a.Expr, EvalContext: d.ctx})
		return cty.NilVal, false
	}
	if !cv.IsWhollyKnown() {
		return cty.NilVal, false
	}
	return cv, true
}

func convertMsg(err error) string {
	var pe cty.PathError
	if errors.As(err, &pe) && len(pe.Path) > 0 {
		return "element " + pathString(pe.Path) + ": " + pe.Error()
	}
	return err.Error()
}

func pathString(p cty.Path) string {
	var b strings.Builder
	for _, s := range p {
		switch s := s.(type) {
		case cty.IndexStep:
			if s.Key.Type() == cty.String {
				fmt.Fprintf(&b, "[%q]", s.Key.AsString())
			} else if s.Key.Type() == cty.Number {
				fmt.Fprintf(&b, "[%s]", s.Key.AsBigFloat().Text('f', -1))
			}
		case cty.GetAttrStep:
			fmt.Fprintf(&b, ".%s", s.Name)
		}
	}
	return strings.TrimPrefix(b.String(), ".")
}

func (d *decoder) str(a *hcl.Attribute, def string) string {
	v, ok := d.value(a, cty.String)
	if !ok {
		return def
	}
	return v.AsString()
}

func (d *decoder) boolean(a *hcl.Attribute, def bool) bool {
	v, ok := d.value(a, cty.Bool)
	if !ok {
		return def
	}
	return v.True()
}

// number returns a static number; nil when absent or invalid.
func (d *decoder) number(a *hcl.Attribute) *float64 {
	v, ok := d.value(a, cty.Number)
	if !ok {
		return nil
	}
	f, _ := v.AsBigFloat().Float64()
	if math.IsInf(f, 0) {
		d.errorf(a.Expr.Range(), "Invalid number", "The attribute %q is out of range.", a.Name)
		return nil
	}
	return &f
}

// integer returns a static whole number in [lo, hi].
func (d *decoder) integer(a *hcl.Attribute, def, lo, hi int) int {
	v, ok := d.value(a, cty.Number)
	if !ok {
		return def
	}
	bf := v.AsBigFloat()
	n, acc := bf.Int64()
	if !bf.IsInt() || acc != big.Exact || n < int64(lo) || n > int64(hi) {
		d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Value out of range",
			Detail:  fmt.Sprintf("The attribute %q must be a whole number from %d to %d; got %s.", a.Name, lo, hi, bf.Text('g', -1)),
			Subject: a.Expr.Range().Ptr(), Expression: a.Expr, EvalContext: d.ctx})
		return def
	}
	return int(n)
}

// duration parses a duration string ("500ms", "10s", "2m"); it must be positive.
func (d *decoder) duration(a *hcl.Attribute, def time.Duration) time.Duration {
	v, ok := d.value(a, cty.String)
	if !ok {
		return def
	}
	s := v.AsString()
	t, err := time.ParseDuration(s)
	if err != nil {
		d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid duration",
			Detail:  fmt.Sprintf("The attribute %q must be a duration such as \"500ms\", \"10s\" or \"2m\"; %q is not one.", a.Name, s),
			Subject: a.Expr.Range().Ptr(), Expression: a.Expr, EvalContext: d.ctx})
		return def
	}
	if t <= 0 {
		d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duration must be positive",
			Detail:  fmt.Sprintf("The attribute %q is %q; it must be longer than zero.", a.Name, s),
			Subject: a.Expr.Range().Ptr(), Expression: a.Expr, EvalContext: d.ctx})
		return def
	}
	return t
}

// size parses a byte size: a whole number of bytes, or a string with a unit
// (B, KiB, MiB, GiB, KB, MB, GB), e.g. "64MiB".
func (d *decoder) size(a *hcl.Attribute, def int64) int64 {
	v, ok := d.value(a, cty.String)
	if !ok {
		return def
	}
	n, err := parseSize(v.AsString())
	if err != nil {
		d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid size",
			Detail:  fmt.Sprintf("The attribute %q must be a size such as \"64MiB\" or \"10GiB\": %v.", a.Name, err),
			Subject: a.Expr.Range().Ptr(), Expression: a.Expr, EvalContext: d.ctx})
		return def
	}
	return n
}

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			mult = u.mult
			s = strings.TrimSpace(strings.TrimSuffix(s, u.suffix))
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive whole number", s)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("too large")
	}
	return n * mult, nil
}

// strList returns a static list of strings.
func (d *decoder) strList(a *hcl.Attribute) []string {
	v, ok := d.value(a, cty.List(cty.String))
	if !ok {
		return nil
	}
	out := []string{}
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		out = append(out, e.AsString())
	}
	return out
}

// strMap returns a static map of strings.
func (d *decoder) strMap(a *hcl.Attribute) map[string]string {
	v, ok := d.value(a, cty.Map(cty.String))
	if !ok {
		return nil
	}
	out := map[string]string{}
	for it := v.ElementIterator(); it.Next(); {
		k, e := it.Element()
		out[k.AsString()] = e.AsString()
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// oneOf checks a static string against a set of allowed values.
func (d *decoder) oneOf(a *hcl.Attribute, def string, allowed ...string) string {
	s := d.str(a, def)
	if a == nil || s == def {
		return s
	}
	for _, x := range allowed {
		if s == x {
			return s
		}
	}
	d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value",
		Detail:  fmt.Sprintf("The attribute %q must be one of %s; got %q.", a.Name, quoteList(allowed), s),
		Subject: a.Expr.Range().Ptr()})
	return def
}

// label checks that a block label is a valid identifier.
func (d *decoder) ident(b *hcl.Block, what string) string {
	name := b.Labels[0]
	if !hclsyntax.ValidIdentifier(name) {
		d.errorf(b.LabelRanges[0], "Invalid name",
			"The %s name %q must start with a letter or underscore and hold only letters, digits, underscores and dashes.", what, name)
	}
	return name
}

// nameCheck records first definitions and reports duplicates.
type nameCheck struct {
	what string
	seen map[string]hcl.Range
}

func newNameCheck(what string) *nameCheck {
	return &nameCheck{what: what, seen: map[string]hcl.Range{}}
}

func (n *nameCheck) check(d *decoder, name string, r hcl.Range) {
	if first, dup := n.seen[name]; dup {
		d.errorf(r, "Duplicate "+n.what, "The %s %q was already defined at %s.", n.what, name, shortPos(first))
		return
	}
	n.seen[name] = r
}

func shortPos(r hcl.Range) string {
	return fmt.Sprintf("%s:%d,%d", r.Filename, r.Start.Line, r.Start.Column)
}

func quoteList(s []string) string { return joinQuoted(s, "or") }

// quoteAll lists quoted names joined with "and".
func quoteAll(s []string) string { return joinQuoted(s, "and") }

func joinQuoted(s []string, conj string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = strconv.Quote(x)
	}
	switch len(q) {
	case 0:
		return "(none)"
	case 1:
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " " + conj + " " + q[len(q)-1]
}

// hclRange converts a specs.Range back to an hcl.Range.
func hclRange(r Range) hcl.Range {
	return hcl.Range{Filename: r.Filename,
		Start: hcl.Pos{Line: r.Start.Line, Column: r.Start.Column, Byte: r.Start.Byte},
		End:   hcl.Pos{Line: r.End.Line, Column: r.End.Column, Byte: r.End.Byte}}
}
