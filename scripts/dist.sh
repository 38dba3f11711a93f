#!/usr/bin/env bash
# dist.sh OUTDIR [ARCH...]: build hilfarm's release files into OUTDIR:
# for each Debian ARCH (amd64 arm64 armhf by default) a .deb and a
# tarball, then SHA256SUMS and a CycloneDX SBOM (hilfarm.cdx.json).
# VERSION (environment) is the release version; DEB_VERSION, if unset,
# is derived from it (a Debian version must start with a digit).
# Needs go, dpkg-deb, gzip; works offline with a warm module cache.
set -euo pipefail
out=${1:?usage: dist.sh OUTDIR [ARCH...]}
shift
arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(amd64 arm64 armhf)
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
if [ -z "${DEB_VERSION:-}" ]; then
	if [[ $VERSION =~ ^v?([0-9].*)$ ]]; then
		DEB_VERSION=${BASH_REMATCH[1]//-/\~}
	else
		DEB_VERSION="0~git$(git log -1 --format=%cd --date=format:%Y%m%d%H%M%S 2>/dev/null || echo 0).$(git rev-parse --short HEAD 2>/dev/null || echo 0)"
	fi
fi
# Reproducible timestamps in the archives.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

goarch() {
	case $1 in
	amd64) echo "GOARCH=amd64" ;;
	arm64) echo "GOARCH=arm64" ;;
	armhf) echo "GOARCH=arm GOARM=7" ;;
	*) echo "dist.sh: unknown arch $1" >&2; exit 2 ;;
	esac
}

# The man page: the command list and each command's --help, from the
# binary itself (built for this machine).
host_bin="$work/hilfarm-host"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o "$host_bin" ./cmd/hilfarm
man="$work/hilfarm.1"
{
	echo ".TH HILFARM 1 \"$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)\" \"hilfarm $VERSION\" \"User Commands\""
	echo ".SH NAME"
	echo "hilfarm \\- hardware-in-the-loop test farm controller"
	echo ".SH SYNOPSIS"
	echo ".B hilfarm"
	echo "\\fICOMMAND\\fR [\\fIflags\\fR] [\\fIargs\\fR]"
	echo ".SH DESCRIPTION"
	echo "One binary serves the farm (boards, queue, web UI, API), runs specs locally,"
	echo "validates and formats HCL, and submits jobs from CI. Flags may come before or"
	echo "after the arguments. Exit status: 0 passed or done, 1 failed, 2 error or usage,"
	echo "3 rejected (do not retry)."
	echo ".SH COMMANDS"
	for c in $("$host_bin" help | awk '/^Commands:/{f=1;next} f&&!NF{exit} f{print $1}'); do
		echo ".SS $c"
		echo ".nf"
		"$host_bin" "$c" --help 2>&1 | sed -e 's/\\/\\e/g' -e 's/^\./\\\&./' -e "s/^'/\\\\\&'/"
		echo ".fi"
	done
	echo ".SH FILES"
	echo ".TP"
	echo ".I /etc/hilfarm/farm.hcl"
	echo "the farm of the hilfarm service"
	echo ".TP"
	echo ".I /var/lib/hilfarm"
	echo "the service's data dir: the store and the firmware blobs (see \\fBhilfarm backup\\fR)"
	echo ".SH SEE ALSO"
	echo ".BR systemctl (1),"
	echo ".BR journalctl (1)"
} >"$man"

"$host_bin" completion bash >"$work/hilfarm.bash"
"$host_bin" completion zsh >"$work/_hilfarm"
"$host_bin" completion fish >"$work/hilfarm.fish"

