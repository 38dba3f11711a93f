# Controller benchmarks (issue 5): scheduling latency and throughput on sim boards.
BENCH_EXTRA += farm-bench

.PHONY: farm-bench
farm-bench: ## controller: submit-to-power-on, board turnaround, 1000 concurrent submissions to 20 sim boards
	@echo "== controller (sim boards, real SQLite, $$(nproc) cores)"
	$(GO) test -run '^$$' -bench 'SubmitToPowerOn|Turnaround' -benchtime 50x ./farm/
	$(GO) test -run '^$$' -bench 'ConcurrentSubmissions' -benchtime 1x ./farm/
	$(GO) test -run '^$$' -bench 'IdleRSS' -benchtime 3x ./test/e2e/
	@$(MAKE) --no-print-directory build >/dev/null && echo "stripped binary bin/hilfarm: $$(du -h $(BIN)/hilfarm | cut -f1)"
