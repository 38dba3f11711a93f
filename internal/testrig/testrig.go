// Package testrig holds helpers shared by hilfarm's tests: finding the host
// tools a test needs (QEMU, U-Boot, the ARM cross-compiler, Chromium) and
// skipping with a message naming the Debian package when one is missing —
// or failing, under CI=true, where a skip would hide a missing install step.
package testrig

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true), where missing tools are failures.
func InCI() bool { return os.Getenv("CI") == "true" }

// NeedTool returns the path of the program name, which Debian's package pkg
// provides. If it is missing the test skips (or fails in CI) naming pkg.
func NeedTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, name, pkg)
	}
	return p
}

// NeedFile returns path if it exists; otherwise the test skips (or fails in
// CI) naming the Debian package pkg that provides it.
func NeedFile(t testing.TB, path, pkg string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		missing(t, path, pkg)
	}
	return path
}

func missing(t testing.TB, what, pkg string) {
	t.Helper()
	msg := what + " not found: install the Debian package " + pkg + " (make deps)"
	if InCI() {
		t.Fatal(msg + "; CI=true, so a missing tool is a failure")
	}
	t.Skip(msg)
}

// MainWithBinary is a TestMain for tests of the real binary: it builds
// cmd/hilfarm into a temporary directory (env is added to the build's
// environment, e.g. CGO_ENABLED=0), stores its path in *binary, runs the
// tests and removes the directory. It does not return.
func MainWithBinary(m *testing.M, binary *string, env ...string) {
	dir, err := os.MkdirTemp("", "hilfarm-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	*binary = filepath.Join(dir, "hilfarm")
	build := exec.Command("go", "build", "-o", *binary, "github.com/hilfarm/hilfarm/cmd/hilfarm")
	build.Env = append(os.Environ(), env...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building hilfarm:", err)
		os.RemoveAll(dir)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// LockedBuffer is a bytes.Buffer a process writes while the test reads it.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
