package runner

import (
	"regexp/syntax"
	"unicode/utf8"
)

// reach answers the question that decides whether a regex match is final:
// can a path of the regex automaton that started at or before the match's
// start still be running where the settled data ends? It runs the
// compiled program (regexp/syntax) as a set of states, without priorities
// or captures, over the bytes from where such a path could have started;
// at the end every assertion counts as possibly true. No path there: the
// match is the same whatever bytes follow.
type reach struct {
	prog  *syntax.Prog
	mark  []uint32 // generation stamps: pc already in the current set
	gen   uint32
	stack []uint32
	cur   []uint32
	next  []uint32
}

func newReach(p *syntax.Prog) *reach {
	return &reach{prog: p, mark: make([]uint32, len(p.Inst))}
}

// add puts pc and what it leads to without consuming a rune into q, with
// the assertions of the position evaluated by flags; at the end of the
// settled data (atEnd) reaching an assertion or an instruction that
// consumes a rune means a path is still running: add returns true.
func (r *reach) add(q []uint32, pc uint32, flags syntax.EmptyOp, atEnd bool) ([]uint32, bool) {
	st := append(r.stack[:0], pc)
	defer func() { r.stack = st[:0] }()
	for len(st) > 0 {
		pc = st[len(st)-1]
		st = st[:len(st)-1]
		if r.mark[pc] == r.gen {
			continue
		}
		r.mark[pc] = r.gen
		in := &r.prog.Inst[pc]
		switch in.Op {
		case syntax.InstAlt, syntax.InstAltMatch:
			st = append(st, in.Arg, in.Out)
		case syntax.InstCapture, syntax.InstNop:
			st = append(st, in.Out)
		case syntax.InstEmptyWidth:
			if atEnd {
				return q, true
			}
			if syntax.EmptyOp(in.Arg)&^flags == 0 {
				st = append(st, in.Out)
			}
		case syntax.InstMatch, syntax.InstFail:
		default: // InstRune, InstRune1, InstRuneAny, InstRuneAnyNotNL
			if atEnd {
				return q, true
			}
			q = append(q, pc)
		}
	}
	return q, false
}

func consumes(in *syntax.Inst, c rune) bool {
	switch in.Op {
	case syntax.InstRune1:
		return c == in.Rune[0]
	case syntax.InstRune:
		return in.MatchRune(c)
	case syntax.InstRuneAny:
		return true
	case syntax.InstRuneAnyNotNL:
		return c != '\n'
	}
	return false
}

// runeAt decodes b at i as Go's regexp does (-1 at the end).
func runeAt(b []byte, i int) (rune, int) {
	if i >= len(b) {
		return -1, 0
	}
	if c := b[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRune(b[i:])
}

// running reports whether a path that started at some position p with
// p0 <= p <= s in b (paths that started before p0 are known not to reach
// de) is still running at de, the settled end of b: waiting for a rune or
// at an assertion there. Position 0 of b is the beginning of the text, as
// in the search. stopped: stop fired first.
func (r *reach) running(b []byte, p0, s, de int, stop *stopper) (alive, stopped bool) {
	prev := rune(-1)
	if p0 > 0 {
		prev, _ = utf8.DecodeLastRune(b[:p0])
	}
	r.nextGen()
	r.cur = r.cur[:0]
	var end bool
	for i := p0; ; {
		if i > de {
			return true, false // cannot happen: runes before de end before it
		}
		if (i-p0)&63 == 0 || len(r.prog.Inst) > 1024 {
			if stop.stopped() {
				return false, true
			}
		}
		atEnd := i == de
		c, w := runeAt(b, i)
		if atEnd {
			c = -1
		}
		if i <= s {
			if r.cur, end = r.add(r.cur, uint32(r.prog.Start), syntax.EmptyOpContext(prev, c), atEnd); end {
				return true, false
			}
		}
		if atEnd || len(r.cur) == 0 && i >= s {
			return false, false // at de, add saw every path still there
		}
		// Step over c to i+w.
		r.nextGen()
		nc, _ := runeAt(b, i+w)
		if i+w == de {
			nc = -1
		}
		flags := syntax.EmptyOpContext(c, nc)
		r.next = r.next[:0]
		for _, pc := range r.cur {
			in := &r.prog.Inst[pc]
			if consumes(in, c) {
				if r.next, end = r.add(r.next, in.Out, flags, i+w == de); end {
					return true, false
				}
			}
		}
		r.cur, r.next = r.next, r.cur
		prev = c
		i += w
	}
}

func (r *reach) nextGen() {
	r.gen++
	if r.gen == 0 { // wrapped: clear the stamps
		clear(r.mark)
		r.gen = 1
	}
}
