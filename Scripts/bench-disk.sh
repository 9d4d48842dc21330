#!/usr/bin/env bash
# The NBD path of BENCHMARKS.md's storage table: fio's nbd engine against
#   (1) vmbus guest --disk-nbd, whose disk is 'vmbus host --disk FILE' (the whole VMBus stack),
#   (2) qemu-nbd serving the same FILE (the baseline the issue names),
# and fio straight on FILE (psync and libaio), for 4 KiB random reads and writes at depth 1 and 32
# and 1 MiB sequential reads and writes at depth 4.
# Usage: Scripts/bench-disk.sh [SECONDS]   (needs fio, qemu-utils; builds vmbus in release)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-5}"
swift build -c release --product vmbus >/dev/null
vmbus="$(swift build -c release --show-bin-path)/vmbus"
# BENCH_DIR=/dev/shm keeps the file in memory (tmpfs): the path is measured, not the disk.
work="$(mktemp -d "${BENCH_DIR:-/tmp}/vmbus-bench-disk.XXXXXX")"
cleanup() {
    pkill -f "vmbus guest --connect $work" 2>/dev/null || true
    pkill -f "vmbus host --listen $work" 2>/dev/null || true
    pkill -f "qemu-nbd.*$work" 2>/dev/null || true
    sleep 0.5
    rm -rf "$work"
}
trap cleanup EXIT
image="$work/disk.img"
# A written (not sparse) 1 GiB file: reads measure the page cache, not holes.
dd if=/dev/urandom of="$image" bs=1M count=1024 status=none

jobs=("randread 4k 1" "randread 4k 32" "randwrite 4k 1" "randwrite 4k 32" "read 1M 4" "write 1M 4")
run() { # label, fio target arguments...
    local label="$1"; shift
    for job in "${jobs[@]}"; do
        read -r rw bs depth <<<"$job"
        local out
        out=$(fio --name=bench --rw="$rw" --bs="$bs" --iodepth="$depth" --size=1G --time_based --runtime="$seconds" \
            --ramp_time=1 --output-format=terse --terse-version=3 "$@" 2>/dev/null)
        # terse v3: field 8 read IOPS, 49 write IOPS; 7/48 bandwidth KiB/s; 40/81 clat mean µs
        tail -1 <<<"$out" | awk -F';' -v l="$label" -v j="$rw-$bs-qd$depth" '{ iops = $8 + $49; bw = ($7 + $48) / 1024; printf "%-10s %-18s %10.0f IOPS %9.1f MiB/s\n", l, j, iops, bw }'
    done
}

"$vmbus" host --listen "$work/host.sock" --device ic --disk "$image" --log-level warning >"$work/host.log" 2>&1 &
until grep -q "listening on" "$work/host.log"; do sleep 0.1; done
"$vmbus" guest --connect "$work/host.sock" --memory 128M --disk-nbd "$work/nbd.sock" --disk-queue-depth 64 >"$work/guest.log" 2>&1 &
until grep -q "NBD on" "$work/guest.log"; do sleep 0.1; done
run vmbus --ioengine=nbd --uri="nbd+unix:///?socket=$work/nbd.sock"
pkill -f "vmbus guest --connect $work" || true
pkill -f "vmbus host --listen $work" || true

qemu-nbd --format=raw --socket="$work/qemu.sock" --persistent --shared=4 --cache=writeback "$image" &
until [[ -S "$work/qemu.sock" ]]; do sleep 0.1; done
run qemu-nbd --ioengine=nbd --uri="nbd+unix:///?socket=$work/qemu.sock"
pkill -f "qemu-nbd.*$work" || true

run file-psync --ioengine=psync --filename="$image"
run file-aio --ioengine=libaio --filename="$image"
