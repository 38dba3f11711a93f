package runner

import (
	"math"
	"time"
)

// This file orders the expect engine's events. Each fail_on pattern and
// the active expect have a state over the console so far (stream.go: none,
// tentative or final). Events happen in stream order: the match that ends
// first wins (on a tie a fail_on pattern comes before the expect, and
// fail_on patterns in their order), and it is only taken once no other
// pattern can still end a match before it. So the outcome of a test is
// the same however the board's bytes were cut into reads: the fuzz test
// FuzzChunking checks it against the same stream in one piece.

// matchState is the engine's state for ordering matches (part of engine).
type matchState struct {
	failRank    int  // failHit's index in failOn
	failReady   bool // failHit comes before anything the active expect can still match
	undecided   bool // a tentative match holds a decision until the console settles
	stop        stopper
	interrupted bool // the last search was cut short by stop
	cands       []cand
	lastAt      time.Time     // when the last data was read
	gap         time.Duration // the last gap between reads, if short
}

// cand is a pattern competing for the next event.
type cand struct {
	res  result
	rank int // tie order: fail_on patterns by index, then the expect
}

// before reports whether final match a precedes final match b.
func before(a, b cand) bool {
	if a.res.m.end != b.res.m.end {
		return a.res.m.end < b.res.m.end
	}
	return a.rank < b.rank
}

// search runs the fail_on patterns and the active expect over the bytes
// so far and takes what can be decided.
func (e *engine) search() {
	e.unsearched = 0
	e.decide(false)
}

// settle takes the console as quiet: tentative matches are taken as they
// are (the settle time passed, the console closed or a step's time ran out).
func (e *engine) settle() { e.decide(true) }

// decide evaluates the patterns and takes the next events that are
// certain: the expect's match (e.hit) and a fail_on match (e.failHit,
// e.failReady once nothing the expect can still match comes before it).
// With settled, tentative matches count as final and nothing is pending.
func (e *engine) decide(settled bool) {
	e.failReady, e.undecided, e.interrupted = false, false, false
	cs := e.cands[:0]
	if e.failHit != nil {
		cs = append(cs, cand{res: result{st: stFinal, m: *e.failHit}, rank: e.failRank})
	} else {
		for i, m := range e.failOn {
			r, stopped := m.eval(&e.win, 0, &e.stop)
			if stopped {
				e.interrupted = true
				return
			}
			cs = append(cs, cand{res: r, rank: i})
		}
	}
	expect := len(e.failOn)
	if e.active != nil && e.hit == nil {
		r, stopped := e.active.eval(&e.win, e.consumed, &e.stop)
		if stopped {
			e.interrupted = true
			return
		}
		cs = append(cs, cand{res: r, rank: expect})
	}
	e.cands = cs
	if settled {
		for i := range cs {
			switch cs[i].res.st {
			case stTentative:
				cs[i].res.st = stFinal
			case stNone:
				cs[i].res.low = math.MaxInt64
			}
		}
	}
	for len(cs) > 0 {
		w := -1
		for i, c := range cs {
			if c.res.st == stFinal && (w < 0 || before(c, cs[w])) {
				w = i
			}
		}
		if w < 0 {
			for _, c := range cs {
				if c.res.st == stTentative {
					e.undecided = true
				}
			}
			return
		}
		win := cs[w]
		for i, c := range cs {
			if i != w && c.res.st != stFinal && (c.res.low < win.res.m.end || c.res.low == win.res.m.end && c.rank < win.rank) {
				e.undecided = true // c may still end a match first
				return
			}
		}
		if win.rank == expect {
			mt := win.res.m
			e.accept(&mt)
			cs = append(cs[:w], cs[w+1:]...)
			continue
		}
		if e.failHit == nil {
			mt := win.res.m
			e.failHit, e.failDesc, e.failRank = &mt, e.failOn[win.rank].desc, win.rank
			e.failOn[win.rank].from = mt.end
		}
		e.failReady = true
		return
	}
}

// accept makes mt the active expect's match.
func (e *engine) accept(mt *match) {
	e.hit = mt
	e.consumed = mt.end
	e.active = nil
}

// noteRead records when console data was read, for the settle time.
func (e *engine) noteRead(at time.Time) {
	if !e.lastAt.IsZero() {
		if g := at.Sub(e.lastAt); g >= 0 && g < maxSettle {
			e.gap = g
		} else {
			e.gap = 0
		}
	}
	e.lastAt = at
}

// settleTime is how long the console must stay quiet before a tentative
// match is taken: Options.Settle, or twice the last gap between reads when
// the bytes come paced (a slow UART), up to maxSettle.
func (e *engine) settleTime() time.Duration {
	return max(e.opts.Settle, min(2*e.gap, maxSettle))
}
