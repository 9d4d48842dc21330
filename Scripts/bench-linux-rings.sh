#!/usr/bin/env bash
# Linux's two VMBus ring implementations against `vmbus bench ring`, round by round.
#
#   Scripts/bench-linux-rings.sh [--linux-src DIR] [--rounds N] [--seconds S]
#                                [--publish-every N] [SIZE...]
#
# Builds a small harness (Scripts/linux-rings/) around Linux's own ring code, compiled
# unmodified from a Linux source tree of 6.10 or later:
#   tools/hv/vmbus_bufring.c, tools/hv/vmbus_bufring.h   "uio": the user-space ring of
#                                                        hv_fcopy_uio_daemon
#   drivers/hv/ring_buffer.c                             "kern", "kern-iter": the kernel's, with
#                                                        shim headers for its environment
# The sources are not part of this repository. --linux-src (or $LINUX_SRC) names a tree that
# has them; without one, the three files are fetched from kernel.org at tag $LINUX_TAG (v6.12)
# into ~/.cache/swift-vmbus/.
#
# Each round runs, size by size, the three Linux rings and then `vmbus bench ring --runs 1
# --ring-only` (two threads, a 256 KiB ring, copy-out reads, --seconds per run), and prints ours
# divided by the fastest Linux ring of that round: the machine's speed moves between rounds
# (the hypervisor moves the vCPUs), so only ratios within a round mean anything. The last
# table gives the median of each column.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/linux-rings/sources.sh"  # repo, linux_src, tag and linux_sources
rounds=5
seconds=0.5
publish_every=32
sizes=()

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --linux-src) linux_src=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --publish-every) publish_every=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "bench-linux-rings: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) sizes+=("$1"); shift ;;
    esac
done
[ ${#sizes[@]} -gt 0 ] || sizes=(64 1024 4096 16384)

files=(tools/hv/vmbus_bufring.c tools/hv/vmbus_bufring.h drivers/hv/ring_buffer.c)
linux_src=$(linux_sources bench-linux-rings "$linux_src" "$tag" "${files[@]}")

build=$repo/.build-linux-rings
mkdir -p "$build"
# ring_buffer.c is compiled from a copy so that its "hyperv_vmbus.h" is the shim's, not the tree's.
cp "$linux_src/drivers/hv/ring_buffer.c" "$build/ring_buffer.c"
cflags=(-O2 -Wall -Wno-address-of-packed-member)
shim=$here/linux-rings/shim
cc "${cflags[@]}" -c "$linux_src/tools/hv/vmbus_bufring.c" -o "$build/vmbus_bufring.o"
cc "${cflags[@]}" -I"$shim" -iquote "$shim" -c "$build/ring_buffer.c" -o "$build/ring_buffer.o"
cc "${cflags[@]}" -I"$linux_src/tools/hv" -I"$here/linux-rings" -c "$here/linux-rings/uio_driver.c" -o "$build/uio_driver.o"
cc "${cflags[@]}" -I"$shim" -I"$here/linux-rings" -c "$here/linux-rings/kern_driver.c" -o "$build/kern_driver.o"
cc "${cflags[@]}" -I"$here/linux-rings" -c "$here/linux-rings/main.c" -o "$build/main.o"
cc -o "$build/linux-rings" "$build"/main.o "$build"/uio_driver.o "$build"/kern_driver.o \
    "$build"/vmbus_bufring.o "$build"/ring_buffer.o -lpthread

vmbus=$repo/.build-release/release/vmbus
(cd "$repo" && swift build -c release --scratch-path .build-release --product vmbus >/dev/null)

log=$build/rounds.jsonl
: > "$log"
for round in $(seq 1 "$rounds"); do
    echo "round $round of $rounds…" >&2
    # Size by size, Linux's rings and then ours, so that the two sides of a ratio run seconds
    # apart, not minutes.
    for size in "${sizes[@]}"; do
        "$build/linux-rings" --seconds "$seconds" "$size" | sed "s/^{/{\"round\": $round, /" >> "$log"
        "$vmbus" bench ring --runs 1 --ring-only --json --seconds "$seconds" --publish-every "$publish_every" \
            --sizes "$size" | grep '"case": "ring\|"case": "copy' | sed "s/^{/{\"round\": $round, /" >> "$log"
    done
done

python3 - "$log" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
sizes = sorted({r["payload"] for r in rows})
rounds = sorted({r["round"] for r in rows})
def rate(rnd, size, key, name):
    for r in rows:
        if r["round"] == rnd and r["payload"] == size and r.get(key) == name:
            return r["packets_per_s"]
    return None
linux = ["uio", "kern", "kern-iter"]
ours = ["ring copy", "ring in-place", "copy, plain", "copy, streaming", "copy bound"]
def fmt(x):
    return f"{x/1e6:.2f} M" if x >= 1e6 else f"{x/1e3:.0f} k"
print("packets/s per round; ratio = ours ÷ the fastest Linux ring of the same round\n")
medians = {}
for size in sizes:
    print(f"payload {size} B")
    names = [n for n in ours if rate(rounds[0], size, "case", n) is not None]
    print("  round  " + "  ".join(f"{n:>10}" for n in linux) + "  " + "  ".join(f"{n:>15}" for n in names)
          + "  copy ÷ Linux  in-place ÷ Linux")
    for rnd in rounds:
        best = max(rate(rnd, size, "ring", n) or 0 for n in linux)
        mine = {n: rate(rnd, size, "case", n) for n in names}
        line = f"  {rnd:>5}  " + "  ".join(f"{fmt(rate(rnd, size, 'ring', n) or 0):>10}" for n in linux)
        line += "  " + "  ".join(f"{fmt(mine[n]):>15}" for n in names)
        ratios = (mine["ring copy"] / best, mine["ring in-place"] / best)
        medians.setdefault(size, []).append(ratios)
        print(line + f"  {ratios[0]:>12.2f}  {ratios[1]:>16.2f}")
print("\nmedians over the rounds: ours ÷ fastest Linux")
for size in sizes:
    copy = statistics.median(r[0] for r in medians[size])
    place = statistics.median(r[1] for r in medians[size])
    print(f"  {size:>6} B  copy-out {copy:.2f}  in place {place:.2f}")
PY
