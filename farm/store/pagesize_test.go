package store

import (
	"context"
	"path/filepath"
	"testing"
)

// A new store uses 64 KiB pages: a console flood is written (and
// checkpointed) in a sixteenth of the frames 4 KiB pages take.
func TestNewStorePageSize(t *testing.T) {
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var size int
	if err := db.r.QueryRow("PRAGMA page_size").Scan(&size); err != nil {
		t.Fatal(err)
	}
	if size != 65536 {
		t.Fatalf("page_size = %d, want 65536", size)
	}
}
