#!/usr/bin/env bash
# run.sh — run hilfarm's GPIO tests against a real kernel's gpio-sim in a
# QEMU (TCG) VM (issue 7). Called by `make gpio-vm-test`.
#
#   test/gpiovm/run.sh            build (or reuse) the kernel, run the tests
#   test/gpiovm/run.sh kernel     only build (or reuse) the kernel
#
# Steps:
#  1. The kernel: Debian's /usr/src/linux-source-6.1.tar.xz, `make tinyconfig`
#     plus the fragment kernel.config (applied with scripts/config), bzImage.
#     Cached in ${HILFARM_CACHE:-$HOME/.cache/hilfarm}/gpiovm/kernel-<hash>,
#     where <hash> covers kernel.config, the linux-source package version and
#     the build recipe, so an edit rebuilds. About 3 minutes on 2 cores.
#  2. The test binaries: `CGO_ENABLED=0 go test -c -tags gpiosim` for each
#     package in GPIOVM_PKGS (default ./fixtures/gpio).
#  3. An uncompressed newc cpio initramfs: busybox-static, the /init script
#     next to this file, the test binaries in /tests.
#  4. Boot it under qemu-system-x86_64 -accel tcg with a bounded timeout
#     (GPIOVM_TIMEOUT seconds, default 300), print the console, and check
#     one "HILFARM-GPIOVM-RESULT <name> exit=<code>" marker per binary.
#     A non-zero code or a missing marker fails the run.
#
# Environment: HILFARM_CACHE, GPIOVM_PKGS, GPIOVM_TIMEOUT, GPIOVM_TESTFLAGS
# (extra flags for each test binary, e.g. "-test.run TestPower"), GO, JOBS
# (kernel make -j, default 2).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
GO=${GO:-go}
JOBS=${JOBS:-2}
cache=${HILFARM_CACHE:-$HOME/.cache/hilfarm}/gpiovm
src_tar=/usr/src/linux-source-6.1.tar.xz
timeout_s=${GPIOVM_TIMEOUT:-300}
pkgs=${GPIOVM_PKGS:-./fixtures/gpio}

log() { echo "gpiovm: $*" >&2; }
die() { echo "gpiovm: FAIL: $*" >&2; exit 1; }

need() {
	local tool=$1 pkg=$2
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found (install the Debian package $pkg, or run 'make deps' as root)"
}

# kernel_hash names the cached kernel: the config fragment, the source
# package's version and the part of this script that builds it.
kernel_hash() {
	local ver
	ver=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null || stat -c '%s %Y' "$src_tar")
	{
		cat "$here/kernel.config"
		echo "linux-source-6.1 $ver"
		sed -n '/^build_kernel()/,/^}/p' "$0"
	} | sha256sum | cut -c1-16
}

