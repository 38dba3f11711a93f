package main

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
)

func init() {
	register(command{name: "backup", summary: "take a consistent backup of a data dir, also while serve runs", run: runBackup})
	register(command{name: "restore", summary: "restore a data dir from a backup (serve stopped)", run: runRestore})
}

// A backup is a tar file: hilfarm.db, a consistent snapshot of the store
// (VACUUM INTO), and firmware/<sha256>, the stored firmware blobs. Blobs
// are written before the jobs that name them and never change, so blobs
// copied after the snapshot cover every job in it.
const backupDB = storeFile

var firmwareEntry = regexp.MustCompile(`^firmware/[0-9a-f]{64}$`)

// consoleEntry is a board's console segment (store/consolefiles.go).
var consoleEntry = regexp.MustCompile(`^console/[A-Za-z0-9][A-Za-z0-9_.-]{0,300}/[0-9]{20}\.log$`)

func dataDirOf(loc storeFlags) (string, error) {
	if *loc.data != "" {
		return *loc.data, nil
	}
	if *loc.farm == "" {
		return "", usageError("give --data DIR or --farm FILE")
	}
	f, err := loadFarm(*loc.farm, io.Discard)
	if err != nil {
		return "", err
	}
	return resolveDataDir(f, ""), nil
}

func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("backup", "hilfarm backup (--data DIR | --farm FILE) BACKUP.tar",
		"Write a consistent backup of a data dir into a new tar file: a snapshot of the\n"+
			"store (SQLite VACUUM INTO: every job acknowledged before the backup began, the\n"+
			"write-ahead log included) and the firmware blobs. It runs while hilfarm serve\n"+
			"runs; copying hilfarm.db by hand does not (recent writes are in hilfarm.db-wal).\n"+
			"Restore with hilfarm restore.", stderr)
	loc := addStoreFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("backup takes one BACKUP file")
	}
	dir, err := dataDirOf(loc)
	if err != nil {
		return err
	}
	dest := fs.Arg(0)
	if _, err := os.Stat(dest); err == nil {
		return usageError("%s exists; give a new file", dest)
	}
	start := time.Now()
	n, size, err := writeBackup(ctx, dir, dest)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup of %s written to %s: store and %d firmware blobs, %s, in %s\n",
		dir, dest, n, humanBytes(size), time.Since(start).Round(time.Millisecond))
	return nil
}

func writeBackup(ctx context.Context, dir, dest string) (blobs int, size int64, err error) {
	tmpDir, err := os.MkdirTemp(filepath.Dir(dest), ".hilfarm-backup-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(tmpDir)
	snap := filepath.Join(tmpDir, backupDB)
	if err := store.Backup(ctx, filepath.Join(dir, storeFile), snap); err != nil {
		return 0, 0, err
	}
	tmp := filepath.Join(tmpDir, "backup.tar")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	add := func(name, path string) error {
		src, err := os.Open(path)
		if err != nil {
			return err
		}
		defer src.Close()
		st, err := src.Stat()
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o640, Size: st.Size(), ModTime: st.ModTime(), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		// The size as of the header: a console segment serve is
		// appending to grows meanwhile (the snapshot names none of it).
		_, err = io.CopyN(tw, src, st.Size())
		return err
	}
	if err := add(backupDB, snap); err != nil {
		return 0, 0, fmt.Errorf("backup %s: %w", dest, err)
	}
	ents, err := os.ReadDir(filepath.Join(dir, "firmware"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, 0, err
	}
	for _, e := range ents {
		name := "firmware/" + e.Name()
		if !e.Type().IsRegular() || !firmwareEntry.MatchString(name) {
			continue // spool and upload temporaries
		}
		if err := add(name, filepath.Join(dir, name)); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // removed by retention meanwhile
			}
			return 0, 0, fmt.Errorf("backup %s: %w", dest, err)
		}
		blobs++
	}
	// Console segments (store/consolefiles.go) after the snapshot: they
	// hold at least the bytes its rows name.
	segs, err := filepath.Glob(filepath.Join(dir, "console", "*", "*.log"))
	if err != nil {
		return 0, 0, err
	}
	for _, p := range segs {
		name := filepath.ToSlash(strings.TrimPrefix(p, dir+string(filepath.Separator)))
		if !consoleEntry.MatchString(name) {
			continue
		}
		if err := add(name, p); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // removed by retention meanwhile
			}
			return 0, 0, fmt.Errorf("backup %s: %w", dest, err)
		}
	}
	if err := tw.Close(); err != nil {
		return 0, 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	if err := f.Close(); err != nil {
		return 0, 0, err
	}
	// A new name only: never replace a file that appeared meanwhile.
	if err := os.Link(tmp, dest); err != nil {
		return 0, 0, fmt.Errorf("backup %s: %w", dest, err)
	}
	return blobs, st.Size(), nil
}

