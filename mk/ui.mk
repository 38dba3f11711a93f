# The web UI (package ui, docs/ui.md): `make ui` rebuilds ui/dist from
# ui/src with esbuild (Node and npm needed; `go build` is not: dist/ is
# committed and embedded). ui-check (after `go test`) rebuilds from the
# lockfile and fails if the committed assets differ. The browser tests
# (farm: TestUIInBrowser) need Debian's chromium.
DEB_PACKAGES += chromium
TEST_PREREQS += ui-deps
TEST_EXTRA   += ui-check
BENCH_EXTRA  += ui-bench ui-list-bench

.PHONY: ui ui-deps ui-check ui-bench ui-list-bench ui-screenshots ui-shots

# The browser tests inject axe-core from ui/node_modules (a dev dependency
# pinned in ui/package-lock.json) into every page.
ui-deps: ## install the UI's npm packages (axe-core for the browser tests' accessibility check)
	@if ! command -v npm >/dev/null; then \
	  echo "ui-deps: npm not found (install Node >= 18 with npm); the browser tests skip axe-core"; \
	  if [ "$${CI:-}" = "true" ]; then echo "ui-deps: CI=true: a skip is a failure" >&2; exit 1; fi; \
	  exit 0; fi
	cd ui && npm ci --no-audit --no-fund

ui: ## rebuild the web UI's assets (ui/dist) from ui/src with npm ci + esbuild
	cd ui && npm ci --no-audit --no-fund && npm run build

ui-check: ## fail if the committed ui/dist differs from a fresh build of ui/src
	@if ! command -v npm >/dev/null; then \
	  echo "ui-check: npm not found (install Node >= 18 with npm); skipping the check of ui/dist"; \
	  if [ "$${CI:-}" = "true" ]; then echo "ui-check: CI=true: a skip is a failure" >&2; exit 1; fi; \
	  exit 0; fi
	cd ui && npm ci --no-audit --no-fund && npm run build
	@git diff --exit-code --stat -- ui/dist && \
	  test -z "$$(git ls-files --others --exclude-standard -- ui/dist)" || \
	  { echo "ui-check: ui/dist is not what ui/src builds to: run 'make ui' and commit ui/dist" >&2; exit 1; }

HILFARM_SCREENSHOTS ?= $(CURDIR)/build/screenshots
ui-shots: ui-deps ## screenshots of every page at 1400x900 and 390x844 (light; dark at 1400x900) in $HILFARM_SCREENSHOTS (default build/screenshots)
	@set -o pipefail; HILFARM_SCREENSHOTS=$(HILFARM_SCREENSHOTS) $(GO) test -race -count=1 -run '^TestUI(PagesIn|In)Browser$$' -v ./farm/ | \
	  grep -a -E '^(ok|FAIL|--- )|^\s+\S+_test\.go:[0-9]+:|^\s{8}'
	@ls $(HILFARM_SCREENSHOTS)/*.png | wc -l | xargs echo "screenshots:"

ui-screenshots: ui-shots

ui-bench: ## console fan-out in-process (10 MB to 1 and 50 websocket viewers) and pty-to-websocket latency at 115200 baud
	$(GO) test -run '^$$' -bench '^Benchmark(ConsoleFanout|ConsoleLatency)' -benchtime 1x -count 1 -timeout 10m ./farm/

ui-list-bench: ## GET /api/v1/jobs pages (newest, filtered, deep cursor) on a store of 100,000 jobs: ms/page (issue 15: <= 50)
	$(GO) test -run '^$$' -bench '^BenchmarkJobList100k$$' -benchtime 20x -count 1 -timeout 10m ./farm/
