package runner

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The differential test of the expect engine: a stream delivered in reads
// of any sizes gives the same outcome, matches and captures as the same
// stream delivered in one read.

// chunkTokens make up the fuzzed streams (each input byte picks one), so
// that the patterns below meet their edge cases often.
var chunkTokens = []string{
	"OK", "AY", "FAIL", "SAFE", "x=", "1", "2", "9", " ", "\r", "\n", "\r\n",
	"a", "b", "c", "d", "é", "€", "\xe2", "\x82", "ERR", "panic: ", "_", "-", "K", "Y", "=", "OKAY",
}

// chunkExpects are the expect patterns: regexes with anchors, \b, \B,
// growing repetitions, captures and alternatives, and literals (prefix "=").
var chunkExpects = []string{
	`OK$`, `(?m)OK$`, `OK\b`, `OK\r?$`, `x=(\d+)`, `x=(\d*)`, `(\w+)=(\d+)`, `OK`, `\bOK`, `OK\B`,
	`^OK`, `(?m)^OK`, `[A-Z]+`, `(a|ab)(c|bcd)(d*)`, `a.*c|b`, `(?s)x.*Y`, `FAIL$|A`, `\d{2,4}`,
	`é+`, `[^a]`, `(?i)ok`, `x*`, `\z`, `(?m)$`, `OK|OKAY`, `(OK)(AY)?`, `€`, `\r\n`, `(?s).+`,
	`\bK\b`, `(?U)x=\d+`, `[0-9]+ *$`, `(?i)fail(safe)?`, `.`, `\B`, `(?m)^$`,
	"=OK", "=FAIL", "=x=1", "=\r\n", "=é", "=OKAY", "=€",
}

// chunkFailOn are the fail_on patterns a session picks from (none matches
// the empty string).
var chunkFailOn = []string{
	"=FAIL", "=ERR", `FAIL$`, `FAILSAFE\b`, `\bERR(\d+)`, `panic: \w+`, `(?m)^ERR$`, `SAFE|FAILSAFE`,
}

func chunkMatcher(p string, forceReader bool) *matcher {
	if lit, ok := strings.CutPrefix(p, "="); ok {
		return newLiteral(lit)
	}
	m := newRegexMatcher(regexp.MustCompile(p))
	m.forceReader = forceReader
	return m
}

// sessionEvent is one decision of a session.
type sessionEvent struct {
	Kind   string // pass, fail, timeout, fail-after
	Index  int    // the expect's index, or the fail_on pattern's
	Start  int64
	End    int64
	Groups []string
}

// session runs expects in order over the stream in chunks, as the steps of
// a test do (see await), then reads the rest of the stream: a fail_on
// match ends it. When the chunks run out the console settles (what the
// settle time or a closed console does).
func session(expects, failOn []string, chunks [][]byte, forceReader bool) []sessionEvent {
	var fo []*matcher
	for _, p := range failOn {
		fo = append(fo, chunkMatcher(p, forceReader))
	}
	e := &engine{opts: withDefaults(Options{}), now: time.Now, failOn: fo}
	ci := 0
	more := func() bool {
		if ci >= len(chunks) {
			return false
		}
		e.handle(ConsoleEvent{Kind: ConsoleData, Data: chunks[ci]})
		ci++
		e.search()
		return true
	}
	fail := func(kind string) sessionEvent {
		ev := sessionEvent{Kind: kind, Index: e.failRank, Start: e.failHit.start, End: e.failHit.end, Groups: e.failHit.groups}
		e.failOnErr("x")
		return ev
	}
	var out []sessionEvent
	for i, p := range expects {
		m := chunkMatcher(p, forceReader)
		m.reset(e.consumed)
		e.active, e.hit = m, nil
		e.search()
		for e.hit == nil && !e.failReady {
			if !more() {
				e.settle()
				break
			}
		}
		switch {
		case e.hit != nil:
			out = append(out, sessionEvent{Kind: "pass", Index: i, Start: e.hit.start, End: e.hit.end, Groups: e.hit.groups})
		case e.failReady:
			return append(out, fail("fail"))
		default:
			return append(out, sessionEvent{Kind: "timeout", Index: i})
		}
		e.active, e.hit = nil, nil
	}
	for !e.failReady && more() {
	}
	if !e.failReady {
		e.settle()
	}
	if e.failHit != nil {
		out = append(out, fail("fail-after"))
	}
	return out
}

// chunkCase decodes a fuzz input: the stream, the expects and the fail_on
// patterns, and the chunking.
func chunkCase(data, pats, cuts []byte) (stream []byte, expects, failOn []string, chunks [][]byte) {
	for _, b := range data {
		stream = append(stream, chunkTokens[int(b)%len(chunkTokens)]...)
	}
	if len(pats) > 0 {
		for k, p := range chunkFailOn {
			if pats[0]&(1<<k) != 0 {
				failOn = append(failOn, p)
			}
		}
		for _, b := range pats[1:min(len(pats), 4)] {
			expects = append(expects, chunkExpects[int(b)%len(chunkExpects)])
		}
	}
	for i, k := 0, 0; i < len(stream); k++ {
		n := 1
		if len(cuts) > 0 {
			n = 1 + int(cuts[k%len(cuts)])%9
		}
		chunks = append(chunks, stream[i:min(i+n, len(stream))])
		i += n
	}
	return stream, expects, failOn, chunks
}