func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("restore", "hilfarm restore (--data DIR | --farm FILE) [--force] BACKUP.tar",
		"Restore a data dir from a backup made by hilfarm backup. hilfarm serve must be\n"+
			"stopped. The backup's store is checked (SQLite integrity_check) before it is put\n"+
			"in place, and migrated if it is older than this hilfarm. A data dir that has a\n"+
			"store already needs --force; its old store is kept as hilfarm.db.before-restore-TIME.", stderr)
	loc := addStoreFlags(fs)
	force := fs.Bool("force", false, "replace the data dir's existing store (it is kept aside, not deleted)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("restore takes one BACKUP file")
	}
	dir, err := dataDirOf(loc)
	if err != nil {
		return err
	}
	unlock, err := lockDataDir(dir)
	if err != nil {
		return fmt.Errorf("%w (stop hilfarm serve before restoring)", err)
	}
	defer unlock()
	dbPath := filepath.Join(dir, storeFile)
	if _, err := os.Stat(dbPath); err == nil && !*force {
		return usageError("%s has a store already; pass --force to replace it (it is kept aside)", dir)
	}
	in, err := os.Open(fs.Arg(0))
	if err != nil {
		return usageError("%v", err)
	}
	defer in.Close()
	staged := dbPath + ".restoring"
	os.Remove(staged)
	defer os.Remove(staged)
	// The backup's console segments are staged too, and replace the data
	// dir's only with its store: the old store's segments go aside with it.
	os.RemoveAll(staged + ".console")
	defer os.RemoveAll(staged + ".console")
	if err := os.MkdirAll(filepath.Join(dir, "firmware"), 0o750); err != nil {
		return err
	}
	tr := tar.NewReader(in)
	haveDB, blobs := false, 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("backup %s: %w", fs.Arg(0), err)
		}
		var to string
		switch {
		case h.Typeflag != tar.TypeReg:
			return fmt.Errorf("backup %s: unexpected entry %q (not a hilfarm backup?)", fs.Arg(0), h.Name)
		case h.Name == backupDB:
			to, haveDB = staged, true
		case firmwareEntry.MatchString(h.Name):
			to = filepath.Join(dir, filepath.FromSlash(h.Name))
			blobs++
		case consoleEntry.MatchString(h.Name):
			to = filepath.Join(staged+".console", filepath.FromSlash(strings.TrimPrefix(h.Name, "console/")))
			if err := os.MkdirAll(filepath.Dir(to), 0o750); err != nil {
				return err
			}
		default:
			return fmt.Errorf("backup %s: unexpected entry %q (not a hilfarm backup?)", fs.Arg(0), h.Name)
		}
		if err := extractFile(tr, to); err != nil {
			return fmt.Errorf("backup %s: %s: %w", fs.Arg(0), h.Name, err)
		}
	}
	if !haveDB {
		return fmt.Errorf("backup %s: no %s in it (not a hilfarm backup?)", fs.Arg(0), backupDB)
	}
	if err := store.IntegrityCheck(ctx, staged); err != nil {
		return err
	}
	if _, err := os.Stat(dbPath); err == nil {
		aside := dbPath + ".before-restore-" + time.Now().UTC().Format("20060102T150405Z")
		for _, sfx := range []string{"", "-wal", "-shm"} {
			if err := os.Rename(dbPath+sfx, aside+sfx); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("keep the old store aside: %w", err)
			}
		}
		if err := os.Rename(filepath.Join(dir, "console"), aside+".console"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("keep the old store's console files aside: %w", err)
		}
		fmt.Fprintf(stderr, "the old store is kept as %s\n", aside)
	}
	if err := os.RemoveAll(filepath.Join(dir, "console")); err != nil {
		return err
	}
	if _, err := os.Stat(staged + ".console"); err == nil {
		if err := os.Rename(staged+".console", filepath.Join(dir, "console")); err != nil {
			return err
		}
	}
	if err := os.Rename(staged, dbPath); err != nil {
		return err
	}
	db, err := store.Open(ctx, dbPath) // migrates an older backup
	if err != nil {
		return err
	}
	defer db.Close()
	jobs, err := db.JobCount(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s from %s: %d jobs, %d firmware blobs; integrity check ok\n", dir, fs.Arg(0), jobs, blobs)
	return nil
}

// extractFile writes r to path through a temporary file and a rename.
func extractFile(r io.Reader, path string) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".restore-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
