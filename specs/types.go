package specs

import (
	"time"
)

// This file holds the decoded, plain-Go form of both languages. Every other
// package of hilfarm consumes these values; no hcl or cty type appears in
// them except inside Expr, which wraps an expression evaluated at run time.

// Pos is a position in a source file. Line and Column start at 1; Byte at 0.
type Pos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

// Range is a span of a source file.
type Range struct {
	Filename string `json:"filename"`
	Start    Pos    `json:"start"`
	End      Pos    `json:"end"`
}

// Farm is a decoded farm.hcl: what is wired where, and how the controller runs.
type Farm struct {
	Name           string    `json:"name"`
	Listen         string    `json:"listen"`           // default ":8080"
	DataDir        string    `json:"data_dir"`         // default "/var/lib/hilfarm"
	MaxUploadBytes int64     `json:"max_upload_bytes"` // default 64 MiB
	Retention      Retention `json:"retention"`
	AnonymousRead  bool      `json:"anonymous_read"`
	// CommitURL links a job's "commit" label to its commit in the UI:
	// {commit} is replaced by the label's value (path-escaped).
	CommitURL  string      `json:"commit_url,omitempty"`
	BoardTypes []BoardType `json:"board_types"`
	Boards     []Board     `json:"boards"`
	Webhooks   []Webhook   `json:"webhooks,omitempty"`
	Trust      *Trust      `json:"trust,omitempty"` // nil: no trust block (mode off)
	// Rack is set when this farm is also a rack of a multi-rack farm: serve
	// then runs jobs pulled from the hub on these boards (docs/racks.md).
	Rack *RackLink `json:"rack,omitempty"`
	// Hub is set when this farm is the front door of a multi-rack farm:
	// serve then also runs the hub that racks dial, and jobs for board
	// types only racks have go to them (docs/racks.md).
	Hub      *Hub   `json:"hub,omitempty"`
	Filename string `json:"filename"`
}

// Hub is a farm file's hub block: where the hub's leaf listener binds and
// the directory `hilfarm ca init` and `hilfarm rack add` wrote.
type Hub struct {
	Listen string `json:"listen"` // [host]:port of the leaf listener; default ":7422"
	// Dir holds ca.pem, hub.pem, hub-key.pem and racks/NAME.json; a
	// relative path is relative to the farm file's directory. Read when
	// serve starts; racks/ is re-read while it runs.
	Dir   string `json:"dir"`
	Range Range  `json:"range"`
}

// RackLink is a farm file's rack block: the name this farm has as a rack,
// the hub it dials and the credentials `hilfarm rack add` wrote for it.
// Boards offer work of their board type: the type's name is the rack type
// (the --type of `hilfarm rack add`).
type RackLink struct {
	Name string `json:"name"`
	Hub  string `json:"hub"` // tls://host:port of the hub's leaf listener
	// Credentials is the bundle directory (ca.pem, rack.pem, rack-key.pem,
	// password) as written; a relative path is relative to the farm file's
	// directory. Its files are read when serve starts.
	Credentials string `json:"credentials"`
	Range       Range  `json:"range"`
}

// Retention bounds what the controller keeps. Zero means "keep forever" for that bound.
type Retention struct {
	Days     int   `json:"days"`
	MaxBytes int64 `json:"max_bytes"`
}

// BoardType is what boards of one kind share: how to flash them, their
// health check and the host tools specs may call on them.
type BoardType struct {
	Name string `json:"name"`
	// Flash is nil when the type has no flash method of its own: emulated
	// boards are flashed by their emulator; a real board without one cannot
	// run a flash step (a validation error against the farm).
	Flash       *CommandFlash `json:"flash,omitempty"`
	HealthCheck string        `json:"health_check,omitempty"` // spec path, resolved against farm.hcl's directory
	Tools       []Tool        `json:"tools,omitempty"`
	Range       Range         `json:"range"`
}

// CommandFlash flashes a board by running a program. Run is an argv list
// (no shell) whose elements are templates over firmware.* and board.*.
type CommandFlash struct {
	Run     []Expr        `json:"run"`
	Timeout time.Duration `json:"timeout"`
}

// Tool is a host program a farm owner allows specs to call by name. Run is
// an argv template over firmware.*, board.* and arg.* (the spec's arguments).
type Tool struct {
	Name    string        `json:"name"`
	Run     []Expr        `json:"run"`
	Timeout time.Duration `json:"timeout"`
	Params  []string      `json:"params,omitempty"` // names of arg.* the template uses
}

