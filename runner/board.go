package runner

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/hilfarm/hilfarm/specs"
)

// This file defines what the runner needs from a board. package fixtures
// implements these interfaces (real hardware and emulators alike), and
// fixtures/fake has hand-written fakes for unit tests. The runner never
// knows which it has.

// Power switches a board's supply. Implementations serialise calls per board.
type Power interface {
	On(ctx context.Context) error
	Off(ctx context.Context) error
	// Cycle turns power off, keeps it off for offFor (0: the board's
	// configured off time) and turns it on again.
	Cycle(ctx context.Context, offFor time.Duration) error
}

// Resetter resets a board without a power cycle (QMP system_reset, a reset line).
type Resetter interface {
	Reset(ctx context.Context) error
}

// ConsoleEventKind says what a ConsoleEvent carries.
type ConsoleEventKind int

// The console event kinds.
const (
	// ConsoleData carries bytes the board printed.
	ConsoleData ConsoleEventKind = iota
	// ConsoleLost says the port vanished (USB unplug, emulator died); Err says why.
	// Bytes the board printed until the port comes back are lost: an infrastructure error.
	ConsoleLost
	// ConsoleBack says the port was reopened after ConsoleLost.
	ConsoleBack
	// ConsoleBoundary says the board is about to be powered on: everything
	// before it was printed before, and no expect may match it (fail_on
	// still sees it).
	ConsoleBoundary
)

// ConsoleEvent is one item of a console stream.
type ConsoleEvent struct {
	Kind ConsoleEventKind
	Data []byte    // ConsoleData: owned by the receiver
	At   time.Time // when the bytes were read
	Err  error     // ConsoleLost: the cause
	// Offset is, for ConsoleData of a recorded console (package farm's
	// recorder), where Data starts in the board's stored log; 0 otherwise.
	Offset int64
}

// Console is a board's console as a job sees it: a lossless stream of
// everything the board prints from the moment the stream was opened, and a
// way to type.
type Console interface {
	// Events is the stream. It has one reader (the runner) while a job runs;
	// it is closed when the console is closed.
	Events() <-chan ConsoleEvent
	// Write sends bytes to the board. An error means the port is unusable
	// (an infrastructure error).
	Write(ctx context.Context, p []byte) error
}

// ErrNoEvent is returned by ConsoleReader.ReadEvent when its deadline
// passed or it was woken before anything happened.
var ErrNoEvent = errors.New("no console event")

// ConsoleReader is a Console the runner reads in its own goroutine, with
// no hand-off per chunk: it waits for a step's end and for the console in
// one blocking read. The runner uses it instead of Events when the board's
// console has it.
type ConsoleReader interface {
	Console
	// ReadEvent returns the next event; ConsoleData's Data is buf[:n],
	// valid until the next call. It waits until deadline (zero: none; not
	// after now: only takes what is ready) or a Wake, then returns
	// ErrNoEvent; io.EOF once the console is closed.
	ReadEvent(buf []byte, deadline time.Time) (ConsoleEvent, error)
	// Wake makes a pending ReadEvent, or else the next one, return
	// ErrNoEvent. Safe from any goroutine.
	Wake()
}

// StableReader is implemented by a ConsoleReader whose ConsoleData is
// never overwritten after it is returned (package farm's job console hands
// out its recorder's records): the runner then passes it to its event sink
// without a copy. Data must still not be modified by anyone.
type StableReader interface {
	ConsoleReader
	StableData() bool
}

// Flasher writes a firmware candidate to a board. Output of the flash tool
// goes to log. A returned error is an infrastructure error.
type Flasher interface {
	Flash(ctx context.Context, fw specs.Firmware, log io.Writer) error
}

// Line is a named GPIO line to the device under test.
type Line interface {
	// Set drives an output line to v (0 or 1, logical: active_low is applied).
	Set(ctx context.Context, v int) error
	// Value reads the line's logical value.
	Value(ctx context.Context) (int, error)
	// WaitFor blocks until the line reads v or ctx is done. It returns
	// at once if the line already reads v.
	WaitFor(ctx context.Context, v int) error
}

// ToolRunner runs a farm-defined host tool. args are the spec's named
// arguments, already evaluated. The tool's output is written to log; its
// trimmed stdout is returned. A tool that cannot be started or times out is
// an infrastructure error; a non-zero exit is returned as an error wrapping
// *exec.ExitError, which the runner reports as a test failure (the tool
// judged the device).
type ToolRunner interface {
	RunTool(ctx context.Context, name string, args map[string]string, fw specs.Firmware, log io.Writer) (stdout string, err error)
}

// Board is everything the runner drives on one board.
type Board struct {
	Info    specs.BoardInfo
	Power   Power
	Console Console
	Flasher Flasher         // nil: the board cannot be flashed
	Reset   Resetter        // nil: a reset step power-cycles
	Lines   map[string]Line // by name
	Tools   ToolRunner      // nil: no tools
	OffFor  time.Duration   // default off time for a power cycle
}
