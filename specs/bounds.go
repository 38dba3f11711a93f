package specs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty/function"
)

// Limits checked on the source before HCL's parsers run. Both parsers
// (native and JSON) are recursive and build every token and node in
// memory, so a deeply nested or very fragmented input could overflow the
// stack or use hundreds of megabytes; these checks are linear, use a
// bounded amount of memory and say where the limit was crossed.
const (
	// MaxNestingDepth bounds how deeply brackets, parentheses, braces,
	// strings, heredocs and template interpolations (`${ }`, `%{ }`) may
	// nest, in both syntaxes (JSON arrays and objects count too).
	MaxNestingDepth = 64
	// MaxTokens bounds the number of tokens of a file (native syntax) or of
	// JSON values plus the pieces of their templates (JSON syntax).
	MaxTokens = 32_000
	// MaxOperators bounds the operators (+ - * / % ! && || == < ? ...) of
	// one expression, counted with those of the expressions it is nested
	// in: a chain such as 1+1+1+... parses into a tree as deep as it is
	// long, which the parser and evaluation walk recursively.
	MaxOperators = 256
	// MaxInterpolations bounds the `${ }` and `%{ }` sequences of a file in
	// JSON syntax. There, templates are parsed only when they are
	// evaluated, so their results cannot be bounded as they are built (as
	// they are in the native syntax); this bounds them instead.
	MaxInterpolations = 128
)

// limitDiag is a diagnostic for a limit crossed at pos of filename.
func limitDiag(filename string, pos hcl.Pos, summary, detail string, a ...any) *hcl.Diagnostic {
	end := pos
	end.Byte++
	end.Column++
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(detail, a...),
		Subject: &hcl.Range{Filename: filename, Start: pos, End: end}}
}

func depthDiag(filename string, pos hcl.Pos) *hcl.Diagnostic {
	return limitDiag(filename, pos, "Nesting too deep",
		"Brackets, parentheses, braces, strings and template interpolations nest more than %d levels deep here; hilfarm refuses deeper nesting (limit: nesting depth %d).",
		MaxNestingDepth, MaxNestingDepth)
}

func tokensDiag(filename string, pos hcl.Pos) *hcl.Diagnostic {
	return limitDiag(filename, pos, "Too many tokens",
		"The file holds more than %d tokens (names, numbers, operators, string pieces); hilfarm refuses larger files (limit: %d tokens).",
		MaxTokens, MaxTokens)
}

// scanner is a byte-level lexer of the native syntax just precise enough to
// tell nesting: it knows comments, quoted strings with their escapes,
// heredocs and template interpolations. It keeps a stack of what is open,
// which never grows past MaxNestingDepth+1.
type scanner struct {
	src      []byte
	filename string
	base     hcl.Pos // position of src[0] in the file
	line     int     // current line, relative to base
	lineAt   int     // byte offset where the current line starts
	tokens   int
	interps  int
	ops      int // operators of the top-level expression being read
	stack    []frame
}

// opCount is the counter of operators for the innermost expression.
func (s *scanner) opCount() *int {
	if len(s.stack) == 0 {
		return &s.ops
	}
	return &s.stack[len(s.stack)-1].ops
}

// operator counts an operator of the expression being read. The operators
// of the enclosing, still open expressions count too: together they bound
// how deep the parsed tree of operations is, whatever the brackets.
func (s *scanner) operator(i int) *hcl.Diagnostic {
	*s.opCount()++
	total := s.ops
	for _, f := range s.stack {
		total += f.ops
	}
	if total > MaxOperators {
		return limitDiag(s.filename, s.pos(i), "Expression too long",
			"This expression chains more than %d operators (counting those of the expressions it is inside); hilfarm refuses longer chains (limit: %d operators).",
			MaxOperators, MaxOperators)
	}
	return nil
}

type frameKind uint8

const (
	frameBracket  frameKind = iota // ( [ {
	frameInterp                    // ${ or %{ ... }
	frameString                    // "..."
	frameHeredoc                   // <<EOF ... EOF
	frameTemplate                  // a whole template (a JSON string's content); never closed
)

