package runner

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// feed runs chunks through a bare engine with m as the active expect and
// returns its match, if any.
func feed(m *matcher, failOn []*matcher, chunks ...[]byte) (*engine, *match) {
	e := &engine{opts: withDefaults(Options{}), now: time.Now, failOn: failOn}
	m.reset(0)
	e.active = m
	for _, c := range chunks {
		e.handle(ConsoleEvent{Kind: ConsoleData, Data: c})
		e.search()
		if e.hit != nil {
			return e, e.hit
		}
	}
	if e.hit == nil {
		e.settle() // what the settle timer does
	}
	return e, e.hit
}

func TestTentativeRegexMatch(t *testing.T) {
	m := newRegexMatcher(regexp.MustCompile(`U-Boot ([0-9.]+)`))
	e := &engine{opts: withDefaults(Options{}), now: time.Now}
	m.reset(0)
	e.active = m
	e.handle(ConsoleEvent{Kind: ConsoleData, Data: []byte("U-Boot 2023.0")})
	e.search()
	if e.hit != nil || !e.undecided {
		t.Fatalf("hit %+v, undecided %v: want only a tentative match", e.hit, e.undecided)
	}
	e.handle(ConsoleEvent{Kind: ConsoleData, Data: []byte("1+dfsg")})
	e.search()
	if e.hit == nil || e.hit.groups[1] != "2023.01" {
		t.Fatalf("hit %+v, want 2023.01", e.hit)
	}
	// A fixed-length match is taken at once when the bytes after it show
	// that nothing can change it.
	m2 := newRegexMatcher(regexp.MustCompile(`x=(\d)`))
	e = &engine{opts: withDefaults(Options{}), now: time.Now}
	m2.reset(0)
	e.active = m2
	e.handle(ConsoleEvent{Kind: ConsoleData, Data: []byte("x=7 ")})
	e.search()
	if e.hit == nil || e.hit.groups[1] != "7" {
		t.Errorf("x=7: hit %+v, want 7", e.hit)
	}
}

func TestMatchAcrossChunks(t *testing.T) {
	stream := []byte("noise U-Boot 2023.01 (Jan 01 2023) more")
	for _, pat := range []*matcher{newLiteral("U-Boot 2023.01"), newRegexMatcher(regexp.MustCompile(`U-Boot (\d+)\.(\d+)`))} {
		for k := 0; k <= len(stream); k++ {
			_, mt := feed(pat, nil, stream[:k], stream[k:])
			if mt == nil || mt.start != 6 {
				t.Fatalf("%v split at %d: match %+v, want one at 6", pat.desc, k, mt)
			}
		}
	}
}

// TestLargeStreamBounded feeds far more than the window and checks that a
// literal at the very end is found and memory stays bounded.
func TestLargeStreamBounded(t *testing.T) {
	chunk := bytes.Repeat([]byte("0123456789abcde\n"), 4096/16)
	m := newLiteral("THE END")
	fail := []*matcher{newLiteral("HardFault"), newRegexMatcher(regexp.MustCompile(`panic: \w+`))}
	e := &engine{opts: withDefaults(Options{}), now: time.Now, failOn: fail}
	e.active = m
	for range 4000 { // 16 MB
		e.handle(ConsoleEvent{Kind: ConsoleData, Data: chunk})
		e.search()
		if e.hit != nil || e.failHit != nil {
			t.Fatalf("early match %+v / %+v", e.hit, e.failHit)
		}
	}
	if cap(e.win.buf) > 2*RegexWindow {
		t.Errorf("window capacity %d, want at most %d", cap(e.win.buf), 2*RegexWindow)
	}
	e.handle(ConsoleEvent{Kind: ConsoleData, Data: []byte("...THE E")})
	e.handle(ConsoleEvent{Kind: ConsoleData, Data: []byte("ND...")})
	e.search()
	if e.hit == nil || e.hit.text != "THE END" {
		t.Fatalf("hit = %+v, want THE END", e.hit)
	}
}

