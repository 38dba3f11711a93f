package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// startEnvProfile writes a CPU profile of the whole process to the file
// named by HILFARM_CPUPROFILE, when set, until the returned stop is called
// (main calls it before exiting). It is how the console benchmarks profile
// the real binary doing their work (`hilfarm run`, `hilfarm serve`); a
// long-running serve is better profiled with serve --pprof. Errors are
// printed and profiling is skipped: the command still runs.
func startEnvProfile() (stop func()) {
	path := os.Getenv("HILFARM_CPUPROFILE")
	if path == "" {
		return func() {}
	}
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
