package farm

import (
	"time"

	"github.com/gorilla/websocket"
	"github.com/hilfarm/hilfarm/farm/store"
)

// jobStreamFlushWait bounds how long shutdown waits for job event streams
// to send what was published before they close.
const jobStreamFlushWait = 5 * time.Second

// flushJobStreams tells the job event streams the server is closing and
// waits (up to jobStreamFlushWait) until each has sent the events already
// published to it and closed: 1000 after a final state, else 1001.
func (a *API) flushJobStreams() {
	a.mu.Lock()
	select {
	case <-a.closingCh:
	default:
		close(a.closingCh)
	}
	a.mu.Unlock()
	done := make(chan struct{})
	go func() {
		a.jobStreams.Wait()
		close(done)
	}()
	t := time.NewTimer(jobStreamFlushWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		a.log.Warn("shutdown: job event streams did not flush in time; closing them")
	}
}

// drainJobStream sends the events already queued on live, then closes the
// connection: 1000 when the job's final state went out, else 1001.
func drainJobStream(conn *websocket.Conn, live <-chan store.Event, send func(store.Event) error, final bool) {
	for {
		select {
		case e, ok := <-live:
			if ok {
				if err := send(e); err != nil {
					return
				}
				final = final || (e.Type == "state" && isFinalStateEvent(e))
				continue
			}
		default:
		}
		break
	}
	if final {
		closeWith(conn, websocket.CloseNormalClosure, CloseReasonDone)
		return
	}
	closeWith(conn, websocket.CloseGoingAway, CloseReasonShutdown)
}

// waitSettled waits until opts.ShutdownAfter is closed, at most d.
func (a *API) waitSettled(d time.Duration) {
	if a.opts.ShutdownAfter == nil {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-a.opts.ShutdownAfter:
	case <-t.C:
		a.log.Warn("shutdown: the controller did not settle its jobs in time")
	}
}

// Settled is closed once Run, stopping, has ended every running job and
// published its final state: the API's cue to close its websockets
// (APIOptions.ShutdownAfter).
func (c *Controller) Settled() <-chan struct{} { return c.settled }
