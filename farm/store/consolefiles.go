package store

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// A board's console bytes are kept in append-only segment files beside the
// database, not in it:
//
//	<dir of the database>/console/<board>/<first offset, 20 digits>.log
//
// and board_log keeps, for each data record, its offset, time, length
// (column ext) and segment (column seg, the segment's first stream offset;
// the record's bytes are at offset-seg in it). A data record whose ext is 0
// carries its bytes inline in data (stores written before the files, and
// empty records).
//
// Why: SQLite wrote a console flood three times (WAL, checkpoint read,
// database) through the translated C's page and checksum code: a third of
// `serve`'s CPU in a 50 MiB flood (issue 12). A file takes each byte with
// one write(2).
//
// Consistency: the bytes are written before the rows that name them are
// committed, at their exact position (pwrite), so a retried batch
// overwrites itself and bytes past the last committed row are never read.
// A segment no committed row names (made just before a crash) is removed by
// Prune. Durability is the database's (synchronous=NORMAL: no fsync per
// commit): after a power loss a committed row may name bytes the kernel had
// not written; they read as missing, never as other bytes.

// segmentMax is the size at which a board's next record starts a new
// segment (Prune removes whole segments). A variable for tests.
var segmentMax int64 = 64 << 20

// consoleDir is the segment directory of the store at dbPath.
func consoleDir(dbPath string) string { return filepath.Join(filepath.Dir(dbPath), "console") }

var plainBoard = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// boardDir is a board's directory name: its name when that is a plain
// file name, else "x-" and its hex.
func boardDir(board string) string {
	if plainBoard.MatchString(board) && !strings.HasPrefix(board, "x-") {
		return board
	}
	return "x-" + hex.EncodeToString([]byte(board))
}

func segmentName(start int64) string { return fmt.Sprintf("%020d.log", start) }

// parseSegment is the first offset of a segment file name.
func parseSegment(name string) (int64, bool) {
	s, ok := strings.CutSuffix(name, ".log")
	if !ok || len(s) != 20 {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil && v >= 0
}

// logFiles is the store's writer of segment files: one open segment per
// board. Only one process writes a store (serve holds the data dir's
// lock); readers open segments as they need them.
type logFiles struct {
	dir    string
	mu     sync.Mutex
	boards map[string]*boardLog
}

type boardLog struct {
	mu sync.Mutex // held across a batch's write and commit, and by Prune
	// w is the open segment, starting at stream offset start; nil until
	// the first batch (which resumes the segment the last row names).
	w     *os.File
	start int64
}

func (l *logFiles) board(name string) *boardLog {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.boards == nil {
		l.boards = map[string]*boardLog{}
	}
	b := l.boards[name]
	if b == nil {
		b = &boardLog{}
		l.boards[name] = b
	}
	return b
}

func (l *logFiles) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for _, b := range l.boards {
		b.mu.Lock()
		if b.w != nil {
			errs = append(errs, b.w.Close())
			b.w = nil
		}
		b.mu.Unlock()
	}
	return errors.Join(errs...)
}

// openSegment opens (creating) board's segment starting at start for
// writing. It is never truncated: records are written at their exact
// position, and bytes a crash left past them are never named by a row.
func (l *logFiles) openSegment(board string, start int64) (*os.File, error) {
	dir := filepath.Join(l.dir, boardDir(board))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	return os.OpenFile(filepath.Join(dir, segmentName(start)), os.O_WRONLY|os.O_CREATE, 0o640)
}

// write puts a data record's bytes in the board's segments and returns the
// segment (its first offset). b.mu is held.
func (l *logFiles) write(b *boardLog, board string, off int64, data []byte, resume func() (int64, bool, error)) (int64, error) {
	if b.w == nil {
		// The first batch of this process goes on in the segment the
		// board's last stored record names, if it fits there.
		seg, ok, err := resume()
		if err != nil {
			return 0, err
		}
		if !ok || off < seg || off-seg >= segmentMax {
			seg = off
		}
		if b.w, err = l.openSegment(board, seg); err != nil {
			return 0, err
		}
		b.start = seg
	} else if off < b.start || off-b.start >= segmentMax {
		w, err := l.openSegment(board, off)
		if err != nil {
			return 0, err
		}
		b.w.Close()
		b.w, b.start = w, off
	}
	if _, err := b.w.WriteAt(data, off-b.start); err != nil {
		return 0, err
	}
	return b.start, nil
}

// readSegments reads byte ranges of a board's segments, keeping each
// segment it opened until close.
type readSegments struct {
	dir   string
	files map[int64]*os.File
}

func (l *logFiles) reader(board string) *readSegments {
	return &readSegments{dir: filepath.Join(l.dir, boardDir(board))}
}

// read returns n bytes at stream offset off of segment seg; a segment or
// bytes that are gone (pruned, or lost to a power failure) give fewer.
func (r *readSegments) read(seg, off, n int64) ([]byte, error) {
	f := r.files[seg]
	if f == nil {
		var err error
		f, err = os.Open(filepath.Join(r.dir, segmentName(seg)))
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if r.files == nil {
			r.files = map[int64]*os.File{}
		}
		r.files[seg] = f
	}
	buf := make([]byte, n)
	got, err := f.ReadAt(buf, off-seg)
	if got < len(buf) && err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:got], nil
}

func (r *readSegments) close() {
	for _, f := range r.files {
		f.Close()
	}
}

// segments lists a board directory's segments (ascending) and their sizes.
func segments(dir string) (starts []int64, sizes []int64, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range ents { // ReadDir sorts by name: by start
		s, ok := parseSegment(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		starts, sizes = append(starts, s), append(sizes, info.Size())
	}
	return starts, sizes, nil
}

// pruneSegments removes the segment files no board_log row names, but
// never a board's open segment. A board's lock is held while its rows are
// read and its files removed, so no batch is between its write and its
// commit.
func (db *DB) pruneSegments(ctx context.Context) error {
	ents, err := os.ReadDir(db.files.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		board, ok := boardOfDir(e.Name())
		if !ok || !e.IsDir() {
			continue
		}
		if err := db.pruneBoardSegments(ctx, board, filepath.Join(db.files.dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func (db *DB) pruneBoardSegments(ctx context.Context, board, dir string) error {
	b := db.files.board(board)
	b.mu.Lock()
	defer b.mu.Unlock()
	starts, _, err := segments(dir)
	if err != nil || len(starts) == 0 {
		return err
	}
	rows, err := db.w.QueryContext(ctx, "SELECT DISTINCT seg FROM board_log WHERE board = ? AND ext > 0", board)
	if err != nil {
		return err
	}
	named := map[int64]bool{}
	for rows.Next() {
		var s int64
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return err
		}
		named[s] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, s := range starts {
		if named[s] || (b.w != nil && s == b.start) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, segmentName(s))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// boardOfDir is the board a segment directory is of.
func boardOfDir(name string) (string, bool) {
	if h, ok := strings.CutPrefix(name, "x-"); ok {
		b, err := hex.DecodeString(h)
		return string(b), err == nil && len(b) > 0
	}
	return name, plainBoard.MatchString(name)
}
