# Issue 16: campaigns on the emulated updatable device (fixtures/sim flash
# and update). The 200-iteration power-cut campaign on the A/B and the
# in-place candidates through bin-like `hilfarm run`, and the 500-cycle boot
# soak beside a bare baseline (overhead per iteration, target <= 5 ms).
# make test runs the short forms: test/e2e TestPowerCutCampaign*.
BENCH_EXTRA += campaign-bench

.PHONY: campaign-bench
campaign-bench: ## 200-iteration power-cut campaign on sim-ab and sim-ab-inplace, 500-cycle boot soak (pass rates, wall time, iterations/s, overhead)
	@echo "== campaigns (load: $$(cat /proc/loadavg))"
	$(GO) test -run '^$$' -bench '^Benchmark(PowerCutCampaign|BootSoak)$$' -benchtime 1x -timeout 30m ./test/campaignbench/
