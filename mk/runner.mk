# runner: the expect engine's fuzz run (after `go test`) and the runner's
# benchmarks (make bench).
TEST_EXTRA  += runner-fuzz runner-fuzz-chunking
BENCH_EXTRA += runner-bench runner-bench-cancel

RUNNER_FUZZTIME ?= 15s

.PHONY: runner-fuzz runner-fuzz-chunking runner-bench runner-bench-cancel

runner-fuzz: ## fuzz the runner's expect engine for $(RUNNER_FUZZTIME)
	$(GO) test -run '^$$' -fuzz '^FuzzExpect$$' -fuzztime $(RUNNER_FUZZTIME) ./runner/

runner-fuzz-chunking: ## differential fuzz: any chunking of a stream gives the outcome of the stream in one piece
	$(GO) test -run '^$$' -fuzz '^FuzzChunking$$' -fuzztime $(RUNNER_FUZZTIME) ./runner/

runner-bench: ## runner benchmarks: 50 MB console flood vs a bare read loop, ping/pong round trip, peak RSS
	$(GO) test -run '^$$' -bench '^Benchmark(Flood|RoundTrip|FloodPeakRSS)$$' -benchtime 1x -count 1 -timeout 10m ./runner/

runner-bench-cancel: ## cancel latency of a worst-case match (target <= 100 ms): a regex at the specs limits through Run, and the reported 360 KB regex
	$(GO) test -run '^$$' -bench '^BenchmarkCancel(CostlyMatch|HugeRegex)$$' -benchtime 5x -count 1 -v -timeout 10m ./runner/ | grep -vE '^(=== RUN|goos|goarch|pkg|cpu)'
