package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hilfarm/hilfarm/farm"
	"github.com/hilfarm/hilfarm/farm/store"
	"go.uber.org/goleak"
)

// TestBackupUnderLoad: a backup taken while serve takes 200 submissions
// restores to a store that passes its integrity check and holds every job
// acknowledged before the backup began.
func TestBackupUnderLoad(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	s := startCLIServer(t)
	op := s.tokens[farm.RoleOperator]
	ctx := context.Background()
	// Boards in maintenance: the jobs stay queued, the load is the store's.
	for _, b := range []string{"sim-a", "sim-b"} {
		if code, _, errs := runCLI("board", b, "maintenance", "on", "--reason", "backup test", "--server", s.url, "--token", op); code != 0 {
			t.Fatalf("maintenance: %s", errs)
		}
	}
	c, err := newClient(s.url, op)
	if err != nil {
		t.Fatal(err)
	}
	const total, workers = 200, 4
	var (
		mu    sync.Mutex
		acked []string
		half  = make(chan struct{})
		once  sync.Once
		wg    sync.WaitGroup
		errs  = make(chan error, workers)
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < total; i += workers {
				j, err := c.submit(ctx, examples+"/firmware/sim-good.hcl", examples+"/specs/boot-smoke.hcl", submitOptions{FirmwareVersion: "1.1.0"}, "")
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				acked = append(acked, j.ID)
				if len(acked) == total/2 {
					once.Do(func() { close(half) })
				}
				mu.Unlock()
			}
		}()
	}
	<-half
	mu.Lock()
	before := append([]string(nil), acked...)
	mu.Unlock()
	backup := filepath.Join(t.TempDir(), "farm.tar")
	code, out, stderr := runCLI("backup", "--data", s.dataDir, backup)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("submit: %v", err)
	}
	if code != 0 {
		t.Fatalf("backup: exit %d: %s", code, stderr)
	}
	t.Logf("%s", strings.TrimSpace(out))

	// Restore into a fresh data dir.
	dir := filepath.Join(t.TempDir(), "restored")
	code, out, stderr = runCLI("restore", "--data", dir, backup)
	if code != 0 {
		t.Fatalf("restore: exit %d: %s", code, stderr)
	}
	t.Logf("%s", strings.TrimSpace(out))
	if err := store.IntegrityCheck(ctx, filepath.Join(dir, storeFile)); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, filepath.Join(dir, storeFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, id := range before {
		j, err := db.Job(ctx, id)
		if err != nil {
			t.Fatalf("job %s acknowledged before the backup began: %v", id, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "firmware", j.Firmware.SHA256)); err != nil {
			t.Errorf("job %s: its firmware blob is not restored: %v", id, err)
		}
	}
	if n, err := db.JobCount(ctx); err != nil || n < len(before) || n > total {
		t.Errorf("restored %d jobs (%v); want between %d and %d", n, err, len(before), total)
	}

	// Restoring over a store needs --force; a running serve refuses.
	if code, _, stderr = runCLI("restore", "--data", dir, backup); code != exitInfra || !strings.Contains(stderr, "--force") {
		t.Errorf("restore over a store: exit %d, %q", code, stderr)
	}
	if code, _, stderr = runCLI("restore", "--data", s.dataDir, "--force", backup); code != exitInfra || !strings.Contains(stderr, "in use") {
		t.Errorf("restore under a running serve: exit %d, %q", code, stderr)
	}
	if code, _, stderr = runCLI("backup", "--data", s.dataDir, backup); code != exitInfra || !strings.Contains(stderr, "exists") {
		t.Errorf("backup over an existing file: exit %d, %q", code, stderr)
	}
}

// The boards' console bytes (segment files beside the store) are in the
// backup and come back with it; restoring over a store keeps the old
// store's console files aside with it, and the restored store reads its
// own bytes, not the ones that were there.
func TestBackupRestoresConsole(t *testing.T) {
	ctx := context.Background()
	write := func(dir, text string) {
		t.Helper()
		db, err := store.Open(ctx, filepath.Join(dir, storeFile))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.AppendLog(ctx, "sim-a", []store.LogRecord{{Offset: 0, At: time.Now(), Kind: "data", Data: []byte(text)}}); err != nil {
			t.Fatal(err)
		}
	}
	read := func(dir string) string {
		t.Helper()
		db, err := store.Open(ctx, filepath.Join(dir, storeFile))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		recs, err := db.Log(ctx, "sim-a", 0, -1, 0)
		if err != nil {
			t.Fatal(err)
		}
		var s string
		for _, r := range recs {
			s += string(r.Data)
		}
		return s
	}
	src := t.TempDir()
	write(src, "U-Boot 2024.01 (the original)\n")
	backup := filepath.Join(t.TempDir(), "farm.tar")
	if code, _, stderr := runCLI("backup", "--data", src, backup); code != 0 {
		t.Fatalf("backup: exit %d: %s", code, stderr)
	}
	fresh := filepath.Join(t.TempDir(), "fresh")
	if code, _, stderr := runCLI("restore", "--data", fresh, backup); code != 0 {
		t.Fatalf("restore: exit %d: %s", code, stderr)
	}
	if got := read(fresh); got != "U-Boot 2024.01 (the original)\n" {
		t.Fatalf("restored console %q", got)
	}
	other := t.TempDir()
	write(other, "another farm's console, longer than the original one\n")
	code, _, stderr := runCLI("restore", "--data", other, "--force", backup)
	if code != 0 {
		t.Fatalf("restore --force: exit %d: %s", code, stderr)
	}
	if got := read(other); got != "U-Boot 2024.01 (the original)\n" {
		t.Fatalf("console after restore --force: %q", got)
	}
	aside, _ := filepath.Glob(filepath.Join(other, storeFile+".before-restore-*.console"))
	if len(aside) != 1 {
		t.Fatalf("the old store's console files were not kept aside (%v); stderr %q", aside, stderr)
	}
}
