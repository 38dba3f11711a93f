# Bounds on what a submitter can send (issue 10): the real binary on the
# worst inputs. The tests measure RSS with GNU time (package "time").
DEB_PACKAGES += time
BENCH_EXTRA  += bench-bounds

.PHONY: bench-bounds
bench-bounds: ## `hilfarm validate` of the worst inputs ≤ 1 MiB: max RSS and CPU (budget 64 MB, 1 s)
	$(GO) test -run '^$$' -bench BenchmarkValidateWorst -benchtime 1x ./test/bounds/
