# fixtures: serial console and command-driven fixtures (fixtures/serial, fixtures/command).
# The console tests use ptys (creack/pty) and need no packages; socat is
# handy for poking at consoles by hand.
DEB_PACKAGES += socat
BENCH_EXTRA  += bench-console

.PHONY: bench-console
bench-console: ## console flood throughput: hilfarm's console path vs a bare go.bug.st/serial read loop (MB/s)
	$(GO) test -run '^$$' -bench BenchmarkConsoleFlood -benchtime 64x -count 3 ./fixtures/serial/
