package farm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
)

// A full data disk is an answered condition (docs/api.md, "Disk full"):
//
//   - The controller keeps a reserve file (reserveBytes) in the data dir.
//     The first write that fails because the disk is full puts the
//     controller in disk-full mode and deletes the reserve, so that the
//     writes that must not be lost (a job's final state, a cancel) have
//     room.
//   - In disk-full mode submissions are answered 507 without being read,
//     and the scheduler starts no job (no spinning on a failing write).
//   - A final state that still cannot be written is retried with backoff
//     until it is (the job's board stays leased meanwhile), so no job stays
//     running in the store and none runs twice.
//   - A probe with backoff (1 s doubling to 5 s) recreates the reserve;
//     when it can, and the disk has room beyond it, the mode ends and the
//     scheduler is woken.
//   - Log records about disk-full errors are rate-limited (diskLogHandler).

// ErrDiskFull: the data disk is full (507).
var ErrDiskFull = errors.New("the data disk is full")

const (
	reserveFile  = ".hilfarm-reserve"
	reserveBytes = 1 << 20
	probeMin     = time.Second
	probeMax     = 5 * time.Second
)

// diskGuard tracks disk-full mode for one data dir.
type diskGuard struct {
	dir  string
	log  *slog.Logger
	poke func() // wakes the scheduler when space returns

	mu      sync.Mutex
	full    bool
	since   time.Time
	backoff time.Duration
	probe   *time.Timer
	closed  bool
	space   chan struct{} // closed when disk-full mode ends
}

func newDiskGuard(dir string, log *slog.Logger, poke func()) *diskGuard {
	g := &diskGuard{dir: dir, log: log, poke: poke, space: make(chan struct{})}
	close(g.space)
	if err := g.makeReserve(); err != nil {
		if store.IsFull(err) {
			g.enter(err)
		} else {
			log.Warn("data dir: no disk-full reserve", "dir", dir, "err", err)
		}
	}
	return g
}

// Full reports whether the controller is in disk-full mode.
func (g *diskGuard) Full() bool {
	if g == nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.full
}

// check enters disk-full mode when err says the disk is full, and reports
// whether it did.
func (g *diskGuard) check(err error) bool {
	if g == nil || !store.IsFull(err) {
		return false
	}
	g.enter(err)
	return true
}

func (g *diskGuard) enter(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.full || g.closed {
		return
	}
	g.full, g.since, g.backoff = true, time.Now(), probeMin
	g.space = make(chan struct{})
	g.log.Error("data disk full: submissions are answered 507 and no job starts until there is space again",
		"dir", g.dir, "err", err)
	g.probe = time.AfterFunc(g.backoff, g.tryRecover)
}

// tryRecover is the probe: it recreates the reserve; when that works and
// the disk has room beyond it, disk-full mode ends.
func (g *diskGuard) tryRecover() {
	err := g.makeReserve()
	if err == nil {
		if free, ferr := freeBytes(g.dir); ferr == nil && free < reserveBytes {
			err = fmt.Errorf("only %d bytes free besides the reserve: %w", free, syscall.ENOSPC)
		}
	}
	g.mu.Lock()
	if g.closed || !g.full {
		g.mu.Unlock()
		return
	}
	if err != nil {
		g.backoff = min(2*g.backoff, probeMax)
		if g.backoff == probeMax || g.backoff == 8*probeMin {
			g.log.Warn("data disk still full", "dir", g.dir, "for", time.Since(g.since).Round(time.Second), "next_check", g.backoff, "err", err)
		}
		g.probe = time.AfterFunc(g.backoff, g.tryRecover)
		g.mu.Unlock()
		return
	}
	g.full = false
	close(g.space)
	g.log.Info("data disk has space again: submissions and scheduling resume", "dir", g.dir, "full_for", time.Since(g.since).Round(time.Millisecond))
	g.mu.Unlock()
	g.poke()
}

// spaceBack returns a channel closed when disk-full mode ends.
func (g *diskGuard) spaceBack() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.space
}

// close stops the probe.
func (g *diskGuard) close() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	if g.probe != nil {
		g.probe.Stop()
	}
}

// freeReserve deletes the reserve file, and reports whether there was one.
func (g *diskGuard) freeReserve() bool {
	err := os.Remove(filepath.Join(g.dir, reserveFile))
	if err == nil {
		g.log.Warn("data disk full: reserve released for final job states", "dir", g.dir, "bytes", reserveBytes)
	}
	return err == nil
}

