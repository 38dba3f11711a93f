package runner

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hilfarm/hilfarm/specs"
)

// The expect engine never rescans an ever-growing buffer. It keeps the last
// bytes of the console stream in a window of bounded size:
//
//   - a literal pattern is found with a rolling search: each search looks at
//     the new bytes plus the len(pattern)-1 bytes before them, so a match
//     that spans reads is found and every byte is looked at about once;
//   - a regular expression is searched in the window's last RegexWindow
//     bytes (after the end of the previous match): a regex match must fit in
//     RegexWindow bytes;
//   - fail_on patterns are searched on the same pass over every byte of the
//     run, whether or not an expect is waiting;
//   - what follows a match stays in the window for the next expect, so output
//     after a match is not lost (up to RegexWindow bytes of it).
//
// Memory is bounded: the window holds at most 2×RegexWindow bytes.
const (
	// RegexWindow bounds the search of regular expressions and how much
	// unconsumed console output waits for the next expect: 64 KiB.
	RegexWindow = 64 << 10
	// searchEvery is the most bytes appended before a search runs, so that
	// no byte leaves the window unsearched.
	searchEvery = RegexWindow / 4
)

// window holds the stream bytes [base, base+len(buf)).
type window struct {
	buf  []byte
	base int64
}

func (w *window) end() int64 { return w.base + int64(len(w.buf)) }

// append adds p, which is at most searchEvery bytes long. The buffer grows
// to at most 2×RegexWindow; then the oldest bytes beyond RegexWindow go.
func (w *window) append(p []byte) {
	if len(w.buf)+len(p) > 2*RegexWindow {
		drop := len(w.buf) - RegexWindow
		copy(w.buf, w.buf[drop:])
		w.buf = w.buf[:RegexWindow]
		w.base += int64(drop)
	}
	if len(w.buf)+len(p) > cap(w.buf) {
		nb := make([]byte, len(w.buf), min(2*RegexWindow, max(2*cap(w.buf), len(w.buf)+len(p), 4096)))
		copy(nb, w.buf)
		w.buf = nb
	}
	w.buf = append(w.buf, p...)
}

// since returns the bytes from absolute offset abs (clamped to the window).
func (w *window) since(abs int64) []byte {
	if abs < w.base {
		abs = w.base
	}
	if abs > w.end() {
		return nil
	}
	return w.buf[abs-w.base:]
}

// matcher is a compiled pattern with its rolling search state.
type matcher struct {
	lit  []byte         // literal pattern; nil for a regex
	re   *regexp.Regexp // regex; nil for a literal
	info reInfo         // what bounds the regex's matches
	desc string         // `text "..."` or `regex "..."`, for messages
	from int64          // no match not yet found can start before this offset
	// forceReader searches through stopReader whatever the cost (tests:
	// both ways of searching must agree).
	forceReader bool
	reach       *reach // made on first use
}

// reInfo is what the rolling search knows about a regex's matches.
type reInfo struct {
	nl      bool // a match can contain a newline
	maxLen  int  // the longest match in bytes; -1: unbounded
	anchors bool // it has ^, $, \A, \z or \b-like assertions
	// words: it has \b or \B, which can be false at the end of the data
	// and true once the next byte is known; beginText: it has ^ or \A
	// (the beginning of the text: where the search starts).
	words, beginText bool
	// prog is the size of the compiled program: a search costs up to
	// prog steps per byte (see costlyWork).
	prog int
	p    *syntax.Prog // the program, for reach; nil if it did not compile
	// first is the set of bytes a match can start with (nil: any, or the
	// regex can match the empty string); anchored is the regex anchored at
	// the start. Together they skip the regex engine on bytes that cannot
	// start a match: Go's regexp only does that itself for a case-sensitive
	// literal prefix.
	first    *[256]bool
	firstN   []byte // the bytes of first, when there are at most 3
	anchored *regexp.Regexp
	// prefix is an ASCII literal every match starts with (lower case when
	// fold is set: compared ignoring ASCII case), checked before the
	// anchored regex is run.
	prefix []byte
	fold   bool
}

// literalPrefix finds the ASCII literal a match of t must start with.
func literalPrefix(t *syntax.Regexp) (prefix []byte, fold bool) {
	for t.Op == syntax.OpConcat || t.Op == syntax.OpCapture {
		if len(t.Sub) == 0 {
			return nil, false
		}
		t = t.Sub[0]
	}
	if t.Op != syntax.OpLiteral {
		return nil, false
	}
	fold = t.Flags&syntax.FoldCase != 0
	for _, r := range t.Rune {
		if r >= utf8.RuneSelf || r == '\n' {
			break
		}
		if fold {
			r = unicode.ToLower(r)
		}
		prefix = append(prefix, byte(r))
	}
	return prefix, fold
}

