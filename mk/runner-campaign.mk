# runner campaigns (issue 16): the runner's own cost per campaign iteration
# (one assertion on a fake board, no board time), for the ≤ 5 ms
# per-iteration overhead target (make bench).
BENCH_EXTRA += runner-bench-campaign

.PHONY: runner-bench-campaign

runner-bench-campaign: ## runner cost per campaign iteration (target <= 5 ms beyond the board's own time)
	$(GO) test -run '^$$' -bench '^BenchmarkCampaignIteration$$' -benchtime 20000x -count 1 -benchmem -timeout 10m ./runner/ | grep -E '^(Benchmark|ok|FAIL)'
