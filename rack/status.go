package rack

import (
	"context"
	"encoding/json"
	"sort"
	"time"

	"github.com/nats-io/nats.go"
)

// A rack tells the hub which boards it has on its heartbeat, the core
// subject farm.hb.<rack> (its credential may publish only its own), so the
// hub's API can list them. It is a status report, not routing: jobs still
// go by the JOBS work queue.

// Heartbeat bounds.
const (
	// DefaultHeartbeatEvery is how often a rack reports its boards.
	DefaultHeartbeatEvery = 10 * time.Second
	// MaxReportedBoards bounds the boards one heartbeat carries, and the
	// hub keeps no more per rack.
	MaxReportedBoards = 256
	// maxHeartbeatBytes bounds a heartbeat the hub decodes.
	maxHeartbeatBytes = 64 << 10
)

// BoardStatus is one board as its rack reports it.
type BoardStatus struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Healthy bool   `json:"healthy"` // idle and able to take a job now
}

// RackStatus is a rack's last heartbeat as the hub received it.
type RackStatus struct {
	Rack   string        `json:"rack"`
	Boards []BoardStatus `json:"boards"`
	Seen   time.Time     `json:"seen"`
}

// heartbeat is a heartbeat's payload.
type heartbeat struct {
	Boards []BoardStatus `json:"boards"`
}

// heartbeatLoop reports the rack's boards every HeartbeatEvery, and on
// the first ticks (one a second) after the link comes up, until ctx ends:
// a heartbeat published while the link is down, or before the hub's
// interest has crossed it, is lost.
func (a *Agent) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last time.Time
	fresh := 0 // ticks left to report on after the link came up
	up := false
	for {
		switch now := time.Now(); {
		case !a.LinkUp():
			up = false
		case !up:
			up, fresh = true, 3
			fallthrough
		default:
			if fresh > 0 || now.Sub(last) >= a.cfg.HeartbeatEvery {
				if fresh > 0 {
					fresh--
				}
				if err := a.nc.Publish("farm.hb."+a.cfg.Name, a.heartbeat()); err != nil {
					a.log.Debug("heartbeat", "err", err)
				}
				last = now
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// heartbeat is the payload of a heartbeat: the rack's boards, bounded.
func (a *Agent) heartbeat() []byte {
	hb := heartbeat{Boards: []BoardStatus{}}
	for i, b := range a.cfg.Boards {
		if i == MaxReportedBoards {
			break
		}
		hb.Boards = append(hb.Boards, BoardStatus{Name: b.Name(), Type: b.Type(), Healthy: b.Healthy()})
	}
	data, _ := json.Marshal(hb)
	return data
}

// handleHeartbeat records a rack's boards. The subject names the sender
// (its credential cannot publish another rack's); a heartbeat of a rack
// the hub does not know, or one that does not decode, is dropped.
func (h *Hub) handleHeartbeat(m *nats.Msg) {
	parts := splitSubject(m.Subject)
	if len(parts) != 3 || len(m.Data) > maxHeartbeatBytes {
		return
	}
	name := parts[2]
	var hb heartbeat
	if err := json.Unmarshal(m.Data, &hb); err != nil || hb.Boards == nil {
		return
	}
	st := RackStatus{Rack: name, Seen: time.Now().UTC()}
	for _, b := range hb.Boards {
		if len(st.Boards) == MaxReportedBoards {
			break
		}
		if CheckName("board", b.Name) != nil || CheckName("board type", b.Type) != nil {
			continue
		}
		st.Boards = append(st.Boards, b)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if r, ok := h.records[name]; !ok || r.Revoked {
		return
	}
	h.status[name] = st
}

// Racks returns the last heartbeat of each known, unrevoked rack that sent
// one since the hub started, by rack name. Seen says how fresh it is.
func (h *Hub) Racks() []RackStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]RackStatus, 0, len(h.status))
	for n, st := range h.status {
		if r, ok := h.records[n]; !ok || r.Revoked {
			continue
		}
		st.Boards = append([]BoardStatus(nil), st.Boards...)
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rack < out[j].Rack })
	return out
}