// hasPrefix reports whether b starts with the first len(b) bytes of the
// matcher's prefix (b may be shorter than the prefix).
func (i *reInfo) hasPrefix(b []byte) bool {
	for k := range min(len(b), len(i.prefix)) {
		c := b[k]
		if i.fold && c >= utf8.RuneSelf {
			return true // a non-ASCII rune may fold to ASCII (K, ſ): let the regex decide
		}
		if i.fold && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != i.prefix[k] {
			return false
		}
	}
	return true
}

// runeLen is the UTF-8 length of r (invalid runes: 3, as U+FFFD).
func runeLen(r rune) int {
	if n := utf8.RuneLen(r); n > 0 {
		return n
	}
	return 3
}

// newRegexMatcher wraps a compiled regex.
func newRegexMatcher(re *regexp.Regexp) *matcher {
	m := &matcher{re: re, info: analyze(re), desc: "regex " + strconv.Quote(re.String())}
	if prefix, complete := re.LiteralPrefix(); prefix != "" || complete || m.info.anchors {
		m.info.first = nil // the regexp package's own prefix search is faster
	}
	if m.info.first != nil {
		if t, err := syntax.Parse(re.String(), syntax.Perl); err == nil {
			m.info.prefix, m.info.fold = literalPrefix(t)
		}
		a, err := regexp.Compile(`^(?:` + re.String() + `)`)
		if err != nil {
			m.info.first = nil
		} else {
			m.info.anchored = a
		}
	}
	return m
}

// firstSet returns the bytes a match of t can start with, and whether t can
// match the empty string (then the set is useless).
func firstSet(t *syntax.Regexp, set *[256]bool) (empty bool) {
	addRune := func(r rune) {
		if r == utf8.RuneError { // an invalid byte reads as U+FFFD
			for b := 0x80; b < 0x100; b++ {
				set[b] = true
			}
		}
		var buf [utf8.UTFMax]byte
		n := utf8.EncodeRune(buf[:], r)
		if n > 0 {
			set[buf[0]] = true
		}
	}
	switch t.Op {
	case syntax.OpLiteral:
		if len(t.Rune) == 0 {
			return true
		}
		r := t.Rune[0]
		addRune(r)
		if t.Flags&syntax.FoldCase != 0 {
			for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
				addRune(f)
			}
		}
		return false
	case syntax.OpCharClass:
		for i := 0; i+1 < len(t.Rune); i += 2 {
			lo, hi := t.Rune[i], t.Rune[i+1]
			if hi >= utf8.RuneSelf { // also invalid bytes, which read as U+FFFD
				for b := 0x80; b < 0x100; b++ {
					set[b] = true
				}
				hi = utf8.RuneSelf - 1
			}
			for r := lo; r <= hi; r++ {
				set[r] = true
			}
		}
		return false
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		for b := range set {
			set[b] = true
		}
		return false
	case syntax.OpCapture:
		return firstSet(t.Sub[0], set)
	case syntax.OpPlus:
		return firstSet(t.Sub[0], set)
	case syntax.OpStar, syntax.OpQuest:
		firstSet(t.Sub[0], set)
		return true
	case syntax.OpRepeat:
		e := firstSet(t.Sub[0], set)
		return e || t.Min == 0
	case syntax.OpConcat:
		for _, s := range t.Sub {
			if !firstSet(s, set) {
				return false
			}
		}
		return true
	case syntax.OpAlternate:
		empty := false
		for _, s := range t.Sub {
			if firstSet(s, set) {
				empty = true
			}
		}
		return empty
	}
	return true // assertions, empty match: anything may follow
}

