package store

import (
	"errors"
	"syscall"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// IsFull reports whether err says the disk is full: SQLITE_FULL (any
// extended code), an I/O error SQLite met because of it, or ENOSPC from a
// file write (the firmware store, a spool file).
func IsFull(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_FULL:
		return true
	case sqlite3.SQLITE_IOERR:
		// SQLITE_IOERR_WRITE / _FSYNC / _SHMSIZE are what a full disk
		// gives when the WAL or its index cannot grow.
		switch se.Code() {
		case sqlite3.SQLITE_IOERR_WRITE, sqlite3.SQLITE_IOERR_FSYNC, sqlite3.SQLITE_IOERR_SHMSIZE:
			return true
		}
	}
	return false
}
