package filewatch

import (
	"os"
	"path/filepath"
	"testing"
)

// A write to a watched file wakes Wait; writes to other files of the
// directory are not reported; Close ends a pending Wait.
func TestWatcherReportsWatchedFilesOnly(t *testing.T) {
	dir := t.TempDir()
	w, err := New(dir, "hilfarm.db")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "firmware.bin"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if w.Drain() {
		t.Error("a write to another file was reported")
	}
	if err := os.WriteFile(filepath.Join(dir, "hilfarm.db-wal"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !w.Wait() {
		t.Fatal("Wait = false after a write to hilfarm.db-wal")
	}
	w.Drain()
	done := make(chan bool)
	go func() { done <- w.Wait() }()
	w.Close()
	if <-done {
		t.Error("Wait = true after Close")
	}
}
