# The demo: serve the example farm's emulated boards (sim always, QEMU when
# installed) on a temporary data dir, submit example jobs for a good and a
# regressed candidate, print the URL and an admin token. Ctrl-C stops it.
# DEMO_ARGS passes flags to `hilfarm demo` (e.g. DEMO_ARGS="--listen :9090").
DEMO_ARGS ?=

.PHONY: demo

demo: build firmware-examples ## serve the example farm's emulated boards and submit example jobs (Ctrl-C stops)
	$(BIN)/hilfarm demo $(DEMO_ARGS)

# The API's own benchmark: HTTP submissions per second (multipart, spec
# validation, firmware store, queue insert), nothing running.
BENCH_EXTRA += bench-api

.PHONY: bench-api
bench-api: ## API: submissions per second through HTTP from parallel clients
	$(GO) test -run '^$$' -bench 'APISubmit' -benchtime 500x ./farm/