// Board is one board in the rack.
type Board struct {
	Name     string            `json:"name"`
	Type     string            `json:"type"`
	Tags     map[string]string `json:"tags,omitempty"`
	Power    *Power            `json:"power,omitempty"`   // nil for emulated boards
	Console  *Console          `json:"console,omitempty"` // nil for emulated boards
	Lines    []Line            `json:"lines,omitempty"`
	Emulator *Emulator         `json:"emulator,omitempty"`
	Range    Range             `json:"range"`
}

// Power kinds.
const (
	PowerGPIO    = "gpio"
	PowerCommand = "command"
)

// Power is how a board's supply is switched.
type Power struct {
	Kind    string        `json:"kind"` // PowerGPIO or PowerCommand
	GPIO    *GPIOPower    `json:"gpio,omitempty"`
	Command *CommandPower `json:"command,omitempty"`
}

// GPIOPower is a relay (or load switch) driven by one GPIO line.
type GPIOPower struct {
	Chip      string        `json:"chip,omitempty"` // name, path or label; empty: find the line by name on any chip
	Line      string        `json:"line"`           // line name or decimal offset
	ActiveLow bool          `json:"active_low"`
	OffFor    time.Duration `json:"off_for"` // how long a cycle holds power off; default 1s
}

// CommandPower switches power by running programs (uhubctl, ykushcmd, PDU clients).
type CommandPower struct {
	On      []Expr        `json:"on"`
	Off     []Expr        `json:"off"`
	Cycle   []Expr        `json:"cycle,omitempty"` // empty: off, wait OffFor, on
	Timeout time.Duration `json:"timeout"`
	OffFor  time.Duration `json:"off_for"`
}

// Console is a serial console.
type Console struct {
	Port     string `json:"port"`      // e.g. /dev/serial/by-id/...
	Baud     int    `json:"baud"`      // default 115200
	DataBits int    `json:"data_bits"` // 5..8, default 8
	Parity   string `json:"parity"`    // none (default), odd, even, mark, space
	StopBits string `json:"stop_bits"` // "1" (default) or "2" (Linux has no 1.5)
	// ModemLines enables DTR/RTS control; off by default (ptys and many
	// adapters have none). When on, DTR and RTS are the levels set at open.
	ModemLines bool `json:"modem_lines"`
	DTR        bool `json:"dtr"`
	RTS        bool `json:"rts"`
}

// Line is a named extra GPIO line to the device under test (button, LED, reset).
type Line struct {
	Name      string `json:"name"`
	Chip      string `json:"chip,omitempty"` // empty: by line name on any chip; on emulated boards: the emulator's line
	Line      string `json:"line,omitempty"` // name or offset
	Output    bool   `json:"output"`
	ActiveLow bool   `json:"active_low"`
	Initial   int    `json:"initial"`         // outputs: the safe value, applied at open and close
	Bias      string `json:"bias,omitempty"`  // "", pull-up, pull-down, disable
	Drive     string `json:"drive,omitempty"` // "", push-pull, open-drain, open-source
}

// Emulator kinds.
const (
	EmulatorSim  = "sim"
	EmulatorQEMU = "qemu"
)

// Emulator makes a board out of a program: power, console and flashing all
// act on the emulator.
type Emulator struct {
	Kind string     `json:"kind"` // EmulatorSim or EmulatorQEMU
	Sim  *SimConfig `json:"sim,omitempty"`
	QEMU *QEMU      `json:"qemu,omitempty"`
}

// SimConfig configures a sim board (a scripted firmware model behind a pty).
type SimConfig struct {
	// Firmware is a model file used until a candidate is flashed; empty: the board prints nothing until flashed.
	Firmware string `json:"firmware,omitempty"`
	// Baud paces the simulated UART; 0 means unpaced.
	Baud int `json:"baud"`
}

// QEMU configures a QEMU board. The firmware candidate becomes the -bios or -kernel image.
type QEMU struct {
	Binary  string   `json:"binary"`           // default qemu-system-arm
	Machine string   `json:"machine"`          // e.g. virt, lm3s6965evb
	CPU     string   `json:"cpu,omitempty"`    // e.g. cortex-a15
	Memory  string   `json:"memory,omitempty"` // e.g. 128M
	Load    string   `json:"load"`             // bios (default) or kernel
	Args    []string `json:"args,omitempty"`   // extra arguments, from the farm owner only
	// Firmware is an image used until a candidate is flashed (e.g. /usr/lib/u-boot/qemu_arm/u-boot.bin).
	Firmware string `json:"firmware,omitempty"`
}

// Webhook is notified when a job finishes.
type Webhook struct {
	Name   string   `json:"name"`
	URL    string   `json:"url"`
	Secret string   `json:"-"` // HMAC-SHA256 key; never serialised
	Events []string `json:"events"`
}

