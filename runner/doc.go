// Package runner runs one test spec on one board: setup, tests and
// teardown in order, a streaming expect engine over the console, measurements,
// hierarchical timeouts and cleanup that always runs. It emits typed events
// and returns a result; it knows nothing of HTTP or SQL.
//
// A Run owns the board it is given for its duration and is not safe for
// concurrent use; run many boards with many Runs.
package runner
