#!/usr/bin/env bash
# dist-test.sh: build the amd64 .deb (make dist builds all three arches)
# and check it as an operator would meet it:
#  - lintian clean (each waiver in deploy/debian/lintian-overrides says why);
#  - installed with dpkg --root into an empty tree: the user and its groups,
#    the state dir, the conffile, the binary;
#  - systemd-analyze verify of the unit in that tree, with no output;
#  - the service's own command line runs on the shipped farm.hcl;
#  - an upgrade from the previous .deb keeps a locally edited conffile and
#    the data (a token created under the old version works under the new).
# Needs dpkg-deb, lintian, systemd (systemd-analyze, systemd-sysusers).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
work=$(mktemp -d)
pid=""
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "dist-test: FAIL: $*" >&2; exit 1; }
for tool in dpkg-deb lintian systemd-analyze systemd-sysusers; do
	command -v "$tool" >/dev/null || fail "$tool is not installed (make deps installs DEB_PACKAGES)"
done

VERSION=0.2.0 DEB_VERSION=0.2.0 scripts/dist.sh "$work/new" amd64 >/dev/null
new="$work/new/hilfarm_0.2.0_amd64.deb"
# The previous release: the same package at a lower version.
dpkg-deb -R "$new" "$work/oldpkg"
sed -i 's/^Version: .*/Version: 0.1.0/' "$work/oldpkg/DEBIAN/control"
dpkg-deb --root-owner-group -Zxz --build "$work/oldpkg" "$work/hilfarm_0.1.0_amd64.deb" >/dev/null
old="$work/hilfarm_0.1.0_amd64.deb"
(cd "$work/new" && sha256sum -c --quiet SHA256SUMS) || fail "SHA256SUMS does not match"
grep -q '"bomFormat": "CycloneDX"' "$work/new/hilfarm-0.2.0.cdx.json" &&
	grep -q '"purl": "pkg:golang/modernc.org/sqlite@' "$work/new/hilfarm-0.2.0.cdx.json" ||
	fail "the SBOM is not a CycloneDX document listing the modules"

echo "dist-test: lintian"
if ! out=$(lintian --fail-on error,warning "$new" 2>&1); then
	echo "$out" | grep -v 'running with root privileges' >&2
	fail "lintian reports errors or warnings (above)"
fi

R="$work/root"
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates"
touch "$R/var/lib/dpkg/status"
dpkgr() { dpkg --root="$R" --force-script-chrootless --force-depends --log=/dev/null "$@" </dev/null >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg $*"; }; }
echo "dist-test: install 0.1.0 into an empty root"
dpkgr -i "$old"
grep -q '^hilfarm:' "$R/etc/passwd" || fail "no hilfarm user"
uid=$(awk -F: '$1=="hilfarm"{print $3}' "$R/etc/passwd")
grep -Eq '^gpio:.*[:,]hilfarm(,|$)' "$R/etc/group" || fail "hilfarm is not in group gpio"
grep -Eq '^dialout:.*[:,]hilfarm(,|$)' "$R/etc/group" || fail "hilfarm is not in group dialout"
[ "$(stat -c '%u %a' "$R/var/lib/hilfarm")" = "$uid 750" ] || fail "/var/lib/hilfarm is not owned by hilfarm with mode 750"
grep -qx /etc/hilfarm/farm.hcl "$R/var/lib/dpkg/info/hilfarm.conffiles" || fail "farm.hcl is not a conffile"
"$R/usr/bin/hilfarm" --version | grep -q 'hilfarm 0.2.0' || fail "the installed binary's version"

echo "dist-test: systemd-analyze verify"
cp -n /usr/lib/systemd/system/*.target /usr/lib/systemd/system/*.slice "$R/usr/lib/systemd/system/" 2>/dev/null || true
out=$(systemd-analyze verify --man=no --root="$R" hilfarm.service 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify: $out"
for k in 'User=hilfarm' 'StateDirectory=hilfarm' 'ProtectSystem=strict' 'NoNewPrivileges=yes' 'Restart=on-failure'; do
	grep -qx "$k" "$R/usr/lib/systemd/system/hilfarm.service" || fail "the unit lacks $k"
done

echo "dist-test: the service's command line on the shipped farm, then data"
"$R/usr/bin/hilfarm" validate "$R/etc/hilfarm/farm.hcl" >/dev/null || fail "the shipped farm.hcl is not valid"
data="$R/var/lib/hilfarm"
"$R/usr/bin/hilfarm" serve --farm "$R/etc/hilfarm/farm.hcl" --data "$data" --listen 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
pid=$!
for _ in $(seq 1 600); do
	grep -q 'token create' "$work/serve.out" && break
	kill -0 "$pid" 2>/dev/null || { cat "$work/serve.err"; fail "serve stopped"; }
	sleep 0.1
done
grep -q 'token create' "$work/serve.out" || { cat "$work/serve.err"; fail "serve did not print its banner"; }
url=$(awk '/URL:/{print $2}' "$work/serve.out")
kill -TERM "$pid"; wait "$pid" || fail "serve did not stop cleanly on SIGTERM"
pid=""
tok=$("$R/usr/bin/hilfarm" token create --data "$data" --name admin --role admin 2>/dev/null)
echo "# edited by the operator" >>"$R/etc/hilfarm/farm.hcl"

echo "dist-test: upgrade to 0.2.0"
dpkgr -i "$new"
dpkg-query --root="$R" -W -f '${Version}' hilfarm | grep -qx 0.2.0 || fail "not upgraded"
grep -q '^# edited by the operator' "$R/etc/hilfarm/farm.hcl" || fail "the upgrade replaced the edited conffile"
"$R/usr/bin/hilfarm" token list --data "$data" --json | grep -q '"name": "admin"' || fail "the token is gone after the upgrade"
"$R/usr/bin/hilfarm" serve --farm "$R/etc/hilfarm/farm.hcl" --data "$data" --listen 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
pid=$!
for _ in $(seq 1 600); do
	grep -q 'URL:' "$work/serve.out" && break
	kill -0 "$pid" 2>/dev/null || { cat "$work/serve.err"; fail "serve stopped after the upgrade"; }
	sleep 0.1
done
url=$(awk '/URL:/{print $2}' "$work/serve.out")
[ -n "$url" ] || fail "serve did not start after the upgrade"
"$R/usr/bin/hilfarm" boards --server "$url" --token "$tok" | grep -q sim-01 || fail "the old token does not work after the upgrade"
grep -q 'token create' "$work/serve.out" && fail "serve thinks the upgraded store has no token"
kill -TERM "$pid"; wait "$pid" || fail "serve did not stop cleanly"
pid=""

echo "dist-test: remove"
dpkgr -r hilfarm
[ ! -e "$R/usr/bin/hilfarm" ] || fail "the binary is left after remove"
[ -e "$data/hilfarm.db" ] || fail "remove deleted the data"
echo "dist-test: ok"
