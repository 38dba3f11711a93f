package farm

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"

	"github.com/hilfarm/hilfarm/farm/store"
)

// maxTail bounds GET /api/v1/jobs/{id}/attempts/{n}/console?tail=N.
const maxTail = 64 << 10

// attemptTail answers GET /api/v1/jobs/{id}/attempts/{n}/console: the last
// bytes of one attempt's console slice (default 4 KiB, ?tail= up to 64 KiB)
// as text, markers as "[hilfarm: KIND DETAIL]" lines; the job page shows it
// with the attempt's reason.
func (a *API) attemptTail(w http.ResponseWriter, r *http.Request, _ Principal) error {
	id := r.PathValue("id")
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 1 {
		return badRequest("attempt %q: want a number from 1", r.PathValue("n"))
	}
	tail := int64(4 << 10)
	if s := r.URL.Query().Get("tail"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 1 || v > maxTail {
			return badRequest("tail must be a number of bytes from 1 to %d", maxTail)
		}
		tail = v
	}
	if _, err := a.c.db.Job(r.Context(), id); err != nil {
		return err
	}
	atts, err := a.c.db.Attempts(r.Context(), id)
	if err != nil {
		return err
	}
	var at *store.Attempt
	for i := range atts {
		if atts[i].N == n {
			at = &atts[i]
		}
	}
	if at == nil {
		return fmt.Errorf("job %s has no attempt %d: %w", id, n, store.ErrNotFound)
	}
	end := at.LogEnd
	if at.State == store.StateRunning || end < 0 {
		end = -1
	}
	from := at.LogStart
	if end >= 0 && end-tail > from {
		from = end - tail
	}
	recs, err := a.c.db.Log(r.Context(), at.Board, from, end, 0)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, rec := range recs {
		if rec.Kind == kindData {
			buf.Write(rec.Data)
			continue
		}
		fmt.Fprintf(&buf, "\n[hilfarm: %s %s]\n", rec.Kind, rec.Data)
	}
	out := buf.Bytes()
	if int64(len(out)) > tail {
		out = out[int64(len(out))-tail:]
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
	return nil
}
