// Package runner runs one test spec on one board: setup, tests and
// teardown in order, a streaming expect engine over the console, measurements,
// hierarchical timeouts and cleanup that always runs. It emits typed events
// and returns a result; it knows nothing of HTTP or SQL.
//
// A Run owns the board it is given for its duration and is not safe for
// concurrent use; run many boards with many Runs.
//
// # Order and cleanup
//
// Setup runs first; if it does not pass, every test is skipped (outcome
// skipped, kind "setup"). Each test runs with its retries: a test that did
// not pass is tried again up to Retries times, each attempt recorded with
// its own outcome; the last decides. Teardown always runs — after a failure,
// a panic in a step, a cancel of the context or the job's timeout — on
// context.WithoutCancel(ctx) bounded by Options.CleanupTimeout, and runs all
// its steps even when one fails. Then the board is powered off (its safe
// state), again on context.WithoutCancel(ctx) with its own bound. A board
// operation that ignores its context is abandoned after Options.AbandonAfter
// and reported as an error rather than hanging the job.
//
// # Outcomes
//
// failed blames the firmware (an expect or measure timed out, an assertion
// or a limit failed, a fail_on pattern appeared, the console went silent
// for idle_timeout, a tool exited non-zero, a DUT line never reached its
// value); error blames the rig or the spec (flasher, power, reset, GPIO or
// tool could not do their job, the console was lost or a write failed, a
// step panicked, an expression could not be evaluated); cancelled means the
// job's context was cancelled; skipped means not run. A job's outcome is
// the worst of its phases: cancelled, then error, then failed, then passed.
//
// Timeouts nest: the spec's timeout bounds the job, a test's timeout each
// attempt, and a step's within (or a flash or tool timeout) the step. When
// the job or test timeout runs out while the runner waits for the console
// the test failed; while a board operation (power, flash, tool) runs, it is
// an error.
//
// # The expect engine
//
// The runner is the single reader of the board's console stream and
// processes it during every step, so fail_on patterns see every byte of the
// run, including bytes no expect consumes. It keeps the last bytes of the
// stream in a bounded window and never rescans an ever-growing buffer:
//
//   - a text pattern is found by a rolling search over the new bytes plus
//     len(pattern)-1 bytes before them, so matches that span reads are found;
//   - a regex is searched in at most the last RegexWindow (64 KiB) bytes after
//     the previous match; a regex that cannot match a newline is searched
//     again only from the start of the current line, one with a bounded
//     match length only over that length, and one that starts with a literal
//     or a small set of bytes skips the regex engine elsewhere;
//   - a regex match that more bytes could still change (a path of the
//     automaton that started at or before it is still running at the end
//     of the data: "U-Boot ([0-9.]+)" having seen "U-Boot 2023.0", "OK$"
//     having seen the "OK" of "OKAY") is tentative: it waits for the next
//     bytes, or for the settle time of quiet (Options.Settle, 20 ms; twice
//     the gap between reads for paced output, up to 250 ms). Expect and
//     fail_on matches are taken in stream order (the first to end wins; a
//     tie goes to fail_on), so the outcome does not depend on how the
//     bytes were cut into reads (FuzzChunking);
//   - a costly regex search (program size × bytes above costlyWork) runs
//     interruptibly: a cancel, a timeout or the end of within ends the step
//     at once (matching can always be cancelled);
//   - output that follows a match stays for the next expect; flash, power
//     and reset steps discard output not yet matched, so a prompt printed
//     before a power cycle cannot answer an expect after it;
//   - idle_timeout applies while an expect or measure waits: any console
//     byte resets it;
//   - a console lost (ConsoleLost) during a flash, power or reset step is
//     tolerated (a board may power its own USB serial chip) and a later
//     expect waits for it to come back; lost anywhere else, bytes were lost,
//     and the step is an error.
//
// A failed expect says what was expected, how long it waited and quotes the
// last 20 console lines. Each test result carries its slice of the console,
// capped at Options.TestConsoleMax (default 256 KiB: the first and last
// halves, with a "[... N bytes elided ...]" marker between).
//
// # Events and reports
//
// Options.Events receives JobStarted, TestStarted, StepStarted, ConsoleOutput,
// ConsoleGap, MeasurementTaken, Log, StepFinished, TestFinished and
// JobFinished, in order, each marshalling to JSON with a "type" field. Calls
// are serialised and the engine waits for each, so a sink must hand events
// on quickly. WriteJSON and WriteJUnit write a Result.
package runner
