package store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// logBytes is the data of a board's log in [from, to), with a check that
// the records are contiguous.
func logBytes(t *testing.T, db *DB, board string, from, to int64) []byte {
	t.Helper()
	recs, err := db.Log(context.Background(), board, from, to, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	next := from
	for _, r := range recs {
		if r.Kind != "data" {
			continue
		}
		if r.Offset != next {
			t.Fatalf("record at %d, want %d", r.Offset, next)
		}
		out = append(out, r.Data...)
		next += int64(len(r.Data))
	}
	return out
}

func segmentFiles(t *testing.T, db *DB, board string) []int64 {
	t.Helper()
	starts, _, err := segments(filepath.Join(consoleDir(db.Path()), boardDir(board)))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return starts
}

// The console bytes are in the segment files, not in the database; ranges
// read back exactly, across records, segments and a reopened store that
// goes on where the last one stopped.
func TestConsoleInSegmentFiles(t *testing.T) {
	defer func(v int64) { segmentMax = v }(segmentMax)
	segmentMax = 1000
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hilfarm.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var stream []byte
	add := func(db *DB, n int) {
		t.Helper()
		var recs []LogRecord
		for range n {
			d := bytes.Repeat([]byte{byte('a' + len(stream)%26)}, 100+len(stream)%37)
			recs = append(recs, LogRecord{Offset: int64(len(stream)), At: t0, Kind: "data", Data: d})
			stream = append(stream, d...)
		}
		recs = append(recs, LogRecord{Offset: int64(len(stream)), At: t0, Kind: "power-off"})
		if err := db.AppendLog(ctx, "sim/01", recs); err != nil {
			t.Fatal(err)
		}
	}
	add(db, 30) // ~3.6 KB: four segments of ~1000 bytes
	var inline int64
	if err := db.r.QueryRow("SELECT coalesce(sum(length(data)), 0) FROM board_log WHERE kind = 'data'").Scan(&inline); err != nil {
		t.Fatal(err)
	}
	if inline != 0 {
		t.Fatalf("%d console bytes inline in the database", inline)
	}
	if n := len(segmentFiles(t, db, "sim/01")); n < 3 {
		t.Fatalf("%d segments for %d bytes with segmentMax %d", n, len(stream), segmentMax)
	}
	if !plainBoard.MatchString(boardDir("sim/01")) {
		t.Fatalf("board dir %q", boardDir("sim/01"))
	}
	for _, r := range [][2]int64{{0, -1}, {0, 1}, {17, 950}, {950, 1050}, {999, 2001}, {int64(len(stream)) - 5, -1}} {
		to := r[1]
		want := stream[r[0]:]
		if to >= 0 {
			want = stream[r[0]:to]
		}
		if got := logBytes(t, db, "sim/01", r[0], to); !bytes.Equal(got, want) {
			t.Fatalf("range %v: %d bytes, want %d", r, len(got), len(want))
		}
	}
	if end, err := db.LogEnd(ctx, "sim/01"); err != nil || end != int64(len(stream)) {
		t.Fatalf("LogEnd %d %v, want %d", end, err, len(stream))
	}
	segs := segmentFiles(t, db, "sim/01")
	db.Close()

	// A crash left bytes past the last row and a segment no row names.
	dir := filepath.Join(consoleDir(path), boardDir("sim/01"))
	last := segs[len(segs)-1]
	f, err := os.OpenFile(filepath.Join(dir, segmentName(last)), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("GARBAGE"))
	f.Close()
	orphan := int64(len(stream)) + 5000
	if err := os.WriteFile(filepath.Join(dir, segmentName(orphan)), []byte("orphan"), 0o640); err != nil {
		t.Fatal(err)
	}
	db, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	add(db, 3) // goes on in the last segment, over the garbage
	if got := segmentFiles(t, db, "sim/01"); got[len(got)-2] != last {
		t.Fatalf("segments %v after a restart: the last one (%d) was not resumed", got, last)
	}
	if got := logBytes(t, db, "sim/01", 0, -1); !bytes.Equal(got, stream) {
		t.Fatalf("after a restart: %d bytes, want %d", len(got), len(stream))
	}
	// Prune: the orphan goes, the named segments stay.
	if _, err := db.Prune(ctx, t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := segmentFiles(t, db, "sim/01"); got[len(got)-1] == orphan {
		t.Fatalf("segments %v: the orphan %d was not pruned", got, orphan)
	}
	if got := logBytes(t, db, "sim/01", 0, -1); !bytes.Equal(got, stream) {
		t.Fatalf("after pruning nothing: %d bytes, want %d", len(got), len(stream))
	}
	used, err := db.UsedBytes(ctx)
	if err != nil || used < int64(len(stream)) {
		t.Fatalf("UsedBytes %d %v: the segments (%d bytes) are not counted", used, err, len(stream))
	}
	// Prune of everything: every segment goes but the open one.
	if _, err := db.Prune(ctx, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := segmentFiles(t, db, "sim/01"); len(got) != 1 {
		t.Fatalf("segments %v after pruning every record, want the open one", got)
	}
	if got := logBytes(t, db, "sim/01", 0, -1); len(got) != 0 {
		t.Fatalf("%d bytes after pruning every record", len(got))
	}
}

// A store written before the segment files has its console bytes inline;
// they read back beside new records.
func TestConsoleInlineRecordsStillRead(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	if _, err := db.w.Exec(`INSERT INTO board_log(board, offset, at_ms, kind, data) VALUES ('b', 0, 1, 'data', CAST('hello ' AS BLOB))`); err != nil {
		t.Fatal(err)
	}
	if err := db.AppendLog(ctx, "b", []LogRecord{{Offset: 6, At: t0, Kind: "data", Data: []byte("world")}}); err != nil {
		t.Fatal(err)
	}
	if got := logBytes(t, db, "b", 0, -1); string(got) != "hello world" {
		t.Fatalf("got %q", got)
	}
	if got := logBytes(t, db, "b", 3, 8); string(got) != "lo wo" {
		t.Fatalf("got %q", got)
	}
	if end, _ := db.LogEnd(ctx, "b"); end != 11 {
		t.Fatalf("LogEnd %d", end)
	}
}