type frame struct {
	kind frameKind
	term []byte // heredoc terminator
	ops  int    // operators of the expression being read in this frame
	open byte   // the bracket that opened a frameBracket
}

func (s *scanner) pos(i int) hcl.Pos {
	col := 1
	if i > s.lineAt {
		col = utf8.RuneCount(s.src[s.lineAt:i]) + 1
	}
	if s.line == 0 {
		col += s.base.Column - 1
	}
	return hcl.Pos{Line: s.base.Line + s.line, Column: col, Byte: s.base.Byte + i}
}

func (s *scanner) push(i int, f frame) *hcl.Diagnostic {
	if len(s.stack) >= MaxNestingDepth {
		return depthDiag(s.filename, s.pos(i))
	}
	s.stack = append(s.stack, f)
	return nil
}

func (s *scanner) token(i int) *hcl.Diagnostic {
	s.tokens++
	if s.tokens > MaxTokens {
		return tokensDiag(s.filename, s.pos(i))
	}
	return nil
}

func (s *scanner) newline(i int) {
	s.line++
	s.lineAt = i + 1
}

func isIdentStart(c byte) bool {
	return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || c >= utf8.RuneSelf
}

func isIdentByte(c byte) bool { return isIdentStart(c) || c == '-' || ('0' <= c && c <= '9') }

