package farm

import (
	"context"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hilfarm/hilfarm/farm/store"
)

// Revocation is immediate (docs/api.md, "Tokens"): tokens are revoked by
// `hilfarm token revoke` in another process, straight in the store, so the
// API looks for new revocations every RevokeCheckEvery (one indexed read
// of a small table). A revoked token's websockets are closed with 1008
// "token revoked" and the boards it holds are released (audited); its next
// request is refused as before.

// RevokeCheckEvery is how often the API looks for revoked tokens.
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
func (a *API) watchRevocations(ctx context.Context) {
	var last int64
	if ts, err := a.c.db.RevokedAfter(ctx, 0); err == nil && len(ts) > 0 {
		last = ts[len(ts)-1].RevokedMS
	}
	t := time.NewTicker(RevokeCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ts, err := a.c.db.RevokedAfter(ctx, last)
		if err != nil {
			if ctx.Err() == nil {
				a.log.Error("looking for revoked tokens", "err", err)
			}
			continue
		}
		for _, tok := range ts {
			last = max(last, tok.RevokedMS)
			a.enforceRevocation(ctx, tok)
		}
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
