package farm

import (
	"context"
	"os"
	"path/filepath"
	"time"
)

// retentionLoop applies the farm's retention (farm.hcl retention { days,
// max_size }) at start and then every RetentionEvery.
func (c *Controller) retentionLoop(ctx context.Context) {
	r := c.cfg.Farm.Retention
	if r.Days <= 0 && r.MaxBytes <= 0 {
		return
	}
	t := time.NewTicker(c.cfg.RetentionEvery)
	defer t.Stop()
	for {
		if err := c.ApplyRetention(ctx); err != nil && ctx.Err() == nil {
			c.log.Error("retention", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ApplyRetention prunes finished jobs (with their attempts and events),
// board logs and unused firmware older than the retention's days, then, while
// the store and the firmware files together exceed max_size, the oldest
// tenth of the finished jobs and the logs and firmware of their time.
// Queued and running jobs are never pruned.
func (c *Controller) ApplyRetention(ctx context.Context) error {
	r := c.cfg.Farm.Retention
	if r.Days > 0 {
		if err := c.pruneBefore(ctx, c.now().Add(-time.Duration(r.Days)*24*time.Hour)); err != nil {
			return err
		}
	}
	if r.MaxBytes <= 0 {
		return nil
	}
	for {
		used, err := c.usedBytes(ctx)
		if err != nil {
			return err
		}
		if used <= r.MaxBytes {
			return nil
		}
		finished, err := c.db.CountFinished(ctx)
		if err != nil {
			return err
		}
		n := max(1, finished/10)
		at, ok, err := c.db.NthFinished(ctx, n)
		if err != nil {
			return err
		}
		if !ok {
			c.log.Warn("over the retention size budget with nothing left to prune", "used", used, "budget", r.MaxBytes)
			return nil
		}
		if err := c.pruneBefore(ctx, at.Add(time.Millisecond)); err != nil {
			return err
		}
	}
}

func (c *Controller) pruneBefore(ctx context.Context, before time.Time) error {
	gone, err := c.db.Prune(ctx, before)
	if err != nil {
		return err
	}
	for _, sha := range gone {
		if err := os.Remove(c.firmwarePath(sha)); err != nil && !os.IsNotExist(err) {
			c.log.Error("retention: removing firmware", "sha256", sha, "err", err)
		}
	}
	if len(gone) > 0 {
		c.log.Info("retention pruned", "before", before, "firmware", len(gone))
	}
	return nil
}

// usedBytes is the store's live pages plus the firmware files.
func (c *Controller) usedBytes(ctx context.Context) (int64, error) {
	used, err := c.db.UsedBytes(ctx)
	if err != nil {
		return 0, err
	}
	entries, err := os.ReadDir(c.fwDir)
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		if info, err := os.Stat(filepath.Join(c.fwDir, e.Name())); err == nil && info.Mode().IsRegular() {
			used += info.Size()
		}
	}
	return used, nil
}