// run scans s.src; the first limit crossed is returned.
func (s *scanner) run() *hcl.Diagnostic {
	src := s.src
	n := len(src)
	for i := 0; i < n; {
		c := src[i]
		top := frameKind(255)
		if len(s.stack) > 0 {
			top = s.stack[len(s.stack)-1].kind
		}
		switch top {
		case frameString, frameHeredoc, frameTemplate:
			if top == frameHeredoc && (i == 0 || src[i-1] == '\n') {
				j := i
				for j < n && (src[j] == ' ' || src[j] == '\t') {
					j++
				}
				term := s.stack[len(s.stack)-1].term
				if bytes.HasPrefix(src[j:], term) && (j+len(term) == n || src[j+len(term)] == '\n' || src[j+len(term)] == '\r') {
					s.stack = s.stack[:len(s.stack)-1]
					i = j + len(term)
					continue
				}
			}
			switch {
			case c == '\n':
				s.newline(i)
				if d := s.token(i); d != nil {
					return d
				}
				i++
				if top == frameString { // an unterminated string ends at the line's end
					s.stack = s.stack[:len(s.stack)-1]
				}
			case c == '\\' && top == frameString:
				i += 2
			case c == '"' && top == frameString:
				s.stack = s.stack[:len(s.stack)-1]
				i++
			case (c == '$' || c == '%') && i+2 < n && src[i+1] == c && src[i+2] == '{':
				i += 3 // $${ and %%{ are literal
			case (c == '$' || c == '%') && i+1 < n && src[i+1] == '{':
				if d := s.token(i); d != nil {
					return d
				}
				if d := s.push(i, frame{kind: frameInterp}); d != nil {
					return d
				}
				s.interps++
				i += 2
			default:
				// Literal text: HCL makes one token of each run between
				// interpolations and line ends, which are counted.
				i++
			}
			continue
		}
		// Expression mode (top level, brackets, interpolations).
		switch {
		case c == '\n':
			s.newline(i)
			if d := s.token(i); d != nil {
				return d
			}
			if len(s.stack) == 0 || s.stack[len(s.stack)-1].open == '{' {
				*s.opCount() = 0 // a new line of a body: a new attribute
			}
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#' || (c == '/' && i+1 < n && src[i+1] == '/'):
			for i < n && src[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < n && src[i+1] == '*':
			i += 2
			for i < n && !(src[i] == '*' && i+1 < n && src[i+1] == '/') {
				if src[i] == '\n' {
					s.newline(i)
				}
				i++
			}
			i += 2
		case c == '"':
			if d := s.token(i); d != nil {
				return d
			}
			if d := s.push(i, frame{kind: frameString}); d != nil {
				return d
			}
			i++
		case c == '<' && i+2 < n && src[i+1] == '<' && (isIdentStart(src[i+2]) || (src[i+2] == '-' && i+3 < n && isIdentStart(src[i+3]))):
			j := i + 2
			if src[j] == '-' {
				j++
			}
			k := j
			for k < n && isIdentByte(src[k]) {
				k++
			}
			if k < n && (src[k] == '\n' || src[k] == '\r') {
				if d := s.token(i); d != nil {
					return d
				}
				if d := s.push(i, frame{kind: frameHeredoc, term: src[j:k]}); d != nil {
					return d
				}
				for k < n && src[k] != '\n' {
					k++
				}
				if k < n {
					s.newline(k)
				}
				i = k + 1
				continue
			}
			if d := s.token(i); d != nil {
				return d
			}
			i++
		case c == '(' || c == '[' || c == '{':
			if d := s.token(i); d != nil {
				return d
			}
			if d := s.push(i, frame{kind: frameBracket, open: c}); d != nil {
				return d
			}
			i++
		case c == ')' || c == ']' || c == '}':
			if d := s.token(i); d != nil {
				return d
			}
			if len(s.stack) > 0 { // brackets or an interpolation; mismatches are the parser's to report
				s.stack = s.stack[:len(s.stack)-1]
			}
			i++
		case isIdentStart(c) || ('0' <= c && c <= '9') || c == '.':
			if d := s.token(i); d != nil {
				return d
			}
			if '0' <= c && c <= '9' { // a number: 1.5e-3 (a following - is an operator)
				for i < n && ('0' <= src[i] && src[i] <= '9' || src[i] == '.' || src[i] == 'e' || src[i] == 'E' ||
					(src[i] == '-' || src[i] == '+') && (src[i-1] == 'e' || src[i-1] == 'E')) {
					i++
				}
				continue
			}
			for i < n && (isIdentByte(src[i]) || src[i] == '.') {
				i++
			}
		case c == ',' || (c == '=' && !(i > 0 && bytes.IndexByte([]byte("=!<>"), src[i-1]) >= 0) && !(i+1 < n && src[i+1] == '=')):
			// A new element or an attribute's value: a new expression.
			if d := s.token(i); d != nil {
				return d
			}
			*s.opCount() = 0
			i++
		case bytes.IndexByte([]byte("+-*/%!<>&|?="), c) >= 0:
			if d := s.token(i); d != nil {
				return d
			}
			if d := s.operator(i); d != nil {
				return d
			}
			i++
		default:
			if d := s.token(i); d != nil {
				return d
			}
			i++
		}
	}
	return nil
}

// prescanNative checks a native-syntax file's nesting depth and token count.
func prescanNative(src []byte, filename string) hcl.Diagnostics {
	s := &scanner{src: src, filename: filename, base: hcl.InitialPos}
	if d := s.run(); d != nil {
		return hcl.Diagnostics{d}
	}
	return nil
}

// jsonString is one string of a JSON file: its decoded value and where its
// opening quote is.
type jsonString struct {
	val string
	pos hcl.Pos
}

// walkJSON reads a JSON file token by token (never recursively), checking
// its nesting depth and size, and calls str for each string (keys
// included: HCL's JSON syntax treats both as templates). Syntax errors are
// left to HCL's parser, which reports them better.
func walkJSON(src []byte, filename string, str func(jsonString) *hcl.Diagnostic) hcl.Diagnostics {
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	depth, tokens := 0, 0
	li := newLineIndex(src)
	for {
		start := int(dec.InputOffset())
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return nil
		}
		// The token starts after whitespace and any separator.
		for start < len(src) && bytes.IndexByte([]byte(" \t\r\n:,"), src[start]) >= 0 {
			start++
		}
		tokens++
		if tokens > MaxTokens {
			return hcl.Diagnostics{tokensDiag(filename, li.pos(start))}
		}
		switch t := tok.(type) {
		case json.Delim:
			if t == '[' || t == '{' {
				depth++
				if depth > MaxNestingDepth {
					return hcl.Diagnostics{depthDiag(filename, li.pos(start))}
				}
			} else {
				depth--
			}
		case string:
			if d := str(jsonString{val: t, pos: li.pos(start)}); d != nil {
				return hcl.Diagnostics{d}
			}
		}
	}
}

