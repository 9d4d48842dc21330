#!/usr/bin/env bash
# The synthetic NIC against veth in the same run (BENCHMARKS.md): RUNS times, the veth baseline,
# then `vmbus host --net tap:vmb0` in namespace a and `vmbus guest --net tap:vmb1` in b measured
# by the same commands (Scripts/bench-net.sh), then `vmbus bench net` (no TAP). Needs root, ping,
# iperf3 and a release build (`swift build -c release --product vmbus`).
#
#   sudo Scripts/bench-net-vmbus.sh            # RUNS=3 BENCH_SECONDS=3 QUEUES=1 by default
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
vmbus=${VMBUS:-$here/.build/release/vmbus}
[[ -x "$vmbus" ]] || { echo "no $vmbus: swift build -c release --product vmbus" >&2; exit 2; }
export BENCH_SECONDS=${BENCH_SECONDS:-3}
queues=${QUEUES:-1}
for run in $(seq "${RUNS:-3}"); do
    echo "== run $run"
    "$here/Scripts/bench-net.sh" | grep '^veth'
    prefix="vmbn-$$-$run" socket="/tmp/vmbn-$$-$run.sock"
    "$here/Scripts/net-namespaces.sh" up "$prefix" >/dev/null
    trap '"$here/Scripts/net-namespaces.sh" down "$prefix" >/dev/null' EXIT
    ip netns exec "$prefix-a" "$vmbus" host --listen "$socket" --device ic --net tap:vmb0 --net-queues "$queues" --log-level warning > /dev/null &
    # The host says when it listens; the guest when its NIC is up.
    for _ in $(seq 100); do [[ -S "$socket" ]] && break; sleep 0.05; done
    log="/tmp/vmbn-$$-$run.guest"
    ip netns exec "$prefix-b" "$vmbus" guest --connect "$socket" --memory 64M --net tap:vmb1 --net-queues "$queues" > "$log" &
    for _ in $(seq 200); do grep -q 'network vmb1 up' "$log" && break; sleep 0.05; done
    grep -q 'network vmb1 up' "$log" || { echo "the guest's NIC did not come up: $(cat "$log")" >&2; exit 1; }
    rm -f "$log"
    "$here/Scripts/net-namespaces.sh" address "$prefix" a vmb0 10.201.0.1/24
    "$here/Scripts/net-namespaces.sh" address "$prefix" b vmb1 10.201.0.2/24
    "$here/Scripts/bench-net.sh" --client "$prefix-a" --server "$prefix-b" --address 10.201.0.2 --label vmbus | grep '^vmbus'
    "$here/Scripts/net-namespaces.sh" down "$prefix" >/dev/null
    trap - EXIT
    "$vmbus" bench net --frames 200000 --rounds 10000
done
