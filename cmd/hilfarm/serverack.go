package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/hilfarm/hilfarm/farm"
	"github.com/hilfarm/hilfarm/rack"
	"github.com/hilfarm/hilfarm/specs"
)

// The rack side of a multi-rack farm (docs/racks.md): a farm.hcl with a
// rack block makes `hilfarm serve` also run a rack agent that dials the
// hub and runs the jobs it pulls on this farm's boards.

// Files of a rack's credentials bundle (what `hilfarm rack add` writes).
const (
	bundleCA       = "ca.pem"
	bundleCert     = "rack.pem"
	bundleKey      = "rack-key.pem"
	bundlePassword = "password"
)

// rackLink is a rack block with its credentials read.
type rackLink struct {
	name, hub string
	tls       *tls.Config
	password  string
}

// loadRackLink reads the credentials bundle of the farm's rack block; nil
// without one. A missing or bad file is an error naming it.
func loadRackLink(f *specs.Farm) (*rackLink, error) {
	r := f.Rack
	if r == nil {
		return nil, nil
	}
	dir := r.Credentials
	if !filepath.IsAbs(dir) && f.Filename != "" {
		dir = filepath.Join(filepath.Dir(f.Filename), dir)
	}
	files := map[string][]byte{}
	for _, n := range []string{bundleCA, bundleCert, bundleKey, bundlePassword} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, fmt.Errorf("rack %s: credentials: %w (copy the bundle `hilfarm rack add %s` wrote: %s, %s, %s, %s)",
				r.Name, err, r.Name, bundleCA, bundleCert, bundleKey, bundlePassword)
		}
		files[n] = b
	}
	u, err := url.Parse(r.Hub) // checked by specs
	if err != nil {
		return nil, fmt.Errorf("rack %s: hub %q: %w", r.Name, r.Hub, err)
	}
	tlsc, err := rack.RackTLS(files[bundleCA], files[bundleCert], files[bundleKey], u.Hostname())
	if err != nil {
		return nil, fmt.Errorf("rack %s: credentials in %s: %w", r.Name, dir, err)
	}
	pw := strings.TrimSpace(string(files[bundlePassword]))
	if pw == "" {
		return nil, fmt.Errorf("rack %s: credentials: %s is empty", r.Name, filepath.Join(dir, bundlePassword))
	}
	return &rackLink{name: r.Name, hub: r.Hub, tls: tlsc, password: pw}, nil
}

// runRackAgent runs the rack agent over the controller's boards until ctx
// ends, after cancelling the hub's jobs a previous process left. Its outbox
// and firmware cache live in <data dir>/rack.
func runRackAgent(ctx context.Context, rl *rackLink, c *farm.Controller, dataDir string, log *slog.Logger) error {
	// Hub jobs a previous process left queued or running are orphans: the
	// hub retries them elsewhere.
	if _, err := c.CancelRackJobs(ctx); err != nil {
		return err
	}
	a, err := rack.NewAgent(ctx, rack.AgentConfig{
		Name: rl.name, DataDir: filepath.Join(dataDir, "rack"), HubURL: rl.hub,
		TLS: rl.tls, Password: rl.password, Boards: c.RackBoards(rl.name), Logger: log,
	})
	if err != nil {
		return err
	}
	log.Info("rack agent started", "rack", rl.name, "hub", rl.hub, "boards", len(c.Farm().Boards))
	<-ctx.Done()
	a.Close()
	return nil
}