# apply_fragment applies kernel.config to .config in the current directory
# with scripts/config; check_fragment verifies the result after olddefconfig.
apply_fragment() {
	local line opt
	while IFS= read -r line; do
		if [[ $line =~ ^CONFIG_([A-Za-z0-9_]+)=y$ ]]; then
			scripts/config --file .config --enable "${BASH_REMATCH[1]}"
		elif [[ $line =~ ^#\ CONFIG_([A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
			scripts/config --file .config --disable "${BASH_REMATCH[1]}"
		elif [[ -n $line && $line != \#* ]]; then
			die "kernel.config: cannot parse line: $line"
		fi
	done <"$here/kernel.config"
}

check_fragment() {
	local line bad=0 got
	while IFS= read -r line; do
		if [[ $line =~ ^CONFIG_([A-Za-z0-9_]+)=y$ ]]; then
			got=$(scripts/config --file .config --state "${BASH_REMATCH[1]}")
			[[ $got == y ]] || { log "kernel config: CONFIG_${BASH_REMATCH[1]} wanted y, got $got"; bad=1; }
		elif [[ $line =~ ^#\ CONFIG_([A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
			got=$(scripts/config --file .config --state "${BASH_REMATCH[1]}")
			[[ $got == n || $got == undef ]] || { log "kernel config: CONFIG_${BASH_REMATCH[1]} wanted n, got $got"; bad=1; }
		fi
	done <"$here/kernel.config"
	[[ $bad == 0 ]] || die "kernel config does not hold what kernel.config asks for (a dependency is missing?)"
}

build_kernel() {
	local dir=$1 tmp=$1.tmp start
	start=$(date +%s)
	rm -rf "$tmp"
	mkdir -p "$tmp/src"
	log "extracting $src_tar"
	tar -xf "$src_tar" -C "$tmp/src" --strip-components=1
	(
		cd "$tmp/src"
		make -s tinyconfig
		apply_fragment
		make -s olddefconfig
		check_fragment
		log "building bzImage (make -j$JOBS; about 3 minutes on 2 idle cores)"
		make -s -j"$JOBS" bzImage >"$tmp/build.log" 2>&1 || { tail -n 50 "$tmp/build.log" >&2; die "kernel build failed (log: $tmp/build.log)"; }
	)
	cp "$tmp/src/arch/x86/boot/bzImage" "$tmp/bzImage"
	cp "$tmp/src/.config" "$tmp/config"
	rm -rf "$tmp/src"
	rm -rf "$dir"
	mv "$tmp" "$dir"
	log "kernel built in $(($(date +%s) - start)) s: $dir/bzImage ($(stat -c %s "$dir/bzImage") bytes)"
}

# ensure_kernel prints the path of a bzImage for the current config,
# building it under a lock when it is not cached.
ensure_kernel() {
	local h dir
	[[ -r $src_tar ]] || die "$src_tar not found (install the Debian package linux-source-6.1)"
	h=$(kernel_hash)
	dir=$cache/kernel-$h
	mkdir -p "$cache"
	exec 9>"$cache/lock"
	flock 9
	if [[ -s $dir/bzImage ]]; then
		log "kernel cached: $dir/bzImage (no kernel build)"
	else
		need gcc gcc
		need make make
		need flex flex
		need bison bison
		need bc bc
		need xz xz-utils
		build_kernel "$dir" >&2
		# Drop kernels built from older configs.
		find "$cache" -maxdepth 1 -name 'kernel-*' ! -name "kernel-$h" -exec rm -rf {} +
	fi
	flock -u 9
	exec 9>&-
	echo "$dir/bzImage"
}

t0=$(date +%s.%N)
kernel=$(ensure_kernel)
t1=$(date +%s.%N)
[[ ${1:-} == kernel ]] && exit 0

need qemu-system-x86_64 qemu-system-x86
need cpio cpio
need bc bc
# The initramfs has no libc: busybox must be the static build (Debian's
# busybox package also installs /bin/busybox, dynamically linked).
[[ -x /bin/busybox ]] || die "/bin/busybox not found (install the Debian package busybox-static)"
if command -v dpkg-query >/dev/null && [[ $(dpkg-query -S /bin/busybox 2>/dev/null) != busybox-static:* ]]; then
	die "/bin/busybox is not from busybox-static, so it is probably dynamically linked (install the Debian package busybox-static)"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/hilfarm-gpiovm.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root/bin" "$work/root/tests" "$work/root/proc" "$work/root/sys" "$work/root/dev" "$work/root/tmp"
cp /bin/busybox "$work/root/bin/busybox"
cp "$here/init" "$work/root/init"
chmod 0755 "$work/root/init"
printf '%s\n' "${GPIOVM_TESTFLAGS:-}" >"$work/root/tests/flags"

start=$(date +%s.%N)
names=()
for p in $pkgs; do
	name=${p#./}
	name=${name//\//_}
	log "building test binary for $p"
	(cd "$root" && CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $GO test -c -tags gpiosim -o "$work/root/tests/$name.test" "$p") ||
		die "go test -c -tags gpiosim $p failed"
	names+=("$name")
done
(cd "$work/root" && find . -print0 | LC_ALL=C sort -z | cpio --quiet -o -0 -H newc -R 0:0 >"$work/initramfs.cpio")
built=$(date +%s.%N)

log "booting $kernel (timeout ${timeout_s} s)"
rc=0
timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 -accel tcg -m 256 -smp 1 -nodefaults -no-user-config \
	-kernel "$kernel" -initrd "$work/initramfs.cpio" \
	-append 'console=ttyS0 rdinit=/init panic=-1 quiet' \
	-display none -serial stdio -no-reboot -nic none </dev/null 2>&1 |
	tr -d '\r' | tee "$work/console.log" || rc=$?
done_t=$(date +%s.%N)
[[ $rc == 0 ]] || log "qemu exited with status $rc (124 = timed out after ${timeout_s} s)"

fail=0
for n in "${names[@]}"; do
	m=$(grep -E "^HILFARM-GPIOVM-RESULT $n exit=[0-9]+$" "$work/console.log" | tail -n 1 || true)
	if [[ -z $m ]]; then
		log "$n: no result marker (the VM died, hung or timed out)"
		fail=1
	elif [[ $m != *" exit=0" ]]; then
		log "$n: FAILED (${m##* })"
		fail=1
	else
		log "$n: ok"
	fi
done
grep -q '^HILFARM-GPIOVM-DONE$' "$work/console.log" || { log "the VM did not reach the end of /init"; fail=1; }
log "$(printf 'times: kernel %.1f s, test build + initramfs %.1f s, VM boot + tests %.1f s, total %.1f s' \
	"$(echo "$t1 - $t0" | bc)" "$(echo "$built - $start" | bc)" "$(echo "$done_t - $built" | bc)" "$(echo "$done_t - $t0" | bc)")"
[[ $fail == 0 ]] || die "gpio-sim VM tests failed"
log "PASS"
