package specs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Severities of a Diagnostic.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// Diagnostic is one error or warning in its stable JSON form (the API and
// the UI show these).
type Diagnostic struct {
	Severity string `json:"severity"` // SeverityError or SeverityWarning
	Summary  string `json:"summary"`
	Detail   string `json:"detail,omitempty"`
	Range    *Range `json:"range,omitempty"` // nil when the problem has no place in a file
}

// Diagnostics are the errors and warnings found in one or more files, with
// the sources needed to print them with snippets. The zero value is empty.
type Diagnostics struct {
	diags hcl.Diagnostics
	files map[string]*hcl.File
}

func newDiagnostics(d hcl.Diagnostics, files map[string]*hcl.File) Diagnostics {
	return Diagnostics{diags: capDiagnostics(d), files: files}
}

// Bounds on what a file's diagnostics print: a hostile file must not turn
// into megabytes of messages (one per element of a huge list, say).
const (
	// MaxDiagnostics is how many diagnostics of a file are kept; one more
	// says how many were left out.
	MaxDiagnostics = 50
	maxDetail      = 1024 // bytes of a diagnostic's detail
	maxSnippetLine = 512  // source lines longer than this are not shown
)

func capDiagnostics(d hcl.Diagnostics) hcl.Diagnostics {
	if len(d) <= MaxDiagnostics {
		for _, x := range d {
			if len(x.Detail) > maxDetail {
				return capDiagnosticsCopy(d)
			}
		}
		return d
	}
	return capDiagnosticsCopy(d)
}

func capDiagnosticsCopy(d hcl.Diagnostics) hcl.Diagnostics {
	out := make(hcl.Diagnostics, 0, min(len(d), MaxDiagnostics+1))
	for i, x := range d {
		if i == MaxDiagnostics {
			sev := hcl.DiagWarning
			if d[i:].HasErrors() {
				sev = hcl.DiagError
			}
			out = append(out, &hcl.Diagnostic{Severity: sev, Summary: "Too many diagnostics",
				Detail: fmt.Sprintf("%d more diagnostics are not shown (at most %d are).", len(d)-MaxDiagnostics, MaxDiagnostics)})
			break
		}
		if len(x.Detail) > maxDetail {
			c := *x
			c.Detail = strings.ToValidUTF8(c.Detail[:maxDetail], "") + "…"
			x = &c
		}
		out = append(out, x)
	}
	return out
}

// snippetOnly returns x and a file map for its snippet: the file holds
// the subject's lines (at most a few) at their line numbers, the lines
// before them empty.
func snippetOnly(x *hcl.Diagnostic, files map[string]*hcl.File) (*hcl.Diagnostic, map[string]*hcl.File) {
	r := x.Subject
	f := files[r.Filename]
	if f == nil || r.Start.Byte < 0 || r.Start.Byte > len(f.Bytes) || r.Start.Line < 1 {
		return x, nil
	}
	src := f.Bytes
	start := bytes.LastIndexByte(src[:r.Start.Byte], '\n') + 1
	end := start
	for n := 0; n < 4 && end < len(src); n++ { // up to 4 lines
		k := bytes.IndexByte(src[end:], '\n')
		if k < 0 {
			end = len(src)
			break
		}
		end += k + 1
		if end > r.End.Byte {
			break
		}
	}
	pad := r.Start.Line - 1
	mini := make([]byte, 0, pad+end-start)
	mini = append(mini, bytes.Repeat([]byte{'\n'}, pad)...)
	mini = append(mini, src[start:end]...)
	shift := func(p hcl.Pos) hcl.Pos {
		p.Byte = min(max(p.Byte-start, 0), end-start) + pad
		return p
	}
	c := *x
	sub := hcl.Range{Filename: r.Filename, Start: shift(r.Start), End: shift(r.End)}
	if r.End.Byte > end {
		sub.End = shift(hcl.Pos{Byte: end})
		sub.End.Line = r.Start.Line
		sub.End.Column = r.Start.Column + 1
	}
	c.Subject = &sub
	c.Context = nil
	nav := fixedNav("")
	if cs, ok := f.Nav.(interface{ ContextString(int) string }); ok {
		nav = fixedNav(cs.ContextString(r.Start.Byte))
	}
	return &c, map[string]*hcl.File{r.Filename: {Bytes: mini, Nav: nav}}
}

// fixedNav gives hcl's writer the context ("in spec ...") found in the whole file.
type fixedNav string

func (n fixedNav) ContextString(int) string { return string(n) }