// analyze bounds a regex's matches. A regex that cannot match a newline is
// searched again only from the start of the last line; one with a bounded
// length (and no assertions) from maxLen-1 bytes back, like a literal.
// Others are searched in the whole window.
func analyze(re *regexp.Regexp) reInfo {
	t, err := syntax.Parse(re.String(), syntax.Perl)
	if err != nil {
		return reInfo{nl: true, maxLen: -1, anchors: true, words: true, beginText: true, prog: math.MaxInt32}
	}
	var info reInfo
	if p, err := syntax.Compile(t.Simplify()); err == nil {
		info.prog, info.p = len(p.Inst), p
	} else {
		info.prog = math.MaxInt32
	}
	var walk func(t *syntax.Regexp) int
	add := func(a, b int) int {
		if a < 0 || b < 0 {
			return -1
		}
		return a + b
	}
	walk = func(t *syntax.Regexp) int {
		switch t.Op {
		case syntax.OpLiteral:
			n := 0
			for _, r := range t.Rune {
				if r == '\n' {
					info.nl = true
				}
				l := runeLen(r)
				if t.Flags&syntax.FoldCase != 0 {
					for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
						l = max(l, runeLen(f))
					}
				}
				n += l
			}
			return n
		case syntax.OpCharClass:
			for i := 0; i+1 < len(t.Rune); i += 2 {
				if t.Rune[i] <= '\n' && '\n' <= t.Rune[i+1] {
					info.nl = true
				}
			}
			if len(t.Rune) == 0 {
				return 0
			}
			return runeLen(t.Rune[len(t.Rune)-1])
		case syntax.OpAnyCharNotNL:
			return utf8.UTFMax
		case syntax.OpAnyChar:
			info.nl = true
			return utf8.UTFMax
		case syntax.OpBeginLine, syntax.OpBeginText, syntax.OpWordBoundary, syntax.OpNoWordBoundary,
			syntax.OpEndLine, syntax.OpEndText:
			info.anchors = true
			switch t.Op {
			case syntax.OpWordBoundary, syntax.OpNoWordBoundary:
				info.words = true
			case syntax.OpBeginText:
				info.beginText = true
			}
			return 0
		case syntax.OpEmptyMatch, syntax.OpNoMatch:
			return 0
		case syntax.OpCapture, syntax.OpQuest:
			return walk(t.Sub[0])
		case syntax.OpStar, syntax.OpPlus:
			walk(t.Sub[0])
			return -1
		case syntax.OpRepeat:
			n := walk(t.Sub[0])
			if t.Max < 0 || n < 0 {
				return -1
			}
			return n * t.Max
		case syntax.OpConcat:
			n := 0
			for _, s := range t.Sub {
				n = add(n, walk(s))
			}
			return n
		case syntax.OpAlternate:
			n := 0
			for _, s := range t.Sub {
				m := walk(s)
				if m < 0 || n < 0 {
					n = -1
				} else {
					n = max(n, m)
				}
			}
			return n
		}
		info.nl, info.anchors, info.words, info.beginText = true, true, true, true
		return -1
	}
	info.maxLen = walk(t)
	var set [256]bool
	if !firstSet(t, &set) {
		info.first = &set
		n := 0
		for b, ok := range set {
			if ok {
				n++
				if n <= 3 {
					info.firstN = append(info.firstN, byte(b))
				}
			}
		}
		if n > 3 {
			info.firstN = nil
		}
		if n == 256 {
			info.first = nil
		}
	}
	return info
}

// findFirst is FindSubmatchIndex for a regex with a first-byte set: it
// tries the anchored regex only where a match can start, on at most the
// bytes a match can span.
//
// Each try may scan to the end of the line (or of b), so many candidate
// bytes in a long line would make the search quadratic ("[ab].*X" over a
// line of "a"s): once the tries have scanned more than twice b, it gives up
// (ok false) and the caller runs the plain linear search.
func (m *matcher) findFirst(b []byte) (loc []int, ok bool) {
	work := 0
	var next [3]int // next occurrence of each byte of firstN
	for i := range next {
		next[i] = -2
	}
	for i := 0; i < len(b); {
		p := -1
		if m.info.firstN != nil {
			for k, c := range m.info.firstN {
				if next[k] != -1 && next[k] < i {
					j := bytes.IndexByte(b[i:], c)
					if j >= 0 {
						j += i
					}
					next[k] = j
				}
				if next[k] >= 0 && (p < 0 || next[k] < p) {
					p = next[k]
				}
			}
		} else {
			for j := i; j < len(b); j++ {
				if m.info.first[b[j]] {
					p = j
					break
				}
			}
		}
		if p < 0 {
			return nil, true
		}
		if len(m.info.prefix) > 0 && !m.info.hasPrefix(b[p:]) {
			i = p + 1 // no match here (yet: a later search starts at or before p)
			continue
		}
		end := len(b)
		if m.info.maxLen >= 0 {
			end = min(end, p+m.info.maxLen)
		} else if !m.info.nl {
			if k := bytes.IndexByte(b[p:], '\n'); k >= 0 {
				end = p + k
			}
		}
		if work += end - p; work > 2*len(b)+4096 {
			return nil, false
		}
		if loc := m.info.anchored.FindSubmatchIndex(b[p:end]); loc != nil {
			for k := range loc {
				if loc[k] >= 0 {
					loc[k] += p
				}
			}
			return loc, true
		}
		i = p + 1
	}
	return nil, true
}

