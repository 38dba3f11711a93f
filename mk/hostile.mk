# The hostile-submitter suite (issue 10, test/hostile) runs in `make test`
# with the Go tests: the real `hilfarm serve` as a process with sim boards.
# Its disk-full case mounts a tmpfs (root; CI runs as root).
# `make bench-hostile` prints the controller's peak RSS over the suite, the
# API's p99 latency while four worst-case regex jobs run, and the cancel
# latency of a worst-case match. A failing case is reported and the figures
# are still printed.
BENCH_EXTRA += bench-hostile

.PHONY: bench-hostile
bench-hostile: ## hostile submitters: controller peak RSS over the suite, API p99 under regex load, cancel latency
	@echo "== hostile submitters (real hilfarm serve, sim boards, $$(nproc) cores, load $$(cut -d' ' -f1-3 /proc/loadavg))"
	-@set -o pipefail; $(GO) test -count=1 -v -run 'TestHostile$$' ./test/hostile/ 2>&1 | grep -a -E 'PEAK-RSS|^(--- FAIL|FAIL|ok)' | sed 's/^.*PEAK-RSS //'
	$(GO) test -count=1 -run '^$$' -bench 'RegexLoad' -benchtime 1x ./test/hostile/
