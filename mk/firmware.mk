# hilfw: hilfarm's own Cortex-M3 test firmware (firmware/cm3), and the
# emulator benchmarks. `make firmware FW_VERSION=1.2.3` builds
# build/firmware/hilfw-1.2.3.elf for qemu-system-arm -M lm3s6965evb
# (FW_BOARD=mps2-an385 builds build/firmware/hilfw-1.2.3-mps2-an385.elf).
DEB_PACKAGES += gcc-arm-none-eabi qemu-system-arm u-boot-qemu
TEST_PREREQS += firmware-examples
BENCH_EXTRA  += bench-emulators

FW_VERSION ?= 0.0.0-dev
FW_BOARD   ?= lm3s6965evb
FW_CC      ?= arm-none-eabi-gcc
FW_CFLAGS  := -mcpu=cortex-m3 -mthumb -Os -ffreestanding -fno-tree-loop-distribute-patterns \
              -nostdlib -nostartfiles -Wall -Wextra -Werror -Wl,-T,firmware/cm3/fw.ld -Wl,--gc-sections
FW_SRC     := firmware/cm3/fw.c firmware/cm3/fw.ld
FW_OUT     := build/firmware

ifeq ($(FW_BOARD),lm3s6965evb)
FW_ELF := $(FW_OUT)/hilfw-$(FW_VERSION).elf
FW_DEFS :=
else ifeq ($(FW_BOARD),mps2-an385)
FW_ELF := $(FW_OUT)/hilfw-$(FW_VERSION)-mps2-an385.elf
FW_DEFS := -DBOARD_MPS2_AN385
else
$(error FW_BOARD must be lm3s6965evb or mps2-an385, not $(FW_BOARD))
endif

.PHONY: firmware firmware-examples bench-emulators

firmware: $(FW_ELF) ## build the Cortex-M3 test firmware (FW_VERSION=x.y.z, FW_BOARD=lm3s6965evb|mps2-an385)

# The version is part of the file name, so a new FW_VERSION always rebuilds.
$(FW_ELF): $(FW_SRC)
	@mkdir -p $(FW_OUT)
	$(FW_CC) $(FW_CFLAGS) $(FW_DEFS) -DVERSION='"$(FW_VERSION)"' -o $@ firmware/cm3/fw.c

# The two candidates of the QEMU example (examples/firmware/README.md):
# examples/specs/cm3-version.hcl expects 1.2.3, so 1.3.0 fails it. The Go
# tests build their own versions; without the compiler this only warns
# (and fails under CI=true, where a skip would hide a missing package).
firmware-examples: ## build hilfw 1.2.3 and 1.3.0 for the QEMU example
	@if ! command -v $(FW_CC) >/dev/null; then \
	  if [ "$$CI" = "true" ]; then echo "firmware: $(FW_CC) missing (Debian package gcc-arm-none-eabi)"; exit 1; fi; \
	  echo "firmware: SKIP: $(FW_CC) missing (install the Debian package gcc-arm-none-eabi)"; exit 0; \
	fi; \
	$(MAKE) --no-print-directory firmware FW_VERSION=1.2.3 && \
	$(MAKE) --no-print-directory firmware FW_VERSION=1.3.0

bench-emulators: ## time QEMU start to the U-Boot prompt (parity with qemu-system-arm launched directly) and to the Cortex-M3 banner through the console path
	$(GO) test -run '^$$' -bench . -benchtime 20x ./fixtures/qemu/ ./fixtures/sim/
