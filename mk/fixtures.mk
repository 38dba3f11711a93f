# fixtures: serial console and command-driven fixtures (fixtures/serial, fixtures/command).
# The console tests use ptys (creack/pty) and need no packages; socat is
# handy for poking at consoles by hand.
DEB_PACKAGES += socat
BENCH_EXTRA  += bench-console

.PHONY: bench-console
bench-console: ## console flood throughput: hilfarm's console path vs a bare go.bug.st/serial read loop (MB/s)
	$(GO) test -run '^$$' -bench BenchmarkConsoleFlood -benchtime 64x -count 3 ./fixtures/serial/

# Issue 12: the console data path of the real binary against a bare Go loop
# on the same pty (flood through `hilfarm run`, send/expect round trip, the
# flood as a serve job recorded byte-identical in the store), and an idle
# farm of 48 sim boards (wake-ups per board, threads), with each target's
# figure and MET / NOT MET. Issue 11: the 1,000-job
# power-cycle soak on sim boards (false failures, target 0; `make test`
# runs 200 in TestPowerCycleSoakNoStalePrompt).
BENCH_EXTRA += console-bench boot-soak

.PHONY: console-bench boot-soak
console-bench: ## console path of the hilfarm binary vs a bare Go loop: 50 MiB flood (run, serve), 999 round trips, idle farm
	@echo "== console path (load: $$(cat /proc/loadavg))"
	$(GO) test -run '^$$' -bench '^Benchmark(RunFlood|RunRoundTrip|ServeFlood|IdleWakeups)$$' -benchtime 1x -timeout 15m ./test/consolebench/

boot-soak: ## 1,000 power-cycle jobs on sim boards after a job that ends printing a prompt: false failures (target 0)
	$(GO) test -run '^$$' -bench '^BenchmarkPowerCycleSoak$$' -benchtime 1x -timeout 20m ./farm/