// match is a found pattern; text and groups are copies.
type match struct {
	start, end int64
	text       string
	groups     []string // regex submatches; groups[0] is the whole match
}

func newLiteral(s string) *matcher {
	return &matcher{lit: []byte(s), desc: "text " + strconv.Quote(s)}
}

// fromSpecs makes a matcher of a compiled spec pattern.
func fromSpecs(m specs.Matcher) *matcher {
	if m.Regexp != nil {
		return newRegexMatcher(m.Regexp)
	}
	return newLiteral(string(m.Literal))
}

// reset makes the matcher search from offset abs on.
func (m *matcher) reset(abs int64) { m.from = abs }

// A pattern's state after a search of the data seen so far.
type mstate int

const (
	stNone      mstate = iota // no match yet
	stTentative               // a match that more bytes could still change
	stFinal                   // a match that no further byte can change
)

// result is a matcher's state over the data so far. low bounds what may
// still come: for stNone and stTentative, the match this pattern finally
// reports (if any) does not end before low. A final match is the
// pattern's match in every continuation of the stream.
type result struct {
	st  mstate
	m   match
	low int64
}

// stopper interrupts a long regex search: done closes (a cancel or a
// timeout of the step's context), or the clock passes at (the step's
// within; zero: none).
type stopper struct {
	done <-chan struct{}
	at   time.Time
}

func (s *stopper) stopped() bool {
	if s == nil {
		return false
	}
	if s.done == nil && s.at.IsZero() {
		return false
	}
	select {
	case <-s.done:
		return true
	default:
	}
	return !s.at.IsZero() && !time.Now().Before(s.at)
}

// costlyWork is the most search work (compiled program size × bytes
// searched) that one regexp call may do without checks for a cancel or
// a timeout: a few milliseconds on a slow core. A costlier search reads
// its input through stopReader, which checks between runes.
var costlyWork = 1 << 22

// stopReader feeds a regexp search rune by rune and ends the input early
// (io.EOF) once its stopper fires; the search's result is then discarded.
// Go's regexp does at most one step of its automaton (bounded by the
// program's size) per rune it reads, so a stop takes effect within about
// one rune's work.
type stopReader struct {
	b    []byte
	pos  int
	stop *stopper
	hit  bool // the stopper fired
}

func (r *stopReader) ReadRune() (rune, int, error) {
	if r.pos >= len(r.b) {
		return 0, 0, io.EOF
	}
	if r.stop.stopped() {
		r.hit = true
		return 0, 0, io.EOF
	}
	c := r.b[r.pos]
	if c < utf8.RuneSelf {
		r.pos++
		return rune(c), 1, nil
	}
	ru, n := utf8.DecodeRune(r.b[r.pos:])
	r.pos += n
	return ru, n, nil
}

// searchStoppable runs a costly search of b on a goroutine of its own,
// over a copy of b, reading it through stopReader. When stop fires it
// returns at once (stopped) and leaves the search to end on its own: it
// sees the same stop at its next rune, so it ends within about one step
// of the automaton (the work for one rune, bounded by the program's size,
// under a millisecond for the largest program specs allow); so at most a
// few such searches are ever left running, each for that long.
func searchStoppable(re *regexp.Regexp, b []byte, stop *stopper) (loc []int, stopped bool) {
	if stop.stopped() {
		return nil, true
	}
	type out struct {
		loc []int
		hit bool
	}
	ch := make(chan out, 1)
	st := *stop
	b = bytes.Clone(b)
	go func() {
		r := &stopReader{b: b, stop: &st}
		loc := re.FindReaderSubmatchIndex(r)
		ch <- out{loc, r.hit}
	}()
	var atC <-chan time.Time
	if !stop.at.IsZero() {
		t := time.NewTimer(time.Until(stop.at))
		defer t.Stop()
		atC = t.C
	}
	select {
	case o := <-ch:
		return o.loc, o.hit
	case <-stop.done:
	case <-atC:
	}
	return nil, true
}

