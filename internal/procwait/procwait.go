// Package procwait waits for a child process to exit without holding an
// OS thread: os.Process.Wait (and exec.Cmd.Wait) block a thread in
// waitid(2) for as long as the child lives, so a farm of 48 sim boards or
// QEMUs held 48 threads doing nothing. Exited parks the goroutine in Go's
// runtime poller on a pidfd instead (readable once the process has
// exited); the caller then calls Wait, which returns at once.
package procwait

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Exited returns once the process pid (a child of this process, not yet
// waited for) has exited. It returns an error, at once, when the kernel
// has no pollable pidfds (Linux before 5.3): the caller's Wait then
// blocks a thread as before.
func Exited(pid int) error {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return fmt.Errorf("pidfd of process %d: %w", pid, err)
	}
	f := os.NewFile(uintptr(fd), fmt.Sprintf("pidfd %d", pid)) // non-blocking: the poller owns it
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("pidfd of process %d: %w", pid, err)
	}
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		if err == unix.EINTR {
			return false
		}
		if err != nil {
			perr = err
			return true
		}
		return n > 0 // not yet: the poller waits for the pidfd to be readable
	})
	if err == nil {
		err = perr
	}
	if err != nil {
		return fmt.Errorf("waiting for process %d: %w", pid, err)
	}
	return nil
}
