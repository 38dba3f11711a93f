package farm

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/hilfarm/hilfarm/farm/store"
)

// subQueue is how many events a job subscriber may have waiting before it
// is dropped (it then reconnects with the last seq it saw).
const subQueue = 4096

// hub fans a job's stored events out to live subscribers. Events are
// published after they are stored, with their sequence numbers, so a
// subscriber's replay (from the store) and live stream join without a gap;
// duplicates are filtered by seq.
type hub struct {
	mu   sync.Mutex
	subs map[string]map[*sub]struct{}
}

type sub struct {
	ch        chan store.Event
	minSeq    int64 // events with seq <= minSeq were in the replay
	closed    bool
	noConsole bool // skips console events (and does not make them expanded)
}

func newHub() *hub { return &hub{subs: map[string]map[*sub]struct{}{}} }

func (h *hub) subscribe(ctx context.Context, db *store.DB, jobID string, after int64, console bool) ([]store.Event, <-chan store.Event, func(), error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	replay, err := db.Events(ctx, jobID, after)
	if err != nil {
		return nil, nil, nil, err
	}
	s := &sub{ch: make(chan store.Event, subQueue), minSeq: after, noConsole: !console}
	if n := len(replay); n > 0 {
		s.minSeq = replay[n-1].Seq
	}
	if !console {
		replay = withoutConsole(replay)
	}
	// A job whose final state is already in the replay has nothing live.
	for _, e := range replay {
		if e.Type == "state" && isFinalStateEvent(e) {
			close(s.ch)
			return replay, s.ch, func() {}, nil
		}
	}
	// Nor has one that is final when the subscriber has seen everything
	// (it resumed after the last event): waiting would never end.
	if len(replay) == 0 && after > 0 {
		if j, err := db.Job(ctx, jobID); err == nil && store.Final(j.State) {
			close(s.ch)
			return replay, s.ch, func() {}, nil
		}
	}
	if h.subs[jobID] == nil {
		h.subs[jobID] = map[*sub]struct{}{}
	}
	h.subs[jobID][s] = struct{}{}
	stop := func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.drop(jobID, s)
	}
	return replay, s.ch, stop, nil
}

// drop removes and closes a subscriber. Called with h.mu held.
func (h *hub) drop(jobID string, s *sub) {
	if s.closed {
		return
	}
	s.closed = true
	close(s.ch)
	delete(h.subs[jobID], s)
	if len(h.subs[jobID]) == 0 {
		delete(h.subs, jobID)
	}
}

// publish sends stored events to the job's subscribers; final closes them
// after the last event. expand, when not nil, turns stored events into what
// subscribers get (console references into console bytes); it is called
// only when the job has subscribers.
func (h *hub) publish(jobID string, evs []store.Event, final bool, expand func([]store.Event) []store.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if expand != nil {
		for s := range h.subs[jobID] {
			if !s.noConsole {
				evs = expand(evs)
				break
			}
		}
	}
	for s := range h.subs[jobID] {
		for _, e := range evs {
			if e.Seq <= s.minSeq {
				continue
			}
			if s.noConsole && e.Type == "console" {
				s.minSeq = e.Seq
				continue
			}
			select {
			case s.ch <- e:
				s.minSeq = e.Seq
			default:
				h.drop(jobID, s) // too slow: it resumes from its last seq
			}
			if s.closed {
				break
			}
		}
		if final {
			h.drop(jobID, s)
		}
	}
}

// withoutConsole is evs without its console events.
func withoutConsole(evs []store.Event) []store.Event {
	out := evs[:0:0]
	for _, e := range evs {
		if e.Type != "console" {
			out = append(out, e)
		}
	}
	return out
}

func isFinalStateEvent(e store.Event) bool {
	var st struct {
		State string `json:"state"`
	}
	if err := json.Unmarshal(e.Data, &st); err != nil {
		return false
	}
	return store.Final(st.State)
}
