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
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Minute, // a 64 MiB upload over a slow link
		WriteTimeout:      10 * time.Minute, // long console downloads; websockets set their own deadlines
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          nil,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	srv.RegisterOnShutdown(a.CloseWebsockets)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
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
