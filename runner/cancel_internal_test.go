package runner

import (
	"bytes"
	"math/rand"
	"regexp"
	"regexp/syntax"
	"sort"
	"strings"
	"testing"
	"time"
)

// costlyPattern returns the costliest regex this test knows of within the
// given source length and compiled program size: an alternation whose
// every branch stays alive on any text (".*" then a few letters), so a
// search does about the whole program's work for every byte.
func costlyPattern(maxBytes, maxInsts int) string {
	r := rand.New(rand.NewSource(1))
	size := func(src string) int {
		t, err := syntax.Parse(src, syntax.Perl)
		if err != nil {
			panic(err)
		}
		p, err := syntax.Compile(t.Simplify())
		if err != nil {
			panic(err)
		}
		return len(p.Inst)
	}
	// Each branch ".*xyz|" is 6 bytes and adds about as many instructions
	// as a two-branch pattern has more than a one-branch one.
	perBranch := size("(?:.*abc|.*def)!") - size("(?:.*abc)!")
	n := min((maxBytes-5)/6, (maxInsts-size("(?:.*abc)!"))/perBranch+1)
	for ; ; n-- {
		branches := make([]string, n)
		for i := range branches {
			branches[i] = ".*" + string(rune('a'+r.Intn(26))) + string(rune('a'+r.Intn(26))) + string(rune('a'+r.Intn(26)))
		}
		src := "(?:" + strings.Join(branches, "|") + ")!"
		if len(src) <= maxBytes && size(src) <= maxInsts {
			return src
		}
	}
}

// consoleText is n bytes of console-like text the costly patterns never match.
func consoleText(n int) []byte {
	line := "the quick brown fox jumps over the lazy dog 0123456789\r\n"
	return []byte(strings.Repeat(line, n/len(line)+1)[:n])
}

// TestSearchStops: a costly regex search reads its input through
// stopReader and ends as soon as its stopper fires, with nothing learnt;
// with the stopper quiet it gives what the plain search gives.
func TestSearchStops(t *testing.T) {
	m := newRegexMatcher(regexp.MustCompile(costlyPattern(4096, 4000)))
	if m.info.prog*RegexWindow <= costlyWork {
		t.Fatalf("program of %d instructions over the window is not costly", m.info.prog)
	}
	var w window
	for p := consoleText(RegexWindow); len(p) > 0; p = p[min(len(p), searchEvery):] {
		w.append(p[:min(len(p), searchEvery)])
	}
	done := make(chan struct{})
	close(done)
	if _, stopped := m.eval(&w, 0, &stopper{done: done}); !stopped {
		t.Fatal("search with its context done was not interrupted")
	}
	if m.from != 0 {
		t.Fatalf("an interrupted search moved the search start to %d", m.from)
	}
	if _, stopped := m.eval(&w, 0, &stopper{at: time.Now().Add(-time.Second)}); !stopped {
		t.Fatal("search past its deadline was not interrupted")
	}
	// Small windows run to the end, and find what regexp finds.
	var w2 window
	w2.append([]byte("xx yzab!\n"))
	m2 := newRegexMatcher(regexp.MustCompile(`(?:.*zab|.*qqq)!`))
	m2.forceReader = true
	r, stopped := m2.eval(&w2, 0, &stopper{})
	if stopped || r.st != stFinal || r.m.text != "xx yzab!" {
		t.Fatalf("reader search: %+v, stopped %v", r, stopped)
	}
}