for arch in "${arches[@]}"; do
	bin="$work/$arch/hilfarm"
	mkdir -p "$work/$arch"
	if [ "$(goarch "$arch")" = "GOARCH=$(go env GOARCH)" ] && [ "$(go env GOOS)" = linux ]; then
		cp "$host_bin" "$bin" # the same build
	else
		env CGO_ENABLED=0 GOOS=linux $(goarch "$arch") go build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o "$bin" ./cmd/hilfarm
	fi

	# .deb
	pkg="$work/deb-$arch"
	install -D -m 0755 "$bin" "$pkg/usr/bin/hilfarm"
	install -D -m 0644 deploy/hilfarm.service "$pkg/usr/lib/systemd/system/hilfarm.service"
	install -D -m 0644 deploy/sysusers.conf "$pkg/usr/lib/sysusers.d/hilfarm.conf"
	install -D -m 0644 deploy/tmpfiles.conf "$pkg/usr/lib/tmpfiles.d/hilfarm.conf"
	install -D -m 0644 deploy/farm.hcl "$pkg/etc/hilfarm/farm.hcl"
	install -D -m 0644 "$man" "$pkg/usr/share/man/man1/hilfarm.1"
	gzip -9n "$pkg/usr/share/man/man1/hilfarm.1"
	install -D -m 0644 "$work/hilfarm.bash" "$pkg/usr/share/bash-completion/completions/hilfarm"
	install -D -m 0644 "$work/_hilfarm" "$pkg/usr/share/zsh/vendor-completions/_hilfarm"
	install -D -m 0644 "$work/hilfarm.fish" "$pkg/usr/share/fish/vendor_completions.d/hilfarm.fish"
	doc="$pkg/usr/share/doc/hilfarm"
	install -D -m 0644 README.md "$doc/README.md"
	install -D -m 0644 THIRD_PARTY_LICENSES.md "$doc/THIRD_PARTY_LICENSES.md"
	gzip -9n "$doc/THIRD_PARTY_LICENSES.md"
	install -D -m 0644 deploy/debian/copyright "$doc/copyright"
	printf 'hilfarm (%s) unstable; urgency=medium\n\n  * Release %s.\n\n -- hilfarm maintainers <hilfarm@example.org>  %s\n' \
		"$DEB_VERSION" "$VERSION" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")" >"$doc/changelog"
	gzip -9n "$doc/changelog"
	install -D -m 0644 deploy/debian/lintian-overrides "$pkg/usr/share/lintian/overrides/hilfarm"
	mkdir -p "$pkg/DEBIAN"
	install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$pkg/DEBIAN/"
	echo /etc/hilfarm/farm.hcl >"$pkg/DEBIAN/conffiles"
	size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
	cat >"$pkg/DEBIAN/control" <<CONTROL
Package: hilfarm
Version: $DEB_VERSION
Architecture: $arch
Maintainer: hilfarm maintainers <hilfarm@example.org>
Installed-Size: $size
Pre-Depends: systemd | systemd-standalone-sysusers | systemd-sysusers
Recommends: systemd
Suggests: qemu-system-arm, openocd
Section: devel
Priority: optional
Homepage: https://github.com/hilfarm/hilfarm
Description: hardware-in-the-loop test farm controller
 hilfarm runs firmware test specs on a farm of development boards: it
 switches their power, flashes candidates, records every serial console,
 queues jobs from CI and shows the results in a web UI. One static binary,
 a systemd service (hilfarm.service) running as its own user, its farm in
 /etc/hilfarm/farm.hcl and its data in /var/lib/hilfarm.
CONTROL
	(cd "$pkg" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort | xargs md5sum >DEBIAN/md5sums)
	find "$pkg" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
	dpkg-deb --root-owner-group -Zxz --build "$pkg" "$out/hilfarm_${DEB_VERSION}_${arch}.deb" >/dev/null

	# tarball
	tdir="$work/tar-$arch/hilfarm-$VERSION-linux-$arch"
	mkdir -p "$tdir/deploy"
	cp "$bin" "$tdir/hilfarm"
	cp LICENSE THIRD_PARTY_LICENSES.md README.md "$tdir/"
	cp "$man" "$tdir/hilfarm.1"
	cp deploy/hilfarm.service deploy/sysusers.conf deploy/tmpfiles.conf deploy/farm.hcl "$tdir/deploy/"
	mkdir -p "$tdir/completions"
	cp "$work/hilfarm.bash" "$work/_hilfarm" "$work/hilfarm.fish" "$tdir/completions/"
	tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
		-C "$work/tar-$arch" -czf "$out/hilfarm-$VERSION-linux-$arch.tar.gz" "hilfarm-$VERSION-linux-$arch"
done

go run ./scripts/thirdparty -sbom "$out/hilfarm-$VERSION.cdx.json" -version "$VERSION"
(cd "$out" && rm -f SHA256SUMS && sha256sum -- *.deb *.tar.gz *.cdx.json >SHA256SUMS)
echo "dist: $out:"
(cd "$out" && ls -1)
