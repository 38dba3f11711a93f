# Console fan-out through the real `hilfarm serve` (issue 12): 10 MiB at
# full speed to 50 websocket viewers, then 50 + 1 that never reads; prints
# each target with MET / NOT MET and the load.
BENCH_EXTRA += fanout-bench

.PHONY: fanout-bench
fanout-bench: ## console fan-out of `hilfarm serve`: 10 MiB to 50 websocket viewers (≤ 1.0 s, every byte), + 1 that never reads (cut)
	$(GO) test -run '^$$' -bench '^BenchmarkServeFanout$$' -benchtime 1x -count 1 -timeout 10m ./test/fanoutbench/
