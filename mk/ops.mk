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

# `make dist`: .deb and tarball for amd64, arm64 and armhf, SHA256SUMS and
# a CycloneDX SBOM in build/dist (scripts/dist.sh). dist-test (in make
# test) checks the amd64 .deb: lintian, dpkg --root install, systemd-analyze
# verify, upgrade from the previous .deb (scripts/dist-test.sh).
DEB_PACKAGES += lintian systemd
TEST_EXTRA   += dist-test
.PHONY: dist dist-test

dist: ## build the release files (.deb, tarball per arch, SHA256SUMS, SBOM) into build/dist
	rm -rf build/dist
	VERSION=$(VERSION) scripts/dist.sh build/dist amd64 arm64 armhf

dist-test:
	scripts/dist-test.sh

# deploy/: the alert rules are checked with promtool (Debian package
# prometheus) by cmd/hilfarm TestDeployAssets, which also checks that every
# metric named in deploy/ exists in /metrics.
DEB_PACKAGES += prometheus
