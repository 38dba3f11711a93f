package runner

// Test helpers for package runner_test.
var (
	CostlyPattern = costlyPattern
	ConsoleText   = consoleText
)
