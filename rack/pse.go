//go:build !race

package rack

import (
	_ "unsafe" // go:linkname

	_ "github.com/nats-io/nats-server/v2/server/pse" // its init starts the sampler stopped below
)

// nats-server's pse package starts, from its init, a sampler that reads
// /proc/self/stat every second (time.AfterFunc, rescheduled after each
// successful read) to keep the CPU figure of its monitoring endpoint
// current. hilfarm serves no NATS monitoring endpoint, and the sampler
// would wake every process of the binary once a second: `serve` with no
// racks, `run`, and each sim board's child. Pointing it at a file that
// does not exist stops it at its next tick (its read fails and it does not
// reschedule). pse.ProcUsage, used only by that endpoint, then reports an
// error.
//
// The write below is not ordered before the sampler's read by anything the
// race detector can see (the sampler's timer was set in pse's init, before
// this one; it reads a second later), so race builds (the tests) keep the
// sampler: this file is built without -race only, like the binaries that
// are measured.
//
//go:linkname natsProcStatFile github.com/nats-io/nats-server/v2/server/pse.procStatFile
var natsProcStatFile string

func init() {
	natsProcStatFile = "/nonexistent/hilfarm-disables-nats-pse-sampling"
}
