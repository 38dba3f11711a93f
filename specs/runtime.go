package specs

import (
	"fmt"
	"regexp"
)

// This file holds what the runner calls at run time, so that it never
// touches hcl or cty itself.

// Matcher is a pattern ready to search console output: a literal byte
// string, or a compiled regular expression (exactly one is set).
type Matcher struct {
	Literal []byte
	Regexp  *regexp.Regexp
}

// IsZero reports whether m matches nothing (neither field is set).
func (m Matcher) IsZero() bool { return m.Literal == nil && m.Regexp == nil }

// String is the pattern for messages: the literal text quoted, or /regex/.
func (m Matcher) String() string {
	if m.Regexp != nil {
		return "/" + m.Regexp.String() + "/"
	}
	return fmt.Sprintf("%q", m.Literal)
}

// Compile evaluates the pattern in scope s and compiles it.
func (p Pattern) Compile(s *Scope) (Matcher, error) {
	switch {
	case p.Regex != nil:
		src, err := p.Regex.String(s)
		if err != nil {
			return Matcher{}, err
		}
		re, err := compileRegex(src)
		if err != nil {
			return Matcher{}, &EvalError{Range: p.Regex.Range, Summary: fmt.Sprintf("invalid regular expression %s: %v", quoteShort(src), err)}
		}
		return Matcher{Regexp: re}, nil
	case p.Text != nil:
		txt, err := p.Text.String(s)
		if err != nil {
			return Matcher{}, err
		}
		if txt == "" {
			return Matcher{}, &EvalError{Range: p.Text.Range, Summary: "expected text is empty"}
		}
		return Matcher{Literal: []byte(txt)}, nil
	}
	return Matcher{}, &EvalError{Summary: "pattern has neither text nor regex"}
}

// Compile evaluates the measurement's regex in scope s.
func (m MeasureStep) Compile(s *Scope) (*regexp.Regexp, error) {
	src, err := m.Regex.String(s)
	if err != nil {
		return nil, err
	}
	re, err := compileRegex(src)
	if err != nil {
		return nil, &EvalError{Range: m.Regex.Range, Summary: fmt.Sprintf("invalid regular expression %s: %v", quoteShort(src), err)}
	}
	if m.Group > re.NumSubexp() {
		return nil, &EvalError{Range: m.Regex.Range, Summary: fmt.Sprintf("regular expression %q has no group %d", src, m.Group)}
	}
	return re, nil
}

// Verdicts of a measurement.
const (
	VerdictPass     = "pass"
	VerdictMarginal = "marginal"
	VerdictFail     = "fail"
)

// Judge says whether value v is within the limits (pass), within them but
// in a marginal band (marginal), or outside them (fail).
func (m MeasureStep) Judge(v float64) string {
	if (m.Min != nil && v < *m.Min) || (m.Max != nil && v > *m.Max) {
		return VerdictFail
	}
	if (m.MarginalMin != nil && v < *m.MarginalMin) || (m.MarginalMax != nil && v > *m.MarginalMax) {
		return VerdictMarginal
	}
	return VerdictPass
}

// Bytes evaluates what a send step types: the line followed by lineEnding,
// or the raw bytes with their escapes decoded (see decodeEscapes).
func (st SendStep) Bytes(s *Scope, lineEnding string) ([]byte, error) {
	switch {
	case st.Line != nil:
		l, err := st.Line.String(s)
		if err != nil {
			return nil, err
		}
		return []byte(l + lineEnding), nil
	case st.Raw != nil:
		r, err := st.Raw.String(s)
		if err != nil {
			return nil, err
		}
		b, err := decodeEscapes(r)
		if err != nil {
			return nil, &EvalError{Range: st.Raw.Range, Summary: err.Error()}
		}
		return b, nil
	}
	return nil, &EvalError{Summary: "send step has neither line nor raw"}
}

// decodeEscapes turns the raw-send notation into bytes: \xNN (two hex
// digits) is that byte and \\ is one backslash; every other character is
// its UTF-8 encoding. In native HCL the backslash itself must be escaped,
// so a spec writes raw = "\\x03" for Ctrl-C (HCL's own "\u0003" works too).
func decodeEscapes(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i+1 >= len(s) {
			return nil, fmt.Errorf("raw bytes end in a lone backslash")
		}
		switch s[i+1] {
		case '\\':
			out = append(out, '\\')
			i++
		case 'x':
			if i+3 >= len(s) {
				return nil, fmt.Errorf(`\x at offset %d needs two hex digits`, i)
			}
			hi, ok1 := unhex(s[i+2])
			lo, ok2 := unhex(s[i+3])
			if !ok1 || !ok2 {
				return nil, fmt.Errorf(`\x at offset %d needs two hex digits`, i)
			}
			out = append(out, hi<<4|lo)
			i += 3
		default:
			return nil, fmt.Errorf(`unknown escape \%c at offset %d (only \xNN and \\ are escapes)`, s[i+1], i)
		}
	}
	return out, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// ArgvOf evaluates a command template (an argv list, no shell) in scope s.
func ArgvOf(exprs []Expr, s *Scope) ([]string, error) {
	if len(exprs) == 0 {
		return nil, &EvalError{Summary: "empty command"}
	}
	argv := make([]string, len(exprs))
	for i, e := range exprs {
		a, err := e.String(s)
		if err != nil {
			return nil, err
		}
		argv[i] = a
	}
	return argv, nil
}

// Argv evaluates the flash command in scope s (firmware.* and board.*).
func (f CommandFlash) Argv(s *Scope) ([]string, error) { return ArgvOf(f.Run, s) }

// Argv evaluates the tool's command in scope s; s.Args holds the step's
// arguments (see ToolStep.ArgValues).
func (t Tool) Argv(s *Scope) ([]string, error) { return ArgvOf(t.Run, s) }

// ArgValues evaluates the step's arguments in scope s, ready for Scope.Args.
func (t ToolStep) ArgValues(s *Scope) (map[string]string, error) {
	out := make(map[string]string, len(t.Args))
	for k, e := range t.Args {
		v, err := e.String(s)
		if err != nil {
			return nil, fmt.Errorf("tool %s: argument %s: %w", t.Name, k, err)
		}
		out[k] = v
	}
	return out, nil
}

// quoteShort quotes s for a message, cut to its first 100 bytes.
func quoteShort(s string) string {
	if len(s) > 100 {
		return fmt.Sprintf("%q...", s[:100])
	}
	return fmt.Sprintf("%q", s)
}