// prescanJSON checks a JSON-syntax file: its nesting depth and size, and
// each string as the template HCL will parse it as (depth, size, and the
// number of interpolations in the whole file).
func prescanJSON(src []byte, filename string) hcl.Diagnostics {
	interps, tokens := 0, 0
	return walkJSON(src, filename, func(js jsonString) *hcl.Diagnostic {
		if !bytes.Contains([]byte(js.val), []byte("{")) {
			return nil // no interpolation, no nesting
		}
		s := &scanner{src: []byte(js.val), filename: filename, base: js.pos, stack: []frame{{kind: frameTemplate}}}
		s.base.Column++ // after the quote
		s.stack = s.stack[:1]
		if d := s.run(); d != nil {
			return d
		}
		tokens += s.tokens
		if tokens > MaxTokens {
			return tokensDiag(filename, js.pos)
		}
		interps += s.interps
		if interps > MaxInterpolations {
			return limitDiag(filename, js.pos, "Too many template interpolations",
				"The file holds more than %d template interpolations (${ } and %%{ }); in the JSON syntax hilfarm allows at most %d per file.",
				MaxInterpolations, MaxInterpolations)
		}
		return nil
	})
}

// jsonForExpressions parses each string of a JSON file that can hold an
// interpolation as the template HCL's JSON syntax evaluates it, and
// reports the `for` expressions in those trees. The file passed
// prescanJSON, so each parse is bounded.
func jsonForExpressions(src []byte, filename string, deny func(hcl.Range)) {
	walkJSON(src, filename, func(js jsonString) *hcl.Diagnostic {
		if !bytes.Contains([]byte(js.val), []byte("{")) {
			return nil
		}
		start := js.pos
		start.Column++
		start.Byte++
		expr, _ := hclsyntax.ParseTemplate([]byte(js.val), filename, start)
		if expr == nil {
			return nil
		}
		hclsyntax.VisitAll(expr, func(n hclsyntax.Node) hcl.Diagnostics {
			if _, ok := n.(*hclsyntax.ForExpr); ok {
				// Positions inside a JSON string with escapes are
				// approximate: point at the string.
				deny(hcl.Range{Filename: filename, Start: js.pos, End: hcl.Pos{Line: js.pos.Line, Column: js.pos.Column + 1, Byte: js.pos.Byte + 1}})
			}
			return nil
		})
		return nil
	})
}

// lineIndex turns byte offsets, asked in increasing order, into line and
// column, in time linear in the file.
type lineIndex struct {
	src       []byte
	off, line int // scanned up to off, which is on line (1-based)
	col       int // and column (1-based, in characters)
}

func newLineIndex(src []byte) *lineIndex { return &lineIndex{src: src, line: 1, col: 1} }

func (li *lineIndex) pos(off int) hcl.Pos {
	off = min(max(off, li.off), len(li.src))
	for ; li.off < off; li.off++ {
		switch c := li.src[li.off]; {
		case c == '\n':
			li.line++
			li.col = 1
		case c < 0x80 || c >= 0xC0: // not a UTF-8 continuation byte
			li.col++
		}
	}
	return hcl.Pos{Line: li.line, Column: li.col, Byte: off}
}

// ParseBounded parses an HCL file (JSON syntax when filename ends in
// .json) with the bounds specs have: MaxFileSize, MaxNestingDepth,
// MaxTokens, MaxInterpolations, and templates whose results are bounded
// (MaxValueBytes) as they are built. Evaluate its expressions in a context
// from NewEvalContext or with BoundedFunctions. The sim board's firmware
// models use it: they are a candidate's input, like specs.
func ParseBounded(src []byte, filename string) (*hcl.File, hcl.Diagnostics) {
	f, _, diags := parse(src, filename)
	return f, diags
}

// BoundedFunctions returns the named functions of Functions, bounded as in
// specs (MaxValueBytes per result, MaxEvalBytes in all), with a budget of
// their own: make one set per evaluation.
func BoundedFunctions(names ...string) map[string]function.Function {
	all := Functions()
	base := make(map[string]function.Function, len(names))
	for _, n := range names {
		if f, ok := all[n]; ok {
			base[n] = f
		}
	}
	return newFunctionsOf(base)
}
