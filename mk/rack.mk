# Many racks, one hub (issue 13): 4 racks × 12 sim boards and 1,000 jobs,
# submit → job start, console latency at 1 MB/s, results after a 20 s silent
# cut, idle RSS of a rack agent process, arm64 binary growth. Each target is
# printed with its figure, MET / NOT MET and the load.
BENCH_EXTRA += rack-bench
# TestNetnsSilentCutMidJob (make test, as root) cuts a link with ip(8).
DEB_PACKAGES += iproute2

.PHONY: rack-bench
rack-bench: ## racks behind one hub: 4×12 boards/1,000 jobs (0 lost, 0 dup), submit→start p50 ≤ 10 ms, console p50 ≤ 2 ms, results ≤ 15 s after a 20 s cut, agent idle RSS ≤ 40 MB, arm64 growth
	$(GO) test -run '^$$' -bench '^BenchmarkRack' -benchtime 1x -count 1 -timeout 15m ./rack/

# The multi-rack demo (docs/racks.md, Running a hub): hub + two racks as
# three processes on loopback, jobs submitted to the hub reach their
# verdicts on the racks. DEMO_RACKS_ONESHOT=1 exits after the jobs.
.PHONY: demo-racks
demo-racks: build ## a hub and two racks as three processes on loopback; the demo's jobs go through the hub (Ctrl-C stops)
	sh mk/demo-racks.sh
