#!/usr/bin/env bash
# Checks a package made by Scripts/package-deb.sh: its files, its units (systemd-analyze
# verify), its man page and completions, and its binary's `--version` and `demo` run from an
# empty directory with a bare environment, nothing of the build tree in reach.
#
#   Scripts/check-deb.sh vmbus_VERSION_ARCH.deb
#
# As root it installs the package with dpkg -i (so its Depends are checked too) and removes it
# afterwards unless it was installed before; otherwise it unpacks it with dpkg-deb -x.
set -euo pipefail
deb="$(readlink -f "$1")"
work="$(mktemp -d)"
installed=""
cleanup() {
    [[ -n "$installed" ]] && dpkg -r vmbus >/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "check-deb: $*" >&2; exit 1; }

expected=(./usr/bin/vmbus ./lib/systemd/system/vmbus-host.service ./lib/systemd/system/vmbus-host@.service
    ./lib/systemd/system/vmbus-fcopy-daemon.service ./usr/share/man/man1/vmbus.1.gz
    ./usr/share/bash-completion/completions/vmbus ./usr/share/zsh/vendor-completions/_vmbus
    ./usr/share/fish/vendor_completions.d/vmbus.fish)
contents="$(dpkg-deb -c "$deb" | awk '{ print $6 }')"
for path in "${expected[@]}"; do grep -qxF "$path" <<<"$contents" || fail "$path missing from the package"; done

if [[ "$(id -u)" == 0 ]] && ! dpkg -s vmbus >/dev/null 2>&1; then
    dpkg -i "$deb" >/dev/null
    installed=yes
    prefix=""
    echo "check-deb: installed with dpkg -i (removed at the end)"
else
    dpkg-deb -x "$deb" "$work/root"
    prefix="$work/root"
    echo "check-deb: unpacked with dpkg-deb -x (not root, or vmbus already installed)"
fi
vmbus="$prefix/usr/bin/vmbus"

# Nothing but the binary: an empty directory, no inherited environment.
mkdir "$work/empty"
cd "$work/empty"
clean=(env -i PATH=/usr/bin:/bin HOME="$work/empty" TMPDIR="$work/empty")
version="$("${clean[@]}" "$vmbus" --version)"
[[ "$version" == "$(dpkg-deb -f "$deb" Version)" ]] || fail "vmbus --version says '$version', the package $(dpkg-deb -f "$deb" Version)"
echo "check-deb: vmbus --version: $version"
start=$SECONDS
"${clean[@]}" "$vmbus" demo --seconds 1 >"$work/demo.out" 2>&1 || { cat "$work/demo.out"; fail "vmbus demo failed"; }
echo "check-deb: vmbus demo: exit 0 in $((SECONDS - start)) s, $(wc -l <"$work/demo.out") lines"
[[ -z "$(ls -A "$work/empty")" ]] || fail "vmbus demo left files behind: $(ls -A "$work/empty")"

# The units as packaged, ExecStart pointing at the binary checked above (verify needs the
# program to exist). Unknown keys are only warnings to systemd-analyze: any output fails.
if command -v systemd-analyze >/dev/null; then
    mkdir "$work/units"
    for unit in "$prefix"/lib/systemd/system/*.service; do
        sed "s#/usr/bin/vmbus#$vmbus#" "$unit" >"$work/units/$(basename "$unit")"
    done
    cp "$work/units/vmbus-host@.service" "$work/units/vmbus-host@check.service"
    report="$(cd "$work/units" && systemd-analyze verify --man=no ./vmbus-host.service ./vmbus-host@check.service ./vmbus-fcopy-daemon.service 2>&1)" ||
        fail "systemd-analyze verify: $report"
    [[ -z "$report" ]] || fail "systemd-analyze verify: $report"
    echo "check-deb: systemd-analyze verify: 3 units clean"
else
    echo "check-deb: no systemd-analyze: units not verified"
fi
if command -v groff >/dev/null; then
    # The ASCII device: the one with the fewest glyphs (a character it lacks is a warning).
    warnings="$(zcat "$prefix/usr/share/man/man1/vmbus.1.gz" | groff -man -Tascii -ww -z 2>&1)"
    [[ -z "$warnings" ]] || fail "man page: $warnings"
fi
bash -n "$prefix/usr/share/bash-completion/completions/vmbus" || fail "bash completion does not parse"
echo "check-deb: ok"
