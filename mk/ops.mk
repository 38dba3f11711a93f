# Operations (issue 14): the licence listing, packages, deploy/ assets.
# THIRD_PARTY_LICENSES.md is generated from the Go module graph and
# ui/package-lock.json; `make check` fails when it is stale. It needs only
# the module cache (offline once `go mod download` has run).
.PHONY: licenses licenses-check

check: licenses-check

licenses: ## regenerate THIRD_PARTY_LICENSES.md from the module graph and the npm lockfile
	$(GO) run ./scripts/thirdparty

licenses-check:
	$(GO) run ./scripts/thirdparty -check

# The completion test (cmd/hilfarm TestCompletionScripts) has zsh and fish
# parse their scripts.
DEB_PACKAGES += zsh fish
