package farm

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// Serve serves the API on ln until ctx is done, then shuts down: it stops
// accepting, closes the websockets (which http.Server.Shutdown does not
// track), waits up to 10 s for requests in flight, and waits for every
// websocket handler to return.
func (a *API) Serve(ctx context.Context, ln net.Listener) error {
	// The connection caps and body deadlines are in httplimits.go: a body
	// has BodyReadTimeout, a submission UploadMinRate (no ReadTimeout, which
	// would be one figure for a login and a 64 MiB upload alike).
	ln = LimitListener(ln, MaxConnsPerAddr, connBudget())
	srv := &http.Server{
		Handler:           bodyDeadline(a.Handler()),
		ReadHeaderTimeout: HeaderReadTimeout,
		WriteTimeout:      10 * time.Minute, // long console downloads; websockets set their own deadlines
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          nil,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	srv.RegisterOnShutdown(a.CloseWebsockets)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	rctx, stopRevocations := context.WithCancel(ctx)
	revDone := make(chan struct{})
	go func() { defer close(revDone); a.watchRevocations(rctx) }()
	defer func() { stopRevocations(); <-revDone }()
	select {
	case err := <-errc:
		a.CloseWebsockets()
		a.Wait()
		return err
	case <-ctx.Done():
	}
	a.waitSettled(30 * time.Second)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		srv.Close()
	}
	a.Wait()
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
