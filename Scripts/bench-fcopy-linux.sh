#!/usr/bin/env bash
# Linux's hv_fcopy_uio_daemon against `vmbus fcopy-daemon`, on the same uio export, in
# interleaved rounds.
#
#   Scripts/bench-fcopy-linux.sh [--linux-src DIR] [--rounds N] [--mib N]
#
# Compiles tools/hv/hv_fcopy_uio_daemon.c with tools/hv/vmbus_bufring.c, unmodified, from a
# Linux tree of 6.10 or later (--linux-src or $LINUX_SRC; without one the files are fetched
# from kernel.org at tag $LINUX_TAG, v6.12, into ~/.cache/swift-vmbus/), and runs it under the
# preload library (docs/UIO-EXPORT.md) on the file-copy device of `vmbus host --uio-export`.
# Each round copies the same --mib MiB of random data (100) with `vmbus ctl copy` once through
# Linux's daemon and once through ours, to the same absolute guest path, times the copy's wall
# time, and checks every copy's SHA-256. Ours writes a temporary file, fsyncs it and renames it
# over the target inside the timed copy; Linux's writes in place and never syncs.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/linux-rings/sources.sh"  # repo, linux_src, tag and linux_sources
rounds=5
mib=100

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --linux-src) linux_src=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --mib) mib=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-fcopy-linux: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

files=(tools/hv/hv_fcopy_uio_daemon.c tools/hv/vmbus_bufring.c tools/hv/vmbus_bufring.h)
linux_src=$(linux_sources bench-fcopy-linux "$linux_src" "$tag" "${files[@]}")

build=$repo/.build-linux-rings
mkdir -p "$build"
cc -O2 -Wall -Wno-address-of-packed-member -I"$linux_src/tools/hv" \
    "$linux_src/tools/hv/hv_fcopy_uio_daemon.c" "$linux_src/tools/hv/vmbus_bufring.c" -o "$build/hv_fcopy_uio_daemon"
(cd "$repo" && swift build -c release --scratch-path .build-release --product vmbus >/dev/null \
    && swift build -c release --scratch-path .build-release --product vmbus-uio-preload >/dev/null)
vmbus=$repo/.build-release/release/vmbus
preload=$repo/.build-release/release/libvmbus-uio-preload.so

work=$(mktemp -d)
host_pid=
daemon_pid=
cleanup() {
    [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
    [ -n "$host_pid" ] && kill "$host_pid" 2>/dev/null && wait "$host_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

head -c $((mib << 20)) /dev/urandom > "$work/src.bin"
want=$(sha256sum < "$work/src.bin" | cut -d' ' -f1)
mkdir -p "$work/out"
"$vmbus" host --listen "$work/h.sock" --uio-export "$work/ux" > "$work/host.log" 2>&1 &
host_pid=$!
for _ in $(seq 1 100); do [ -S "$work/h.sock.admin" ] && [ -d "$work/ux/sys" ] && break; sleep 0.1; done

# Runs one copy through the daemon started by "$@"; prints its wall time in seconds.
copy_with() {
    "$@" > "$work/daemon.log" 2>&1 &
    daemon_pid=$!
    sleep 1  # the daemon opens the device and answers the host's negotiation
    local start end
    start=$(date +%s.%N)
    "$vmbus" ctl copy --host "$work/h.sock.admin" --guest uio "$work/src.bin" "$work/out/big.bin" > /dev/null 2>> "$work/copy.log"
    end=$(date +%s.%N)
    kill "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true
    daemon_pid=
    local got
    got=$(sha256sum < "$work/out/big.bin" | cut -d' ' -f1)
    [ "$got" = "$want" ] || { echo "bench-fcopy-linux: the copy differs from its source" >&2; exit 1; }
    rm -f "$work/out/big.bin"
    echo "$end - $start" | bc
}

linux_times=()
ours_times=()
for round in $(seq 1 "$rounds"); do
    echo "round $round of $rounds…" >&2
    linux_times+=("$(copy_with env LD_PRELOAD="$preload" VMBUS_UIO_EXPORT="$work/ux" "$build/hv_fcopy_uio_daemon" -n)")
    ours_times+=("$(copy_with "$vmbus" fcopy-daemon --sysfs "$work/ux/sys")")
done

python3 - "$mib" "${linux_times[*]}" "${ours_times[*]}" <<'PY'
import statistics, sys
mib = int(sys.argv[1])
linux = [float(x) for x in sys.argv[2].split()]
ours = [float(x) for x in sys.argv[3].split()]
print(f"{mib} MiB through `vmbus ctl copy`, wall time per round (SHA-256 checked)\n")
print("  round  hv_fcopy_uio_daemon  vmbus fcopy-daemon  ours ÷ Linux")
for n, (l, o) in enumerate(zip(linux, ours), 1):
    print(f"  {n:>5}  {l:>17.2f} s  {o:>16.2f} s  {o / l:>12.2f}")
print(f"\nmedians: Linux {statistics.median(linux):.2f} s, ours {statistics.median(ours):.2f} s, "
      f"ours ÷ Linux {statistics.median(o / l for l, o in zip(linux, ours)):.2f}")
PY
