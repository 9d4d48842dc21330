#!/usr/bin/env bash
# Builds vmbus as a release binary with the Swift runtime linked in (--static-swift-stdlib) and
# packs it as a Debian package: /usr/bin/vmbus, the systemd units of contrib/systemd, the man
# page vmbus(1) and bash, zsh and fish completions, all made from the binary's own help.
#
#   Scripts/package-deb.sh [--output DIR] [--jobs N]
#
# Writes DIR/vmbus_VERSION_ARCH.deb (DIR: the current directory) and prints its path last.
# Needs swift, dpkg-deb, python3 (the man page), strip and ldd. The release build has its own
# scratch path, .build-release-static (SCRATCH overrides it), so it never replaces the
# debug build's objects.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
output="$PWD"
jobs=()
while (($#)); do
    case "$1" in
        --output) output="$2"; shift 2 ;;
        --jobs) jobs=(-j "$2"); shift 2 ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "package-deb.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
mkdir -p "$output"
output="$(cd "$output" && pwd)"
scratch="${SCRATCH:-$root/.build-release-static}"
cd "$root"

# The build's own output goes to standard error: standard output is the package's path only.
swift build -c release --static-swift-stdlib --product vmbus --scratch-path "$scratch" ${jobs[@]+"${jobs[@]}"} >&2
binary="$(swift build -c release --static-swift-stdlib --scratch-path "$scratch" --show-bin-path)/vmbus"
version="$("$binary" --version)"
arch="$(dpkg --print-architecture)"

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
# mktemp's 0700 would become the mode of the package's root directory, that is of /.
chmod 0755 "$stage"
install -D -m 0755 "$binary" "$stage/usr/bin/vmbus"
# Symbols only: the Swift runtime's reflection metadata lives in sections strip keeps.
strip --strip-unneeded "$stage/usr/bin/vmbus"
for unit in contrib/systemd/*.service; do
    install -D -m 0644 "$unit" "$stage/lib/systemd/system/$(basename "$unit")"
done
mkdir -p "$stage/usr/share/man/man1"
"$binary" --experimental-dump-help | python3 Scripts/vmbus-man.py "$version" | gzip -9n > "$stage/usr/share/man/man1/vmbus.1.gz"
install -d "$stage/usr/share/bash-completion/completions" "$stage/usr/share/zsh/vendor-completions" \
    "$stage/usr/share/fish/vendor_completions.d"
"$binary" --generate-completion-script bash > "$stage/usr/share/bash-completion/completions/vmbus"
"$binary" --generate-completion-script zsh > "$stage/usr/share/zsh/vendor-completions/_vmbus"
"$binary" --generate-completion-script fish > "$stage/usr/share/fish/vendor_completions.d/vmbus.fish"
install -D -m 0644 README.md "$stage/usr/share/doc/vmbus/README.md"
for doc in OPERATIONS SERVICING ADMIN; do install -m 0644 "docs/$doc.md" "$stage/usr/share/doc/vmbus/"; done

# Depends: the package of every shared library the binary still loads (libc, libm,
# libstdc++, libgcc_s: the Swift runtime is inside it).
depends="$(ldd "$stage/usr/bin/vmbus" | awk '$3 ~ /^\// { print $3 }' | while read -r library; do
    dpkg -S "$(readlink -f "$library")" 2>/dev/null || dpkg -S "$library"
done | cut -d: -f1 | sort -u | while read -r package; do
    echo "$package (>= $(dpkg-query -W -f='${Version}' "$package" | sed 's/-[^-]*$//'))"
done | paste -sd, | sed 's/,/, /g')"
size="$(du -sk "$stage" | cut -f1)"
mkdir -p "$stage/DEBIAN"
cat > "$stage/DEBIAN/control" <<CONTROL
Package: vmbus
Version: $version
Architecture: $arch
Maintainer: swift-vmbus developers <swift-vmbus@localhost>
Installed-Size: $size
Depends: $depends
Section: admin
Priority: optional
Description: Hyper-V VMBus host and guest in user space (swift-vmbus)
 The vmbus command: a VMBus host serving devices (echo, integration services,
 hvsock, synthetic NIC and SCSI) to guest processes over a Unix socket, a guest,
 a Copy-VMFile daemon for Linux guests on Hyper-V (uio_hv_generic), a capture
 tool and decoders. Units: vmbus-host.service, vmbus-host@.service,
 vmbus-fcopy-daemon.service (not enabled on install).
CONTROL
package="$output/vmbus_${version}_${arch}.deb"
dpkg-deb --build --root-owner-group "$stage" "$package" >/dev/null
echo "$package"
