package main

import (
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
)

// startEnvProfile writes a CPU profile of the whole process to the file
// named by HILFARM_CPUPROFILE, when set, until the returned stop is called
// (main calls it before exiting). It is how the console benchmarks profile
// the real binary doing their work (`hilfarm run`, `hilfarm serve`); a
// long-running serve is better profiled with serve --pprof. Errors are
// printed and profiling is skipped: the command still runs. A "%p" in the
// name becomes the process id, so a benchmark that starts several commands
// (serve, submit) gets one profile each.
func startEnvProfile() (stop func()) {
	path := os.Getenv("HILFARM_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	path = strings.ReplaceAll(path, "%p", strconv.Itoa(os.Getpid()))
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hilfarm: HILFARM_CPUPROFILE: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "hilfarm: HILFARM_CPUPROFILE: %v\n", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "hilfarm: HILFARM_CPUPROFILE: %v\n", err)
		}
	}
}