func FuzzChunking(f *testing.F) {
	idx := func(list []string, p string) byte {
		for i, q := range list {
			if q == p {
				return byte(i)
			}
		}
		panic(p)
	}
	tok := func(ts ...string) []byte {
		var b []byte
		for _, t := range ts {
			b = append(b, idx(chunkTokens, t))
		}
		return b
	}
	// The reported cases: "OK" then "AY", and fail_on_regex FAIL$ on FAILSAFE.
	for _, p := range []string{`OK$`, `(?m)OK$`, `OK\b`, `OK\r?$`} {
		f.Add(tok("OK", "AY", "\r\n", "OK", "\r\n"), []byte{0, idx(chunkExpects, p)}, []byte{1, 1}, uint8(0))
	}
	f.Add(tok("FAIL", "SAFE", " ", "OK", "\r\n"), []byte{1 << 2, idx(chunkExpects, "=OK")}, []byte{3}, uint8(0))
	f.Add(tok("x=", "1", "2", " ", "OK"), []byte{0, idx(chunkExpects, `x=(\d+)`), idx(chunkExpects, "=OK")}, []byte{2, 0}, uint8(1))
	f.Add(tok("a", "b", "c", "d", "d"), []byte{0, idx(chunkExpects, `(a|ab)(c|bcd)(d*)`)}, []byte{0}, uint8(0))
	f.Add(tok("ERR", "1", "2", "\n", "OK"), []byte{0xff, idx(chunkExpects, `OK`)}, []byte{0, 4}, uint8(1))
	f.Add(tok("é", "é", "€", "\xe2", "\x82"), []byte{0, idx(chunkExpects, `é+`), idx(chunkExpects, `[^a]`)}, []byte{0}, uint8(0))
	f.Fuzz(func(t *testing.T, data, pats, cuts []byte, mode uint8) {
		if len(data) > 400 || len(pats) < 2 {
			return
		}
		stream, expects, failOn, chunks := chunkCase(data, pats, cuts)
		want := session(expects, failOn, [][]byte{stream}, false)
		got := session(expects, failOn, chunks, mode&1 != 0)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("stream %q, expects %q, fail_on %q, %d chunks (reader %v):\n in one piece: %+v\n in chunks:    %+v",
				stream, expects, failOn, len(chunks), mode&1 != 0, want, got)
		}
		// In one piece, with no fail_on, the first expect finds what Go's
		// regexp finds in the stream.
		if len(failOn) == 0 && !strings.HasPrefix(expects[0], "=") {
			loc := regexp.MustCompile(expects[0]).FindSubmatchIndex(stream)
			switch {
			case loc == nil && want[0].Kind != "timeout",
				loc != nil && (want[0].Kind != "pass" || want[0].Start != int64(loc[0]) || want[0].End != int64(loc[1])):
				t.Fatalf("stream %q, expect %q: got %+v, regexp finds %v", stream, expects[0], want[0], loc)
			}
		}
	})
}

// TestChunkingReported checks the reported cases deterministically: a
// pattern that matches the "OK" of "OKAY" when it arrives as "OK" then
// "AY" does not match, and fail_on_regex FAIL$ does not fail on FAILSAFE.
func TestChunkingReported(t *testing.T) {
	for _, p := range []string{`OK$`, `(?m)OK$`, `OK\b`, `OK\r?$`} {
		got := session([]string{p}, nil, [][]byte{[]byte("OK"), []byte("AY")}, false)
		if want := []sessionEvent{{Kind: "timeout"}}; !reflect.DeepEqual(got, want) {
			t.Errorf("%s on OK|AY: %+v, want %+v", p, got, want)
		}
		// The console then settles: the "OK" at the end matches.
		got = session([]string{p}, nil, [][]byte{[]byte("OKAY O"), []byte("K")}, false)
		if len(got) != 1 || got[0].Kind != "pass" || got[0].Start != 5 {
			t.Errorf("%s on OKAY O|K: %+v, want the OK at 5", p, got)
		}
	}
	got := session([]string{"=done"}, []string{`FAIL$`}, [][]byte{[]byte("FAIL"), []byte("SAFE on, done")}, false)
	if len(got) != 1 || got[0].Kind != "pass" {
		t.Errorf("FAIL$ on FAIL|SAFE: %+v, want a pass", got)
	}
	// A capture waits for the whole number.
	got = session([]string{`x=(\d+)`}, nil, [][]byte{[]byte("x=1"), []byte("2;")}, false)
	if len(got) != 1 || fmt.Sprint(got[0].Groups) != "[x=12 12]" {
		t.Errorf(`x=(\d+) on x=1|2: %+v, want 12`, got)
	}
	// A literal split across reads; a fail_on later in the stream than
	// the expect's match fails the next step, not this one.
	got = session([]string{"=READY", "=more"}, []string{"=FAIL"}, [][]byte{[]byte("RE"), []byte("ADY FA"), []byte("IL more")}, false)
	want := []sessionEvent{{Kind: "pass", Start: 0, End: 5}, {Kind: "fail", Index: 0, Start: 6, End: 10}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("READY/FAIL: %+v, want %+v", got, want)
	}
}
