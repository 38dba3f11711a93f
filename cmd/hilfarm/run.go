package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hilfarm/hilfarm/fixtures"
	"github.com/hilfarm/hilfarm/runner"
	"github.com/hilfarm/hilfarm/specs"
)

func init() {
	register(command{name: "run", summary: "run one spec on one board here, without a server", run: runRun})
}

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", "hilfarm run --farm FILE --board NAME --firmware FILE [flags] SPEC",
		"Run the test spec SPEC on one board of the farm, with FILE as the firmware\n"+
			"candidate, right here: no server, no queue. The console and the steps' progress\n"+
			"are shown live (in colour on a terminal). The board is put back in its safe\n"+
			"state (powered off) afterwards, whatever happens; Ctrl-C cancels cleanly.\n"+
			"Exit status: 0 passed, 1 failed (the firmware), 2 error (the rig) or cancelled,\n"+
			"3 invalid input (farm, spec, board or firmware).\n"+
			"A test with a repeat block runs as a campaign; --repeat, --seed and\n"+
			"--replay-cut change how (docs/language.md, \"repeat\"). The summary names each\n"+
			"failing iteration with its power-cut delay and the command that replays it.", stderr)
	farmPath := fs.String("farm", "", "the farm `file` (farm.hcl)")
	boardName := fs.String("board", "", "the board to run on (its `name` in the farm)")
	fwPath := fs.String("firmware", "", "the firmware candidate `file`")
	fwVersion := fs.String("fw-version", "", "the candidate's `version` (firmware.version in the spec)")
	junitPath := fs.String("junit", "", "write a JUnit XML report to `file`")
	jsonPath := fs.String("json", "", "write the JSON result to `file`")
	quiet := fs.Bool("quiet", false, "print nothing while the spec runs (no console, no step lines): only the final summary")
	noConsole := fs.Bool("no-console", false, "do not show the console, only the steps")
	repeatN := fs.Int("repeat", 0, "run every repeated test `N` times (overrides its repeat count; 1..100000)")
	seed := fs.Int64("seed", 0, "the `seed` of random power-cut delays (replays a whole campaign; overrides the spec's)")
	replayCut := fs.Duration("replay-cut", -1, "every power cut waits this `delay` (e.g. 731ms), and each repeated test runs once: replays a failing iteration")
	vars := varFlags{}
	fs.Var(vars, "var", "set a spec variable (`NAME=VALUE`); repeatable")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() != 1:
		fs.Usage()
		return usageError("run needs exactly one SPEC")
	case *farmPath == "" || *boardName == "" || *fwPath == "":
		fs.Usage()
		return usageError("run needs --farm, --board and --firmware")
	}
	switch {
	case *repeatN < 0 || *repeatN > specs.MaxRepeatCount:
		return usageError("--repeat must be from 1 to %d", specs.MaxRepeatCount)
	case *seed < 0:
		return usageError("--seed must be a positive number")
	case *replayCut != -1 && (*replayCut < 0 || *replayCut > specs.MaxCutDelay):
		return usageError("--replay-cut must be from 0 to %s", specs.MaxCutDelay)
	}
	ropts := runner.Options{Repeat: *repeatN, Seed: *seed}
	if *replayCut >= 0 {
		ropts.ReplayCut = replayCut
	}
	width, color := diagStyle(stderr)
	rejected := func(format string, a ...any) error {
		return &exitError{code: exitRejected, msg: fmt.Sprintf(format, a...)}
	}

	farm, d := specs.LoadFarm(*farmPath)
	if d.Len() > 0 {
		_ = d.WriteText(stderr, width, color)
	}
	if d.HasErrors() {
		return rejected("%s: invalid farm file", *farmPath)
	}
	spec, d := specs.LoadSpec(fs.Arg(0), specs.SpecOptions{Vars: vars, Farm: farm, RequireVars: true})
	if d.Len() > 0 {
		_ = d.WriteText(stderr, width, color)
	}
	if d.HasErrors() {
		return rejected("%s: invalid spec", fs.Arg(0))
	}
	if farm.Board(*boardName) == nil {
		return rejected("farm %q has no board %q", farm.Name, *boardName)
	}
	matches := false
	var names []string
	for _, b := range farm.Match(spec.Board) {
		names = append(names, b.Name)
		matches = matches || b.Name == *boardName
	}
	if !matches {
		return rejected("board %q does not match spec %q's board selector (matching boards: %s)",
			*boardName, spec.Name, orNone(names))
	}
	fw, err := loadFirmware(*fwPath, *fwVersion)
	if err != nil {
		return rejected("%v", err)
	}

	_, tty := diagStyle(stdout)
	p := &runPrinter{w: stdout, color: tty, console: !*quiet && !*noConsole}
	events := p.event
	if *quiet {
		events = nil // not even the runner's event values are built
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fixtures.CleanRunDirs(logger) // a crashed instance's, not a live one's
	b, err := fixtures.OpenBoard(ctx, farm, *boardName, fixtures.Options{Logger: logger})
	if err != nil {
		return &exitError{code: exitInfra, msg: fmt.Sprintf("open board %s: %v", *boardName, err)}
	}
	defer b.Close()

	ropts.Events = events
	res, err := runner.Run(ctx, runner.Job{Spec: spec, Board: b.Runner(), Firmware: fw}, ropts)
	if err != nil {
		return &exitError{code: exitInfra, msg: err.Error()}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	if err := b.SafeState(sctx); err != nil {
		fmt.Fprintf(stderr, "hilfarm run: board %s: safe state: %v\n", *boardName, err)
		if res.Outcome == runner.Passed || res.Outcome == runner.Failed {
			res.Outcome, res.Message = runner.Error, "safe state: "+err.Error()
		}
	}
	cancel()
	var werr error
	if *junitPath != "" {
		werr = errors.Join(werr, writeReport(*junitPath, res, runner.WriteJUnit))
	}
	if *jsonPath != "" {
		werr = errors.Join(werr, writeReport(*jsonPath, res, runner.WriteJSON))
	}
	p.summary(res)
	p.campaigns(res, replayCommand(*farmPath, *boardName, *fwPath, *fwVersion, vars, fs.Arg(0)))
	if werr != nil {
		return &exitError{code: exitInfra, msg: werr.Error()}
	}
	switch res.Outcome {
	case runner.Passed:
		return nil
	case runner.Failed:
		return &exitError{code: exitFailed}
	}
	return &exitError{code: exitInfra}
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// loadFirmware describes the candidate file: its name, sha256 and absolute path.
func loadFirmware(path, version string) (specs.Firmware, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return specs.Firmware{}, fmt.Errorf("firmware %s: %w", path, err)
	}
	f, err := os.Open(abs)
	if err != nil {
		return specs.Firmware{}, fmt.Errorf("firmware: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return specs.Firmware{}, fmt.Errorf("firmware %s: not a regular file", path)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return specs.Firmware{}, fmt.Errorf("firmware %s: %w", path, err)
	}
	return specs.Firmware{Name: filepath.Base(abs), Version: version, SHA256: hex.EncodeToString(h.Sum(nil)), Path: abs}, nil
}

func writeReport(path string, res *runner.Result, write func(io.Writer, *runner.Result) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := write(f, res); err != nil {
		f.Close()
		return fmt.Errorf("report %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	return nil
}

// runPrinter shows a run live: the console as the board prints it, and a
// line per test and step. The runner calls event from one goroutine at a
// time.
type runPrinter struct {
	w       io.Writer
	color   bool
	console bool
	midLine bool // the console left the cursor mid-line
}

const (
	ansiReset = "\x1b[0m"
	ansiBold  = "\x1b[1m"
	ansiDim   = "\x1b[2m"
	ansiRed   = "\x1b[31m"
	ansiGreen = "\x1b[32m"
	ansiYel   = "\x1b[33m"
	ansiMag   = "\x1b[35m"
	ansiCyan  = "\x1b[36m"
)

func (p *runPrinter) paint(style, s string) string {
	if !p.color || style == "" {
		return s
	}
	return style + s + ansiReset
}

// line prints a progress line, first ending a console line left open.
func (p *runPrinter) line(format string, a ...any) {
	if p.midLine {
		fmt.Fprintln(p.w)
		p.midLine = false
	}
	fmt.Fprintf(p.w, format+"\n", a...)
}

func outcomeStyle(o runner.Outcome) (mark, style string) {
	switch o {
	case runner.Passed:
		return "✓", ansiGreen
	case runner.Failed:
		return "✗", ansiRed
	case runner.Error:
		return "!", ansiMag
	case runner.Cancelled:
		return "⊘", ansiYel
	}
	return "-", ansiDim
}

func ms(d runner.Duration) string {
	t := d.Std()
	switch {
	case t >= time.Second:
		return t.Round(10 * time.Millisecond).String()
	case t >= time.Millisecond:
		return t.Round(100 * time.Microsecond).String()
	}
	return t.Round(time.Microsecond).String()
}

func (p *runPrinter) event(ev runner.Event) {
	switch ev := ev.(type) {
	case runner.JobStarted:
		sha := ev.Firmware.SHA256
		if len(sha) > 12 {
			sha = sha[:12]
		}
		p.line("%s", p.paint(ansiBold, fmt.Sprintf("== %s on %s: firmware %s %s (sha256 %s…)", ev.Spec, ev.Board.Name, ev.Firmware.Name, ev.Firmware.Version, sha)))
	case runner.TestStarted:
		name := string(ev.Phase)
		if ev.Phase == runner.PhaseTest {
			name = fmt.Sprintf("test %q", ev.Test)
		}
		if ev.Attempt > 1 {
			name += fmt.Sprintf(" (attempt %d)", ev.Attempt)
		}
		p.line("%s", p.paint(ansiCyan, "-- "+name))
	case runner.StepFinished:
		mark, style := outcomeStyle(ev.Outcome)
		p.line("   %s %s %s", p.paint(style, mark), stepLabel(ev), p.paint(ansiDim, ms(ev.Duration)))
		if ev.Message != "" {
			for _, l := range strings.Split(ev.Message, "\n") {
				p.line("     %s", p.paint(style, l))
			}
		}
	case runner.TestFinished:
		if ev.Outcome == runner.Skipped {
			p.line("   %s %s", p.paint(ansiDim, "- skipped:"), ev.Message)
		}
	case runner.MeasurementTaken:
		m := ev.Measurement
		_, style := outcomeStyle(map[runner.Verdict]runner.Outcome{runner.VerdictPass: runner.Passed,
			runner.VerdictMarginal: runner.Cancelled, runner.VerdictFail: runner.Failed}[m.Verdict])
		p.line("     %s", p.paint(style, fmt.Sprintf("measure %s = %v %s (%s)", m.Name, m.Value, m.Unit, m.Verdict)))
	case runner.Log:
		p.line("     %s", p.paint(ansiDim, ev.Source+": "+ev.Line))
	case runner.ConsoleGap:
		if ev.Lost {
			p.line("%s", p.paint(ansiMag, "[console lost: "+ev.Err+"]"))
		} else {
			p.line("%s", p.paint(ansiMag, "[console back]"))
		}
	case runner.ConsoleOutput:
		if p.console && len(ev.Data) > 0 {
			_, _ = p.w.Write(ev.Data)
			p.midLine = ev.Data[len(ev.Data)-1] != '\n'
		}
	}
}

// stepLabel is the step as the progress line shows it.
func stepLabel(ev runner.StepFinished) string {
	if ev.Summary != "" {
		return ev.Summary
	}
	return string(ev.Kind)
}

func (p *runPrinter) summary(res *runner.Result) {
	n := map[runner.Outcome]int{}
	for _, t := range res.Tests {
		n[t.Outcome]++
	}
	mark, style := outcomeStyle(res.Outcome)
	p.line("%s", p.paint(ansiBold+style, fmt.Sprintf("== %s %s in %s: %d passed, %d failed, %d errors, %d skipped, %d cancelled",
		mark, res.Outcome, ms(res.Duration), n[runner.Passed], n[runner.Failed], n[runner.Error], n[runner.Skipped], n[runner.Cancelled])))
	if res.Message != "" {
		p.line("   %s", firstLineOf(res.Message))
	}
}

func firstLineOf(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// campaigns prints each campaign's summary (runner.CampaignSummary).
func (p *runPrinter) campaigns(res *runner.Result, replay string) {
	for _, t := range res.Tests {
		if t.Campaign == nil {
			continue
		}
		_, style := outcomeStyle(t.Outcome)
		for _, l := range strings.Split(strings.TrimRight(runner.CampaignSummary(t.Name, t.Campaign, replay), "\n"), "\n") {
			p.line("   %s", p.paint(style, l))
		}
	}
}

// replayCommand is the hilfarm run command line of this run, for the
// replay lines of a campaign summary.
func replayCommand(farm, board, fw, version string, vars varFlags, spec string) string {
	args := []string{"hilfarm", "run", "--farm", farm, "--board", board, "--firmware", fw}
	if version != "" {
		args = append(args, "--fw-version", version)
	}
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		args = append(args, "--var", k+"="+vars[k])
	}
	args = append(args, spec)
	for i, a := range args {
		args[i] = shellQuote(a)
	}
	return strings.Join(args, " ")
}
