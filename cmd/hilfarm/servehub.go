package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hilfarm/hilfarm/rack"
	"github.com/hilfarm/hilfarm/specs"
)

// The hub side of a multi-rack farm (docs/racks.md): a farm.hcl with a hub
// block makes `hilfarm serve` also run the hub racks dial, and jobs for
// board types only racks have go to them through it.

// racksReloadEvery is how often the hub re-reads DIR/racks where inotify
// cannot tell it of changes (Hub.WatchRacks), so that `hilfarm rack add`
// and `hilfarm rack revoke` apply to a running hub.
const racksReloadEvery = 2 * time.Second

// hubSetup is a hub block with its files read.
type hubSetup struct {
	cfg rack.HubConfig
}

// loadHub reads the hub block's TLS files; nil without a hub block. A
// missing or bad file is an error naming it. Nothing is started.
func loadHub(f *specs.Farm, dataDir string, log *slog.Logger) (*hubSetup, error) {
	h := f.Hub
	if h == nil {
		return nil, nil
	}
	dir := h.Dir
	if !filepath.IsAbs(dir) && f.Filename != "" {
		dir = filepath.Join(filepath.Dir(f.Filename), dir)
	}
	files := map[string][]byte{}
	for _, n := range []string{rack.CACertFile, rack.HubCertFile, rack.HubKeyFile} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, fmt.Errorf("hub: %w (run `hilfarm ca init --dir %s --host HOST` first: it writes %s, %s, %s)",
				err, dir, rack.CACertFile, rack.HubCertFile, rack.HubKeyFile)
		}
		files[n] = b
	}
	tlsc, err := rack.HubTLS(files[rack.CACertFile], files[rack.HubCertFile], files[rack.HubKeyFile])
	if err != nil {
		return nil, fmt.Errorf("hub: %s, %s, %s in %s: %w", rack.CACertFile, rack.HubCertFile, rack.HubKeyFile, dir, err)
	}
	racksDir := filepath.Join(dir, "racks")
	// Read the records now so a bad one stops serve before anything runs.
	if _, err := rack.LoadRecords(racksDir); err != nil {
		return nil, fmt.Errorf("hub: %s: %w", racksDir, err)
	}
	host, port, err := net.SplitHostPort(h.Listen) // checked by specs
	if err != nil {
		return nil, fmt.Errorf("hub: listen %q: %w", h.Listen, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("hub: listen %q: port: %w", h.Listen, err)
	}
	return &hubSetup{cfg: rack.HubConfig{
		// The JetStream store is the hub's own, inside the data dir (the
		// library refuses to default to $TMPDIR).
		DataDir: filepath.Join(dataDir, "hub"), LeafHost: host, LeafPort: p,
		TLS: tlsc, RacksDir: racksDir, Logger: log.With("component", "hub"),
	}}, nil
}

// start starts the hub's embedded server and leaf listener.
func (hs *hubSetup) start(ctx context.Context) (*rack.Hub, error) {
	h, err := rack.NewHub(ctx, hs.cfg)
	if err != nil {
		return nil, fmt.Errorf("hub (leaf listener %s:%d): %w", hs.cfg.LeafHost, hs.cfg.LeafPort, err)
	}
	return h, nil
}