// pathStart is where the paths that can still be running at de started at
// the earliest: after the last newline of b (the regex cannot match one),
// and at most maxLen bytes before de; -1: anywhere in b.
func (m *matcher) pathStart(b []byte, de int) int {
	p0 := -1
	if !m.info.nl {
		p0 = bytes.LastIndexByte(b, '\n') + 1
	}
	if m.info.maxLen >= 0 {
		p0 = max(p0, de-m.info.maxLen)
	}
	return p0
}

func (m *matcher) reacher() *reach {
	if m.reach == nil {
		m.reach = newReach(m.info.p)
	}
	return m.reach
}

// settledEnd is where the bytes of b stop being final: len(b), or the
// start of an incomplete UTF-8 sequence at its end (more bytes change how
// it decodes).
func settledEnd(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax+1; i-- {
		c := b[i]
		if c < utf8.RuneSelf {
			break
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(b[i:]) {
				return i
			}
			break
		}
	}
	return len(b)
}

// eval searches w at or after floor and says what the pattern's match is
// so far. interrupted: stop fired during a regex search; nothing was
// decided (only the search start may have moved, soundly).
//
// The rule that makes the outcome independent of how the bytes were cut
// into reads: Go's regexp returns the leftmost-first match of the data so
// far, as if the data ended there. Paths of the regex automaton that never
// reach the end of the data are the same whatever follows, so the match
// can only change through a path that reaches the end: one that could
// consume more bytes (a greedy repetition, an alternative that could still
// win), or an assertion evaluated at the end ($, \z, \b, \B see no next
// byte). A match is final once no such path can exist: every path that
// started at or before the match's start would have to be longer than the
// regex's longest match, or would have to cross a newline the regex cannot
// match. Otherwise it is tentative. A literal's leftmost occurrence is
// final as soon as it is found.
func (m *matcher) eval(w *window, floor int64, stop *stopper) (res result, interrupted bool) {
	start := max(floor, m.from, w.base)
	if m.re == nil {
		b := w.since(start)
		i := bytes.Index(b, m.lit)
		if i < 0 {
			m.from = max(start, w.end()-int64(len(m.lit))+1)
			return result{st: stNone, low: w.end() + 1}, false
		}
		s := start + int64(i)
		return result{st: stFinal, m: match{start: s, end: s + int64(len(m.lit)), text: string(m.lit)}}, false
	}
	start = max(start, w.end()-RegexWindow)
	b := w.since(start)
	var loc []int
	switch {
	case m.forceReader || m.info.prog > 0 && m.info.prog*len(b) > costlyWork:
		var stopped bool
		if loc, stopped = searchStoppable(m.re, b, stop); stopped {
			return result{}, true
		}
	default:
		ok := false
		if m.info.anchored != nil {
			loc, ok = m.findFirst(b)
		}
		if !ok {
			loc = m.re.FindSubmatchIndex(b)
		}
	}
	de := settledEnd(b)
	if loc == nil {
		// No match lies within [start, end): a later one ends after end.
		next := start
		if !m.info.nl {
			if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
				next = start + int64(i) + 1
			}
		}
		if m.info.maxLen >= 0 && !m.info.anchors {
			next = max(next, w.end()-int64(m.info.maxLen)+1)
		}
		if !m.info.beginText { // ^ and \A only match where the search starts
			m.from = max(m.from, next)
		}
		// A match found later ends at or after the settled end (\b or \B
		// may turn true there), or after it.
		low := start + int64(de)
		if !m.info.words {
			low++
		} else if p0 := m.pathStart(b[:de], de); m.info.p != nil && p0 >= 0 && de-p0 <= 4096 {
			// Unless no path is running at the settled end at all: then
			// a later match ends after it. (Beyond 4 KiB back, not worth
			// the check on every search: a literal expect that ends right
			// at the end of the data then waits for the settle time.)
			alive, stopped := m.reacher().running(b, p0, de, de, stop)
			if stopped {
				return result{}, true
			}
			if !alive {
				low++
			}
		}
		return result{st: stNone, low: low}, false
	}
	mt := match{start: start + int64(loc[0]), end: start + int64(loc[1]), text: string(b[loc[0]:loc[1]])}
	mt.groups = make([]string, len(loc)/2)
	for i := range mt.groups {
		if loc[2*i] >= 0 {
			mt.groups[i] = string(b[loc[2*i]:loc[2*i+1]])
		}
	}
	s := loc[0]
	if m.info.maxLen >= 0 && de-s > m.info.maxLen ||
		!m.info.nl && s <= de && bytes.IndexByte(b[s:de], '\n') >= 0 {
		return result{st: stFinal, m: mt}, false
	}
	if m.info.p != nil && loc[1] <= de {
		p0 := max(m.pathStart(b[:s], de), 0)
		alive, stopped := m.reacher().running(b, min(p0, s), s, de, stop)
		if stopped {
			return result{}, true
		}
		if !alive {
			return result{st: stFinal, m: mt}, false
		}
	}
	// If it changes, the match finally reported ends at or after this
	// one's start: a path that started earlier ends at the settled end or
	// later; any other starts at or after it.
	return result{st: stTentative, m: mt, low: mt.start}, false
}