func TestRemainderStaysForNextExpect(t *testing.T) {
	e, mt := feed(newLiteral("login:"), nil, []byte("login: root\r\n# "))
	if mt == nil {
		t.Fatal("no match")
	}
	next := newLiteral("# ")
	next.reset(e.consumed)
	e.active, e.hit = next, nil
	e.search()
	if e.hit == nil || e.hit.start != 13 {
		t.Fatalf("second expect hit %+v, want at 13", e.hit)
	}
}

func TestSlice(t *testing.T) {
	s := newSlice(10)
	for _, p := range []string{"abc", "defgh", "ijklmnop", "qr", "stuvwxyz"} {
		s.write([]byte(p))
	}
	if got, want := s.String(), "abcde\n[... 16 bytes elided ...]\nvwxyz"; got != want {
		t.Errorf("slice = %q, want %q", got, want)
	}
	s = newSlice(100)
	s.write([]byte("short"))
	if s.String() != "short" {
		t.Errorf("slice = %q", s.String())
	}
}

func TestLastLines(t *testing.T) {
	var b strings.Builder
	for i := range 30 {
		b.WriteString("line ")
		b.WriteByte(byte('a' + i%26))
		b.WriteString("\r\n")
	}
	got := lastLines([]byte(b.String()), 3)
	if want := "  | line b\n  | line c\n  | line d"; got != want {
		t.Errorf("lastLines = %q, want %q", got, want)
	}
}

// FuzzExpect checks that the engine never panics and that a pattern placed
// in a stream is found wherever the stream is split into reads, literal and
// regex alike, with fail_on patterns active on the same pass.
func FuzzExpect(f *testing.F) {
	f.Add([]byte("noise before "), []byte("U-Boot 2023.01"), []byte(" after"), uint16(3))
	f.Add([]byte(""), []byte("=> "), []byte(""), uint16(1))
	f.Add(bytes.Repeat([]byte("x"), 15000), []byte("needle"), []byte("tail"), uint16(4096))
	f.Add([]byte("aaaa"), []byte("aab"), []byte("b"), uint16(2))
	f.Fuzz(func(t *testing.T, pre, pat, post []byte, step uint16) {
		if len(pat) == 0 || len(pat) > 1024 || len(pre)+len(post) > 20000 {
			return
		}
		stream := append(append(append([]byte{}, pre...), pat...), post...)
		want := int64(bytes.Index(stream, pat))
		fail := []*matcher{newLiteral("\x00HardFault\x00"), newRegexMatcher(regexp.MustCompile(`\x01panic\x01`)),
			newRegexMatcher(regexp.MustCompile(`(?i)\x02assert(ion)? failed`))}
		// A split at every byte boundary (for short streams), then reads of
		// step bytes.
		if len(stream) <= 512 {
			for k := 0; k <= len(stream); k++ {
				check(t, pat, stream, want, fail, stream[:k], stream[k:])
			}
		}
		n := int(step%8192) + 1 + len(stream)/2000 // at most ~2000 reads
		var chunks [][]byte
		for i := 0; i < len(stream); i += n {
			chunks = append(chunks, stream[i:min(i+n, len(stream))])
		}
		check(t, pat, stream, want, fail, chunks...)
	})
}

func check(t *testing.T, pat, stream []byte, want int64, fail []*matcher, chunks ...[]byte) {
	t.Helper()
	for _, fo := range fail {
		if fo.re != nil && fo.re.Match(stream) || fo.re == nil && bytes.Contains(stream, fo.lit) {
			return // a fail_on match may come first in the stream (FuzzChunking checks that case)
		}
	}
	for _, fo := range fail {
		fo.reset(0)
	}
	_, mt := feed(newLiteral(string(pat)), fail, chunks...)
	if mt == nil || mt.start != want {
		t.Fatalf("literal %q in %d bytes split %d ways: match %+v, want at %d", pat, len(stream), len(chunks), mt, want)
	}
	if len(stream) > RegexWindow || !utf8.Valid(pat) {
		return // a regex is only searched in the last RegexWindow bytes, and must be UTF-8
	}
	for _, src := range []string{regexp.QuoteMeta(string(pat)), "(?i)" + regexp.QuoteMeta(string(pat)), "(" + regexp.QuoteMeta(string(pat)) + ")"} {
		re := regexp.MustCompile(src)
		want := int64(re.FindIndex(stream)[0])
		for _, fo := range fail {
			fo.reset(0)
		}
		_, mt = feed(newRegexMatcher(re), fail, chunks...)
		if mt == nil || mt.start != want {
			t.Fatalf("regex %q split %d ways: match %+v, want at %d", re, len(chunks), mt, want)
		}
	}
}