// BenchmarkCancelHugeRegex: the reported worst case before specs bounded
// regexes (a 360 KB alternation, about 2 ms of work per byte, 90 s or more
// per search of the window): the time from a cancel to the search's return.
func BenchmarkCancelHugeRegex(b *testing.B) {
	m := newRegexMatcher(regexp.MustCompile(costlyPattern(360<<10, 1<<30)))
	var w window
	for p := consoleText(RegexWindow); len(p) > 0; p = p[min(len(p), searchEvery):] {
		w.append(p[:min(len(p), searchEvery)])
	}
	var lat []time.Duration
	for b.Loop() {
		done := make(chan struct{})
		res := make(chan time.Time, 1)
		go func() {
			if _, stopped := m.eval(&w, 0, &stopper{done: done}); !stopped {
				b.Error("search not interrupted")
			}
			res <- time.Now()
		}()
		time.Sleep(100 * time.Millisecond) // the search is under way
		t0 := time.Now()
		close(done)
		lat = append(lat, (<-res).Sub(t0))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-cancel-ms")
	b.Logf("cancel latency of a search with a %d KB regex (%d instructions) over %d KiB: median %s, max %s over %d cancels (target <= 100ms)",
		len(m.re.String())>>10, m.info.prog, RegexWindow>>10, lat[len(lat)/2], lat[len(lat)-1], len(lat))
	// How long the abandoned search itself runs on after the cancel (its
	// last step of the automaton): the CPU a cancel leaves behind.
	var tail []time.Duration
	b.StopTimer()
	for range 3 {
		done := make(chan struct{})
		r := &stopReader{b: w.since(0), stop: &stopper{done: done}}
		res := make(chan time.Time, 1)
		go func() {
			m.re.FindReaderSubmatchIndex(r)
			res <- time.Now()
		}()
		time.Sleep(200 * time.Millisecond)
		t0 := time.Now()
		close(done)
		tail = append(tail, (<-res).Sub(t0))
	}
	sort.Slice(tail, func(i, j int) bool { return tail[i] < tail[j] })
	b.Logf("the abandoned search ends by itself %s (median; max %s) after the cancel", tail[len(tail)/2], tail[len(tail)-1])
}

// TestSettleTime: the settle time follows paced output (twice the last
// gap between reads) and falls back to Options.Settle after a pause.
func TestSettleTime(t *testing.T) {
	e := &engine{opts: withDefaults(Options{})}
	t0 := time.Unix(1000, 0)
	for _, c := range []struct {
		at   time.Duration // read time after t0
		want time.Duration
	}{
		{0, DefaultSettle},
		{33 * time.Millisecond, 66 * time.Millisecond}, // 300 baud: a byte every 33 ms
		{66 * time.Millisecond, 66 * time.Millisecond}, //
		{1066 * time.Millisecond, DefaultSettle},       // after a pause: a new burst
		{1067 * time.Millisecond, DefaultSettle},       // fast reads
		{1267 * time.Millisecond, maxSettle},           // 110 baud and slower: capped
		{1267 * time.Millisecond, DefaultSettle},       // same instant
	} {
		e.noteRead(t0.Add(c.at))
		if got := e.settleTime(); got != c.want {
			t.Errorf("read at %s: settle %s, want %s", c.at, got, c.want)
		}
	}
}

// TestPrefilterBounded: the first-byte prefilter gives up on a long line
// full of bytes that can start a match, where it would be quadratic
// ("[ab].*X" over a line of 16 KiB of "a" and no X: seconds; minutes over the window), and the
// plain search finds what regexp finds.
func TestPrefilterBounded(t *testing.T) {
	for _, src := range []string{`[ab].*X`, `[ab][^X\n]*X`} {
		re := regexp.MustCompile(src)
		m := newRegexMatcher(re)
		if m.info.anchored == nil {
			t.Fatalf("%s: no prefilter", src)
		}
		stream := append(bytes.Repeat([]byte("a"), 16<<10), "\nbX\n"...)
		_, mt := feed(m, nil, stream)
		loc := re.FindIndex(stream)
		if mt == nil || mt.start != int64(loc[0]) || mt.end != int64(loc[1]) {
			t.Errorf("%s: match %v, regexp finds %v", src, mt, loc)
		}
		if _, ok := m.findFirst(stream); ok {
			t.Errorf("%s: the prefilter did not give up on %d candidate bytes", src, len(stream))
		}
	}
}
