# Signed candidates (issue 17): the tests sign and check keys with the real
# ssh-keygen (openssh-client) and minisign; make bench prints what
# verification adds to a 64 MiB submission.
DEB_PACKAGES += openssh-client minisign
BENCH_EXTRA  += trust-bench

.PHONY: trust-bench

trust-bench: ## signed candidates: time verification adds to a 64 MiB submit over loopback (target <= 5%)
	@echo "== signature verification on a 64 MiB submit (loopback HTTP, $$(nproc) cores, load $$(cut -d' ' -f1-3 /proc/loadavg))"
	$(GO) test -run '^$$' -bench '^BenchmarkSignedSubmit64MiB$$' -benchtime 8x -count 1 -timeout 10m ./farm/