// slice records a bounded copy of a console stretch: the first half of max
// bytes and the last half, with a marker for what was elided.
type slice struct {
	max   int
	head  []byte
	tail  []byte // ring of max/2 bytes
	tpos  int    // next write position in tail
	tlen  int    // bytes in tail
	total int64
	// refs are the latest stable chunks (writeStable), not yet copied into
	// the ring; refLen their bytes. Only what can still be in the tail is
	// kept: a flood is not copied chunk by chunk.
	refs   [][]byte
	refLen int
}

// writeStable is write for bytes that are never overwritten (a
// StableReader's): the tail keeps a reference and copies only when read
// or when other bytes follow.
func (s *slice) writeStable(p []byte) {
	if len(s.head) < s.max/2 || len(p) == 0 {
		s.write(p) // the head is copied once
		return
	}
	s.total += int64(len(p))
	s.refs = append(s.refs, p)
	s.refLen += len(p)
	t := s.max - s.max/2
	drop := 0
	for drop < len(s.refs)-1 && s.refLen-len(s.refs[drop]) >= t {
		s.refLen -= len(s.refs[drop])
		s.refs[drop] = nil
		drop++
	}
	if drop > 0 {
		s.refs = append(s.refs[:0], s.refs[drop:]...)
	}
}

// settle copies the referenced chunks into the ring.
func (s *slice) settle() {
	refs := s.refs
	s.refs, s.refLen = nil, 0
	for _, p := range refs {
		s.total -= int64(len(p)) // counted by writeStable; write counts it again
		s.write(p)
	}
}

func newSlice(max int) *slice {
	if max < 2 {
		max = 2
	}
	return &slice{max: max}
}

func (s *slice) write(p []byte) {
	if len(s.refs) > 0 {
		s.settle()
	}
	s.total += int64(len(p))
	h := s.max / 2
	if len(s.head) < h {
		n := min(h-len(s.head), len(p))
		s.head = append(s.head, p[:n]...)
		p = p[n:]
	}
	if len(p) == 0 {
		return
	}
	t := s.max - h
	if s.tail == nil {
		s.tail = make([]byte, t)
	}
	if len(p) >= t {
		copy(s.tail, p[len(p)-t:])
		s.tpos, s.tlen = 0, t
		return
	}
	n := copy(s.tail[s.tpos:], p)
	if n < len(p) {
		copy(s.tail, p[n:])
	}
	s.tpos = (s.tpos + len(p)) % t
	s.tlen = min(t, s.tlen+len(p))
}

// String returns the recorded bytes, with "[... N bytes elided ...]" where
// bytes were dropped.
func (s *slice) String() string {
	s.settle()
	var b strings.Builder
	b.Write(s.head)
	elided := s.total - int64(len(s.head)) - int64(s.tlen)
	if elided > 0 {
		fmt.Fprintf(&b, "\n[... %d bytes elided ...]\n", elided)
	}
	if s.tlen > 0 {
		if s.tlen < len(s.tail) {
			b.Write(s.tail[:s.tlen])
		} else {
			b.Write(s.tail[s.tpos:])
			b.Write(s.tail[:s.tpos])
		}
	}
	return b.String()
}

// lastLines returns up to n of the last lines of b (each cut to 200 bytes),
// indented for a message.
func lastLines(b []byte, n int) string {
	if len(b) > 8<<10 {
		b = b[len(b)-8<<10:]
	}
	text := strings.ReplaceAll(string(bytes.ToValidUTF8(b, []byte("?"))), "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	text = strings.TrimRight(text, "\n")
	if text == "" {
		return "  (nothing)"
	}
	lines := strings.Split(text, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var out strings.Builder
	for i, l := range lines {
		if len(l) > 200 {
			l = l[:200] + "…"
		}
		if i > 0 {
			out.WriteByte('\n')
		}
		out.WriteString("  | ")
		out.WriteString(l)
	}
	return out.String()
}
