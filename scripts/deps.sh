#!/usr/bin/env bash
# deps.sh PKG... — make sure the Debian packages the tests need are installed.
# As root, missing packages are installed with apt-get. Otherwise the missing
# ones are listed and the tests that need them skip, naming the package;
# under CI=true a missing package is an error.
set -euo pipefail
missing=()
for p in "$@"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	for i in 1 2 3 4 5; do
		if apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}"; then
			exit 0
		fi
		echo "deps: apt-get failed (attempt $i); retrying in 10s" >&2
		sleep 10
	done
	exit 1
fi
echo "deps: missing Debian packages: ${missing[*]} (tests that need them will skip; run 'sudo make deps')" >&2
if [ "${CI:-}" = "true" ]; then
	echo "deps: CI=true: missing packages are a failure" >&2
	exit 1
fi