func TestRegexPrefilter(t *testing.T) {
	for _, c := range []struct {
		re     string
		stream string
		want   int // match start, -1 none
		pre    bool
	}{
		{`(?i)assert(ion)? failed`, "all fine\nASSERTION FAILED: x", 9, true},
		{`(?i)assert(ion)? failed`, "assert ok, asser failed", -1, true},
		{`[0-9]+ errors`, "no errors, 12 errors", 11, true},
		{`Kernel panic.*`, "x Kernel panic - y", 2, false}, // literal prefix: regexp's own
		{`^login:`, "login:", 0, false},                    // anchors: no prefilter
		{`x*`, "abc", 0, false},                            // matches empty
		{`(?i)k`, "\u212a", 0, true},                       // Kelvin sign folds to k
	} {
		m := newRegexMatcher(regexp.MustCompile(c.re))
		if got := m.info.anchored != nil; got != c.pre {
			t.Errorf("%s: prefilter %v, want %v", c.re, got, c.pre)
		}
		_, mt := feed(m, nil, []byte(c.stream))
		got := -1
		if mt != nil {
			got = int(mt.start)
		}
		if got != c.want {
			t.Errorf("%s in %q: match at %d, want %d", c.re, c.stream, got, c.want)
		}
	}
}

// BenchmarkEngine measures the engine alone (no pty): the per-test console
// slice, the window, an expect and three fail_on patterns over console-like
// text in 4 KiB reads.
func BenchmarkEngine(b *testing.B) {
	var text bytes.Buffer
	for i := 0; text.Len() < 1<<20; i++ {
		fmt.Fprintf(&text, "[%8d.%06d] sensor: t=%d.%dC the quick brown fox jumps over the lazy dog\r\n", i/1000, i%1000, 20+i%7, i%10)
	}
	data := text.Bytes()
	e := &engine{opts: withDefaults(Options{}), now: time.Now, rec: newSlice(DefaultTestConsoleMax),
		failOn: []*matcher{newLiteral("HardFault"), newRegexMatcher(regexp.MustCompile(`Kernel panic - not syncing: .*`)),
			newRegexMatcher(regexp.MustCompile(`(?i)assert(ion)? failed`))}}
	e.active = newLiteral("FLOOD-END-MARKER")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		for i := 0; i < len(data); i += 4096 {
			e.handle(ConsoleEvent{Kind: ConsoleData, Data: data[i:min(i+4096, len(data))]})
			e.search()
		}
	}
	if e.hit != nil || e.failHit != nil {
		b.Fatal("unexpected match")
	}
}

// A slice fed by writeStable (references) holds what one fed the same
// bytes by write (copies) holds, whatever the chunking and interleaving.
func TestSliceStableWritesMatchCopies(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		max := 2 + rnd.IntN(600)
		ref, got := newSlice(max), newSlice(max)
		for range rnd.IntN(60) {
			p := make([]byte, rnd.IntN(3*max/2+1))
			for i := range p {
				p[i] = byte('a' + rnd.IntN(26))
			}
			ref.write(p)
			if rnd.IntN(4) == 0 {
				got.write(append([]byte(nil), p...))
			} else {
				got.writeStable(p)
			}
			if rnd.IntN(10) == 0 && ref.String() != got.String() {
				t.Fatalf("round %d (max %d): mid-way %q, want %q", round, max, got.String(), ref.String())
			}
		}
		if g, w := got.String(), ref.String(); g != w || got.total != ref.total {
			t.Fatalf("round %d (max %d): %q (%d bytes), want %q (%d)", round, max, g, got.total, w, ref.total)
		}
	}
}
