# hilfw: hilfarm's own Cortex-M3 test firmware (firmware/cm3), and the
# emulator benchmarks. `make firmware FW_VERSION=1.2.3` builds
# build/firmware/hilfw-1.2.3.elf for qemu-system-arm -M lm3s6965evb
# (FW_BOARD=mps2-an385 builds build/firmware/hilfw-1.2.3-mps2-an385.elf).
DEB_PACKAGES += gcc-arm-none-eabi qemu-system-arm u-boot-qemu
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

# The two candidates of the QEMU examples (examples/firmware/README.md).
firmware-examples: ## build hilfw 1.0.0 and 1.1.0 for the QEMU examples
	@$(MAKE) --no-print-directory firmware FW_VERSION=1.0.0
	@$(MAKE) --no-print-directory firmware FW_VERSION=1.1.0

bench-emulators: ## time QEMU start to the U-Boot prompt and to the Cortex-M3 banner through the console path
	$(GO) test -run '^$$' -bench . -benchtime 20x ./fixtures/qemu/ ./fixtures/sim/
