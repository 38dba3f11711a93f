# Raspberry Pi binaries, proven to run under user-mode emulation.
DEB_PACKAGES += qemu-user-static
TEST_EXTRA   += pi-smoke

.PHONY: pi-smoke
pi-smoke: build-pi ## run the arm64 and armv7 binaries under qemu-user on the examples
	@for b in "qemu-aarch64-static $(BIN)/hilfarm-linux-arm64" "qemu-arm-static $(BIN)/hilfarm-linux-armv7"; do \
	  set -- $$b; \
	  if ! command -v $$1 >/dev/null; then \
	    if [ "$$CI" = "true" ]; then echo "pi-smoke: $$1 missing (Debian package qemu-user-static)"; exit 1; fi; \
	    echo "pi-smoke: SKIP: $$1 missing (install the Debian package qemu-user-static)"; continue; \
	  fi; \
	  echo "pi-smoke: $$2 version && validate examples"; \
	  $$1 $$2 version || exit 1; \
	  $$1 $$2 validate --farm examples/farm.hcl examples/specs/*.hcl examples/health/*.hcl || exit 1; \
	done
