package farm

import (
	"context"
	"net/http"
	"path/filepath"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/internal/filewatch"
)

// Revocation is immediate (docs/api.md, "Tokens"): tokens are revoked by
// `hilfarm token revoke` in another process, straight in the store, so the
// API looks for new revocations (one indexed read of a small table)
// whenever the store's files change (inotify: an idle controller does not
// poll), at most once per RevokeCheckEvery while the store is busy. Where
// inotify is not available it looks every RevokeCheckEvery. A revoked token's websockets are closed with 1008
// "token revoked" and the boards it holds are released (audited); its next
// request is refused as before.

// RevokeCheckEvery bounds how often the API looks for revoked tokens.
const RevokeCheckEvery = 250 * time.Millisecond

// CloseReasonRevoked: the token of the connection was revoked (code 1008).
const CloseReasonRevoked = "token revoked"

type principalKey struct{}

// withPrincipal records the request's principal for upgrade, which tracks
// websockets by token.
func withPrincipal(r *http.Request, p Principal) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
}

func principalOf(r *http.Request) Principal {
	p, _ := r.Context().Value(principalKey{}).(Principal)
	return p
}

// watchRevocations runs until ctx is done, enforcing new revocations.
//
// It starts from the beginning of the table rather than from the newest
// revocation it finds when it starts: a baseline read when the goroutine
// first runs could include a token revoked after the server had already
// accepted that token's websocket, and that revocation would never be
// enforced. Enforcing an old revocation again is harmless (no holds, no
// websockets). Revocations that share a millisecond are told apart by ID.
func (a *API) watchRevocations(ctx context.Context) {
	var last int64
	seen := map[string]bool{} // IDs revoked at last
	changed := a.storeChanges(ctx)
	for {
		after := last - 1 // revoked_ms >= last
		if last == 0 {
			after = 0 // tokens never revoked have revoked_ms 0
		}
		ts, err := a.c.db.RevokedAfter(ctx, after)
		if err != nil {
			if ctx.Err() == nil {
				a.log.Error("looking for revoked tokens", "err", err)
			}
		}
		for _, tok := range ts {
			if tok.RevokedMS == last && seen[tok.ID] {
				continue
			}
			if tok.RevokedMS > last {
				last = tok.RevokedMS
				clear(seen)
			}
			seen[tok.ID] = true
			a.enforceRevocation(ctx, tok)
		}
		if !changed() {
			return
		}
	}
}

// storeChanges returns a function that blocks until the store may have
// changed since its last return, at most once per RevokeCheckEvery, and
// returns false once ctx is done. It is created before the first look, so
// a change made during that look is not missed.
func (a *API) storeChanges(ctx context.Context) func() bool {
	pace := func() bool {
		t := time.NewTimer(RevokeCheckEvery)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	path := a.c.db.Path()
	w, err := filewatch.New(filepath.Dir(path), filepath.Base(path))
	if err != nil {
		a.log.Warn("watching the store for revocations; looking every "+RevokeCheckEvery.String()+" instead", "err", err)
		return pace
	}
	context.AfterFunc(ctx, func() { w.Close() })
	return func() bool {
		if !w.Wait() || !pace() {
			return false
		}
		w.Drain() // what changed while pacing is covered by the next look
		return true
	}
}

// enforceRevocation releases the boards a revoked token holds, then closes
// its websockets.
func (a *API) enforceRevocation(ctx context.Context, tok store.RevokedToken) {
	actor := Principal{Name: tok.Name, TokenID: tok.ID}.Actor()
	boards := a.c.releaseHoldsOf(ctx, actor, "token "+tok.ID+" revoked")
	a.mu.Lock()
	var conns []*websocket.Conn
	for c, id := range a.tokens {
		if id == tok.ID {
			conns = append(conns, c)
		}
	}
	a.mu.Unlock()
	msg := websocket.FormatCloseMessage(websocket.ClosePolicyViolation, CloseReasonRevoked)
	for _, c := range conns {
		_ = c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		c.Close() // unblocks the handler's reader and writer
	}
	if len(conns) > 0 || len(boards) > 0 {
		a.log.Info("revoked token enforced", "token", tok.ID, "websockets_closed", len(conns), "holds_released", len(boards))
	}
}

// releaseHoldsOf ends every hold of actor, with an audit record each, and
// returns the boards.
func (c *Controller) releaseHoldsOf(ctx context.Context, actor, why string) []string {
	c.mu.Lock()
	var names []string
	var holds []*hold
	for _, n := range c.names {
		if h := c.slots[n].hold; h != nil && h.actor == actor {
			names, holds = append(names, n), append(holds, h)
		}
	}
	c.mu.Unlock()
	for i, h := range holds {
		c.endHold(ctx, names[i], h, why)
		if err := c.db.Audit(ctx, store.AuditRecord{At: c.now(), Actor: "hilfarm", Action: "release", Target: names[i], Detail: why + "; held by " + actor}); err != nil {
			c.log.Error("audit", "action", "release", "target", names[i], "err", err)
		}
	}
	return names
}
