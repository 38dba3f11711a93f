package runner

import (
	"errors"
	"fmt"
)

// ErrCandidate marks a board operation's error as caused by the candidate's
// own input: an emulator that died or hit its memory or CPU limit running
// the firmware (or the console input) under test. Wrap it (fmt.Errorf with
// %w); the runner then ends the step failed with the error as its reason,
// not in error, so that the job is not retried on another board.
var ErrCandidate = errors.New("caused by the candidate's input")

// CandidateFaulter is an optional interface of a board's Power (an
// emulator): CandidateFault returns why the emulator stopped because of the
// candidate's input since it last started, or nil. When a step ends in
// error (a console lost, say) and the emulator reports such a fault, the
// step failed instead, with the fault as its reason.
type CandidateFaulter interface {
	CandidateFault() error
}

// blameCandidate turns an infrastructure error into the candidate's failure
// when the emulator says the candidate made it stop.
func (e *engine) blameCandidate(se *stepErr) *stepErr {
	if se == nil || se.outcome != Error {
		return se
	}
	cf, ok := e.b.Power.(CandidateFaulter)
	if !ok {
		return se
	}
	if err := cf.CandidateFault(); err != nil {
		return &stepErr{Failed, se.kind, fmt.Sprintf("%v (%s)", err, se.msg)}
	}
	return se
}