// Spec is a decoded test spec: what a firmware candidate must do on a board.
type Spec struct {
	Name        string     `json:"name"`
	Description string     `json:"description,omitempty"`
	Board       Selector   `json:"board"`
	Variables   []Variable `json:"variables,omitempty"`
	// Vars are the variables' values after defaults and overrides; string, float64 or bool.
	Vars        map[string]any `json:"vars,omitempty"`
	Timeout     time.Duration  `json:"timeout"`                // whole job; default 10m
	IdleTimeout time.Duration  `json:"idle_timeout,omitempty"` // 0: none
	LineEnding  string         `json:"line_ending"`            // appended by send { line }; default "\n"
	FailOn      []Pattern      `json:"fail_on,omitempty"`
	Setup       []Step         `json:"setup,omitempty"`
	Tests       []Test         `json:"tests"`
	Teardown    []Step         `json:"teardown,omitempty"`
	Filename    string         `json:"filename"`
	Range       Range          `json:"range"`
}

// Selector chooses boards: all that have the type (if set) and every tag.
type Selector struct {
	Type string            `json:"type,omitempty"`
	Tags map[string]string `json:"tags,omitempty"`
	// Range is where the selector's type and tags are in the spec (for
	// diagnostics; zero when it was not decoded from a file).
	Range Range `json:"-"`
}

// Variable is a spec variable, overridable at submit.
type Variable struct {
	Name        string `json:"name"`
	Type        string `json:"type"` // string, number or bool
	Description string `json:"description,omitempty"`
	Default     any    `json:"default,omitempty"` // nil: a value is required at submit
}

// Test is one `test "name"` block: one JUnit testcase.
type Test struct {
	Name    string        `json:"name"`
	Retries int           `json:"retries,omitempty"`
	Timeout time.Duration `json:"timeout,omitempty"` // 0: bounded only by the spec's timeout
	// Repeat makes the test a campaign: its steps run as iterations
	// (docs/language.md, "repeat"). Nil: the test runs once.
	Repeat *Repeat `json:"repeat,omitempty"`
	Steps  []Step  `json:"steps"`
	Range  Range   `json:"range"`
}

// Repeat is a test's `repeat` block: the test's steps run Count times, or
// for Duration, or both (whichever ends first), until a stop condition.
// Inside, `repeat.iteration` (from 1) and `repeat.count` (0 when by
// duration only) are in scope.
type Repeat struct {
	Count    int           `json:"count,omitempty"`    // 0: by Duration only
	Duration time.Duration `json:"duration,omitempty"` // 0: by Count only
	// StopAfterFailures stops the campaign once this many iterations did
	// not pass (1: at the first failure). 0: run every iteration.
	StopAfterFailures int `json:"stop_after_failures,omitempty"`
	// MinPassRate is the share of iterations (0..1) that must pass for
	// the test to pass. Default 1: every iteration.
	MinPassRate float64 `json:"min_pass_rate"`
	// Seed seeds random power-cut delays; 0: chosen at run time and
	// recorded in the result, so a campaign can be replayed.
	Seed int64 `json:"seed,omitempty"`
	// Spread splits the iterations across up to this many matching
	// boards (one job attempt each), merged into one result. 0 or 1: one board.
	Spread int   `json:"spread,omitempty"`
	Range  Range `json:"range"`
}

// StepKind names a step type.
type StepKind string

// The step kinds.
const (
	StepFlash   StepKind = "flash"
	StepPower   StepKind = "power"
	StepReset   StepKind = "reset"
	StepSend    StepKind = "send"
	StepExpect  StepKind = "expect"
	StepMeasure StepKind = "measure"
	StepAssert  StepKind = "assert"
	StepGPIO    StepKind = "gpio"
	StepWait    StepKind = "wait"
	StepTool    StepKind = "tool"
)

// Step is one step. Exactly one of the pointer fields matching Kind is set.
type Step struct {
	Kind    StepKind     `json:"kind"`
	Flash   *FlashStep   `json:"flash,omitempty"`
	Power   *PowerStep   `json:"power,omitempty"`
	Reset   *ResetStep   `json:"reset,omitempty"`
	Send    *SendStep    `json:"send,omitempty"`
	Expect  *ExpectStep  `json:"expect,omitempty"`
	Measure *MeasureStep `json:"measure,omitempty"`
	Assert  *AssertStep  `json:"assert,omitempty"`
	GPIO    *GPIOStep    `json:"gpio,omitempty"`
	Wait    *WaitStep    `json:"wait,omitempty"`
	Tool    *ToolStep    `json:"tool,omitempty"`
	Range   Range        `json:"range"`
}

