// Package filewatch tells when files of a directory whose names start with
// a prefix are written, created or renamed into place, with inotify read
// through Go's runtime poller: a watcher with nothing to report holds no
// thread and wakes nothing (no polling).
package filewatch

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Watcher reports changes to the files dir/prefix* (a SQLite store, its
// -wal and -shm files).
type Watcher struct {
	f      *os.File
	prefix []byte
	buf    []byte
}

// New watches dir for writes, creations and renames of files whose name
// starts with prefix.
func New(dir, prefix string) (*Watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_MODIFY|unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("inotify watch %s: %w", dir, err)
	}
	// A non-blocking descriptor: os.NewFile registers it with the poller.
	return &Watcher{f: os.NewFile(uintptr(fd), "inotify:"+filepath.Join(dir, prefix+"*")), prefix: []byte(prefix), buf: make([]byte, 64<<10)}, nil
}

// Wait blocks until one of the watched files changes (true), or the
// watcher is closed (false). Events that queued meanwhile are consumed.
func (w *Watcher) Wait() bool {
	for {
		n, err := w.f.Read(w.buf)
		if err != nil {
			return false
		}
		if w.matches(w.buf[:n]) {
			return true
		}
	}
}

// Drain consumes queued events without waiting and says whether one of
// them was about a watched file.
func (w *Watcher) Drain() bool {
	rc, err := w.f.SyscallConn()
	if err != nil {
		return false
	}
	hit := false
	for {
		var n int
		var rerr error
		if err := rc.Read(func(fd uintptr) bool {
			n, rerr = unix.Read(int(fd), w.buf)
			return true // never wait
		}); err != nil {
			return hit
		}
		if rerr != nil || n <= 0 { // EAGAIN: nothing queued
			return hit
		}
		hit = w.matches(w.buf[:n]) || hit
	}
}

func (w *Watcher) matches(b []byte) bool {
	hit := false
	for len(b) >= unix.SizeofInotifyEvent {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
		end := unix.SizeofInotifyEvent + int(ev.Len)
		if end > len(b) {
			break
		}
		name := bytes.TrimRight(b[unix.SizeofInotifyEvent:end], "\x00")
		if ev.Mask&unix.IN_Q_OVERFLOW != 0 || bytes.HasPrefix(name, w.prefix) {
			hit = true
		}
		b = b[end:]
	}
	return hit
}

// Close stops the watcher; a pending Wait returns false.
func (w *Watcher) Close() error { return w.f.Close() }
