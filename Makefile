# hilfarm — run `make help` for the targets.
SHELL   := /bin/bash
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin
STATICCHECK_VERSION := v0.8.2

# Debian packages the test suite needs (installed by `make deps` when root).
# Area makefiles under mk/ append to DEB_PACKAGES, TEST_PREREQS (targets
# run before `go test`) and TEST_EXTRA (targets run after it).
DEB_PACKAGES :=
TEST_PREREQS :=
TEST_EXTRA   :=
BENCH_EXTRA  :=

include $(sort $(wildcard mk/*.mk))

.DEFAULT_GOAL := help
.PHONY: help build test test-go check bench build-pi deps clean

help: ## show this help
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | sort | \
	  awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

build: ## build bin/hilfarm for this machine
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/hilfarm ./cmd/hilfarm

deps: ## install the Debian packages the tests need (root only; otherwise say what is missing)
	@scripts/deps.sh $(DEB_PACKAGES)

test: deps $(TEST_PREREQS) test-go $(TEST_EXTRA) ## run the whole suite with -race (the README's test command)
	@echo "go-tests: $$(grep -a -c '^--- PASS' build/go-test.log) passed, $$(grep -a -c '^--- FAIL' build/go-test.log) failed, $$(grep -a -c '^--- SKIP' build/go-test.log) skipped"

# The verbose log of every test is kept in build/go-test.log; the terminal
# shows the package lines and any failure.
test-go:
	@mkdir -p build
	@set -o pipefail; $(GO) test -race -count=1 -timeout 20m -v ./... 2>&1 | tee build/go-test.log | \
	  grep -a -E '^(ok|FAIL|--- FAIL|--- SKIP|panic:)|^\s+\S+_test\.go:[0-9]+:' ; \
	  status=$${PIPESTATUS[0]}; if [ $$status -ne 0 ]; then echo "go test failed (full log: build/go-test.log)"; fi; exit $$status

check: ## gofmt, go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@command -v staticcheck >/dev/null || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" staticcheck ./...

bench: $(TEST_PREREQS) $(BENCH_EXTRA) ## run the benchmarks and print the figures the issues ask for

build-pi: ## cross-compile static binaries for Raspberry Pi (linux/arm64, linux/arm v7)
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/hilfarm-linux-arm64 ./cmd/hilfarm
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/hilfarm-linux-armv7 ./cmd/hilfarm

clean: ## remove build outputs
	rm -rf $(BIN) build

print-%: ; @echo $($*)