// makeReserve makes sure the reserve file exists at its full size.
func (g *diskGuard) makeReserve() error {
	path := filepath.Join(g.dir, reserveFile)
	if fi, err := os.Stat(path); err == nil && fi.Size() == reserveBytes {
		return nil
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for n := 0; n < reserveBytes && err == nil; n += len(buf) {
		_, err = f.Write(buf)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("disk-full reserve %s: %w", path, err)
	}
	return nil
}

func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// mustWrite runs a write that must not be lost (a job's final state): on a
// full disk it enters disk-full mode, releases the reserve and tries again,
// then retries with backoff until the write succeeds. It gives up only
// when the write fails for another reason, or 10 s after the job was
// stopped by a controller shutdown (the job then ends as interrupted at
// the next start, as after a crash).
func (c *Controller) mustWrite(jobCtx context.Context, what string, write func(context.Context) error) error {
	ctx := context.WithoutCancel(jobCtx)
	wait := 100 * time.Millisecond
	var shutdownAt time.Time
	for {
		err := write(ctx)
		if err == nil || !c.disk.check(err) {
			return err
		}
		if c.disk.freeReserve() {
			continue
		}
		if errors.Is(context.Cause(jobCtx), errShutdown) {
			if shutdownAt.IsZero() {
				shutdownAt = time.Now()
			} else if time.Since(shutdownAt) > 10*time.Second {
				return fmt.Errorf("%s: given up at shutdown: %w", what, err)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-c.disk.spaceBack():
			t.Stop()
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// diskSink is the recorders' log sink: in disk-full mode console records
// are not written (they are counted as dropped by the recorder), so the
// reserve goes to final states.
type diskSink struct{ c *Controller }

func (d diskSink) AppendLog(ctx context.Context, board string, recs []store.LogRecord) error {
	if d.c.disk.Full() {
		return fmt.Errorf("console log of %s: %w", board, ErrDiskFull)
	}
	err := d.c.db.AppendLog(ctx, board, recs)
	d.c.disk.check(err)
	return err
}

// cleanSpool removes the upload and spool files a crashed controller left
// in the firmware store.
func cleanSpool(fwDir string, log *slog.Logger) {
	ents, err := os.ReadDir(fwDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, ".spool-") || strings.HasPrefix(n, ".upload-") {
			if err := os.Remove(filepath.Join(fwDir, n)); err == nil {
				log.Info("removed a leftover upload file", "file", n)
			}
		}
	}
}

// diskLogHandler rate-limits log records about a full disk: a record at
// warn or above whose "err" is a disk-full error is written at most once
// per diskLogEvery per message, with the number suppressed since.
type diskLogHandler struct {
	slog.Handler
	st *diskLogState
}

type diskLogState struct {
	mu   sync.Mutex
	last map[string]time.Time
	supp map[string]int
}

const diskLogEvery = 10 * time.Second

func newDiskLogHandler(h slog.Handler) *diskLogHandler {
	return &diskLogHandler{Handler: h, st: &diskLogState{last: map[string]time.Time{}, supp: map[string]int{}}}
}

func (h *diskLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return h.Handler.Handle(ctx, r)
	}
	full := false
	r.Attrs(func(a slog.Attr) bool {
		if e, ok := a.Value.Any().(error); ok && (store.IsFull(e) || errors.Is(e, ErrDiskFull)) {
			full = true
			return false
		}
		return true
	})
	if !full {
		return h.Handler.Handle(ctx, r)
	}
	h.st.mu.Lock()
	now := time.Now()
	if last, ok := h.st.last[r.Message]; ok && now.Sub(last) < diskLogEvery {
		h.st.supp[r.Message]++
		h.st.mu.Unlock()
		return nil
	}
	n := h.st.supp[r.Message]
	h.st.last[r.Message], h.st.supp[r.Message] = now, 0
	h.st.mu.Unlock()
	if n > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("suppressed", n))
	}
	return h.Handler.Handle(ctx, r)
}

func (h *diskLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &diskLogHandler{Handler: h.Handler.WithAttrs(as), st: h.st}
}

func (h *diskLogHandler) WithGroup(name string) slog.Handler {
	return &diskLogHandler{Handler: h.Handler.WithGroup(name), st: h.st}
}