// FlashStep flashes the firmware candidate with the board type's method.
type FlashStep struct {
	Timeout time.Duration `json:"timeout,omitempty"` // 0: the board type's timeout
}

// Power actions.
const (
	PowerOn    = "on"
	PowerOff   = "off"
	PowerCycle = "cycle"
	// PowerCut cuts power at a chosen, random or swept moment, holds it
	// off for OffFor, then turns it back on (power-fail injection).
	PowerCut = "cut"
)

// PowerStep switches the board's power.
type PowerStep struct {
	Action string        `json:"action"`            // PowerOn, PowerOff, PowerCycle or PowerCut
	OffFor time.Duration `json:"off_for,omitempty"` // cycle and cut; 0: the board's off_for
	Cut    *CutPlan      `json:"cut,omitempty"`     // PowerCut only
}

// CutPlan says when a `power "cut"` step cuts: Delay after the step
// starts, or after the console shows After (within AfterWithin). Exactly
// one of Delay, Random and Sweep is set.
type CutPlan struct {
	After       *Pattern      `json:"after,omitempty"`        // wait for this console text or regex first
	AfterWithin time.Duration `json:"after_within,omitempty"` // default 10s; not seen: the test fails
	Delay       *Expr         `json:"delay,omitempty"`        // a duration; may use var.*
	// Random: a delay drawn uniformly from [Random[0], Random[1]] with the
	// campaign's seed.
	Random []time.Duration `json:"random,omitempty"`
	// Sweep: from Sweep[0] to Sweep[1] in Steps evenly spaced delays,
	// iteration i taking delay (i-1) mod Steps. Steps defaults to the
	// repeat count.
	Sweep []time.Duration `json:"sweep,omitempty"`
	Steps int             `json:"steps,omitempty"`
}

// ResetStep resets the board (emulator reset, or a power cycle).
type ResetStep struct{}

// SendStep types into the console: a line (followed by the spec's line
// ending) or raw bytes (with \xNN escapes decoded).
type SendStep struct {
	Line *Expr `json:"line,omitempty"`
	Raw  *Expr `json:"raw,omitempty"`
}

// ExpectStep waits for a pattern on the console.
type ExpectStep struct {
	Pattern Pattern       `json:"pattern"`
	Within  time.Duration `json:"within"`            // default 10s
	Capture string        `json:"capture,omitempty"` // name: regex group 1 (or the whole match) goes to capture.NAME
}

// Pattern is literal text or a regular expression (RE2), evaluated at run
// time because it may refer to firmware.*, var.* and capture.*.
type Pattern struct {
	Text  *Expr `json:"text,omitempty"`
	Regex *Expr `json:"regex,omitempty"`
}

// MeasureStep waits for a regex and turns one group into a number checked against limits.
type MeasureStep struct {
	Name        string        `json:"name"`
	Regex       Expr          `json:"regex"`
	Group       int           `json:"group"` // default 1
	Unit        string        `json:"unit,omitempty"`
	Within      time.Duration `json:"within"` // default 10s
	Min         *float64      `json:"min,omitempty"`
	Max         *float64      `json:"max,omitempty"`
	MarginalMin *float64      `json:"marginal_min,omitempty"` // below it (but >= Min): marginal
	MarginalMax *float64      `json:"marginal_max,omitempty"` // above it (but <= Max): marginal
}

// AssertStep checks a boolean expression over captures, measurements and the rest.
type AssertStep struct {
	That    Expr  `json:"that"`
	Message *Expr `json:"message,omitempty"`
}

// GPIOStep sets a named output line, or pulses it for a duration.
type GPIOStep struct {
	Line string        `json:"line"`
	Set  int           `json:"set"`
	For  time.Duration `json:"for,omitempty"` // >0: pulse, then back to the previous value
}

// WaitStep waits for a duration, or until a named input line reads a value (bounded by Within).
type WaitStep struct {
	For    time.Duration `json:"for,omitempty"`
	GPIO   string        `json:"gpio,omitempty"`
	Value  int           `json:"value,omitempty"`
	Within time.Duration `json:"within,omitempty"` // default 10s
}

// ToolStep calls a farm-defined tool by name with named arguments.
type ToolStep struct {
	Name    string           `json:"name"`
	Args    map[string]*Expr `json:"args,omitempty"`
	Timeout time.Duration    `json:"timeout,omitempty"` // 0: the tool's timeout
	Capture string           `json:"capture,omitempty"` // name: the tool's trimmed stdout goes to capture.NAME
}