// longLine reports whether the line holding r's start is too long to show.
func longLine(files map[string]*hcl.File, r *hcl.Range) bool {
	f := files[r.Filename]
	if f == nil || r.Start.Byte < 0 || r.Start.Byte > len(f.Bytes) {
		return false
	}
	src := f.Bytes
	start := bytes.LastIndexByte(src[:r.Start.Byte], '\n') + 1
	end := bytes.IndexByte(src[r.Start.Byte:], '\n')
	if end < 0 {
		end = len(src) - r.Start.Byte
	}
	return r.Start.Byte+end-start > maxSnippetLine
}

// HasErrors reports whether any diagnostic is an error.
func (d Diagnostics) HasErrors() bool { return d.diags.HasErrors() }

// Len is the number of diagnostics, errors and warnings.
func (d Diagnostics) Len() int { return len(d.diags) }

// List returns the diagnostics in their stable JSON form, in the order found.
func (d Diagnostics) List() []Diagnostic {
	out := make([]Diagnostic, 0, len(d.diags))
	for _, x := range d.diags {
		dd := Diagnostic{Severity: SeverityError, Summary: x.Summary, Detail: x.Detail}
		if x.Severity == hcl.DiagWarning {
			dd.Severity = SeverityWarning
		}
		if x.Subject != nil {
			r := rangeOf(*x.Subject)
			dd.Range = &r
		}
		out = append(out, dd)
	}
	return out
}

// MarshalJSON encodes the diagnostics as a JSON array of Diagnostic.
func (d Diagnostics) MarshalJSON() ([]byte, error) { return json.Marshal(d.List()) }

// Append returns d with e's diagnostics added after its own.
func (d Diagnostics) Append(e Diagnostics) Diagnostics {
	files := map[string]*hcl.File{}
	for k, v := range d.files {
		files[k] = v
	}
	for k, v := range e.files {
		files[k] = v
	}
	return Diagnostics{diags: append(append(hcl.Diagnostics{}, d.diags...), e.diags...), files: files}
}

// WriteText prints the diagnostics as an engineer reads them: severity,
// summary, file:line:col with a source snippet, and the detail, wrapped
// at width (0: no wrapping). color adds terminal colours.
func (d Diagnostics) WriteText(w io.Writer, width uint, color bool) error {
	var buf bytes.Buffer
	plain := hcl.NewDiagnosticTextWriter(&buf, nil, width, color) // no snippet
	for _, x := range d.diags {
		buf.Reset()
		dw := plain
		if x.Subject != nil && longLine(d.files, x.Subject) {
			c := *x
			c.Expression, c.EvalContext = nil, nil
			x = &c
		} else if x.Subject != nil {
			// hcl's writer scans the file from its start, allocating as it
			// goes, for every diagnostic: give it the subject's lines only
			// (the lines before are left empty, to keep the numbers).
			var c *hcl.Diagnostic
			var files map[string]*hcl.File
			c, files = snippetOnly(x, d.files)
			if files != nil {
				x = c
				dw = hcl.NewDiagnosticTextWriter(&buf, files, width, color)
			}
		}
		if err := dw.WriteDiagnostic(x); err != nil {
			return err
		}
		out := buf.Bytes()
		if s := x.Subject; s != nil {
			// hcl says "on FILE line N"; engineers and editors want FILE:N:C.
			old := fmt.Sprintf("  on %s line %d", s.Filename, s.Start.Line)
			pos := fmt.Sprintf("  on %s:%d:%d", s.Filename, s.Start.Line, s.Start.Column)
			out = bytes.Replace(out, []byte(old), []byte(pos), 1)
		}
		if _, err := w.Write(out); err != nil {
			return err
		}
	}
	return nil
}

// Err returns nil when there is no error, else an *Error holding every diagnostic.
func (d Diagnostics) Err() error {
	if !d.HasErrors() {
		return nil
	}
	return &Error{Diagnostics: d}
}

// Error is the error form of Diagnostics that contain at least one error.
// Its message has one compact line per diagnostic: file:line:col: summary: detail.
type Error struct {
	Diagnostics Diagnostics
}

func (e *Error) Error() string {
	var b strings.Builder
	for i, x := range e.Diagnostics.List() {
		if i > 0 {
			b.WriteString("\n")
		}
		if x.Range != nil {
			fmt.Fprintf(&b, "%s:%d:%d: ", x.Range.Filename, x.Range.Start.Line, x.Range.Start.Column)
		}
		if x.Severity == SeverityWarning {
			b.WriteString("warning: ")
		}
		b.WriteString(x.Summary)
		if x.Detail != "" {
			b.WriteString(": ")
			b.WriteString(x.Detail)
		}
	}
	return b.String()
}

// diagErr builds an error diagnostic at r.
func diagErr(r hcl.Range, summary, detail string, a ...any) *hcl.Diagnostic {
	if len(a) > 0 {
		detail = fmt.Sprintf(detail, a...)
	}
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: r.Ptr()}
}
