package farm

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/runner"
)

// A job's console output is stored once, in the board log its recorder
// writes. The job's event stream stores a reference to the range of that
// log instead of a second copy of the bytes:
//
//	{"type":"console","log":[FROM,TO],"board":"NAME","time":"..."}
//
// and readers get the event as the runner emitted it
// ({"type":"console","time":"...","data":"..."}), built from the log.
// Events stored before references existed carry their data and are passed
// through unchanged.

// consoleRefPrefix starts every stored reference (and no inline console
// event, which starts with "time").
const consoleRefPrefix = `{"type":"console","log":[`

type consoleRef struct {
	Type  string    `json:"type"`
	Log   [2]int64  `json:"log"`
	Board string    `json:"board"`
	Time  time.Time `json:"time"`
}

func encodeConsoleRef(board string, from, to int64, at time.Time) json.RawMessage {
	b := make([]byte, 0, 96+len(board))
	b = append(b, consoleRefPrefix...)
	b = strconv.AppendInt(b, from, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, to, 10)
	b = append(b, `],"board":`...)
	nb, _ := json.Marshal(board)
	b = append(b, nb...)
	b = append(b, `,"time":`...)
	tb, _ := at.MarshalJSON()
	b = append(b, tb...)
	return append(b, '}')
}

// expandConsole returns evs with every console reference replaced by the
// console output it names, read from the board log. Bytes the log no
// longer has (pruned by retention, or dropped because the store fell
// behind) are left out; the event says how many in "missing".
func (c *Controller) expandConsole(evs []store.Event) []store.Event {
	var out []store.Event
	for i, e := range evs {
		if e.Type != "console" || !bytes.HasPrefix(e.Data, []byte(consoleRefPrefix)) {
			if out != nil {
				out = append(out, e)
			}
			continue
		}
		if out == nil {
			out = append(make([]store.Event, 0, len(evs)), evs[:i]...)
		}
		var ref consoleRef
		if err := json.Unmarshal(e.Data, &ref); err != nil {
			c.log.Error("undecodable console reference", "seq", e.Seq, "err", err)
			continue
		}
		data, err := c.logRange(context.Background(), ref.Board, ref.Log[0], ref.Log[1])
		if err != nil {
			c.log.Error("reading a job's console from the board log", "board", ref.Board, "err", err)
		}
		e.Data, _ = runner.ConsoleOutput{Time: ref.Time, Data: data}.MarshalJSON()
		if missing := ref.Log[1] - ref.Log[0] - int64(len(data)); missing > 0 {
			e.Data = append(e.Data[:len(e.Data)-1], `,"missing":`+strconv.FormatInt(missing, 10)+`}`...)
		}
		out = append(out, e)
	}
	if out == nil {
		return evs
	}
	return out
}

// logRange is the console data of a board's log in [from, to).
func (c *Controller) logRange(ctx context.Context, board string, from, to int64) ([]byte, error) {
	recs, err := c.db.Log(ctx, board, from, to, 0)
	if err != nil {
		return nil, err
	}
	data := make([]byte, 0, to-from)
	for _, r := range recs {
		if r.Kind != kindData {
			continue
		}
		d := r.Data
		if end := r.Offset + int64(len(d)); end > to {
			d = d[:to-r.Offset]
		}
		data = append(data, d...)
	}
	return data, nil
}
