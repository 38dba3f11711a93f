# GPIO drivers against a real kernel: gpio-sim in a QEMU (TCG) VM (issue 7).
# test/gpiovm/run.sh builds a tiny kernel from Debian's linux-source-6.1
# (cached under $HILFARM_CACHE, default ~/.cache/hilfarm, about 3 minutes
# cold), the fixtures/gpio tests with -tags gpiosim, boots them and fails on
# any failing or missing result.
DEB_PACKAGES += qemu-system-x86 busybox-static cpio flex bison libelf-dev bc linux-source-6.1 gcc make xz-utils
TEST_EXTRA   += gpio-vm-test

.PHONY: gpio-vm-test gpio-vm-kernel
gpio-vm-test: ## run the GPIO driver tests in a gpio-sim VM (builds the kernel once)
	@GO=$(GO) test/gpiovm/run.sh

gpio-vm-kernel: ## build (or reuse) the gpio-sim VM kernel only
	@test/gpiovm/run.sh kernel
