#!/usr/bin/env bash
# Network benchmark with the standard tools (ping, iperf3) between two network namespaces,
# one summary line per measurement. The same commands measure any path: the veth baseline
# (made here when no path is given), or the VMBus synthetic NIC between `vmbus host --net tap:…`
# and `vmbus guest --net tap:…` running in two namespaces.
#
#   bench-net.sh                                  veth baseline: a fresh namespace pair joined by veth
#   bench-net.sh --client NS --server NS --address IP [--label TEXT]
#                                                 an existing path: clients run in the client
#                                                 namespace against IP in the server namespace
#
# Measurements: `ping -c 200 -i 0.002` (rtt p50/avg/max), a flood `ping -f -c 2000` (loss),
# iperf3 TCP client→server and server→client (-R), TCP with 4 streams (-P 4), UDP at 1 Gbit/s
# (-u -b 1G, loss). Environment: BENCH_SECONDS (iperf3 run length, default 5), PING_COUNT
# (200), FLOOD_COUNT (2000), UDP_RATE (1G), IPERF_PORT (5201). Needs root, ping and iperf3.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/net-namespaces.sh"

seconds="${BENCH_SECONDS:-5}"
ping_count="${PING_COUNT:-200}"
flood_count="${FLOOD_COUNT:-2000}"
udp_rate="${UDP_RATE:-1G}"
port="${IPERF_PORT:-5201}"

client="" server="" address="" label="" prefix=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --client) client="$2"; shift 2 ;;
        --server) server="$2"; shift 2 ;;
        --address) address="$2"; shift 2 ;;
        --label) label="$2"; shift 2 ;;
        *) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done

server_pid="" drain_pid=""
cleanup() {
    # Only what this script started: the iperf3 server, its output drain, the veth namespaces.
    # Each is waited for, so none is left a zombie for an init that may not reap.
    [[ -n "$server_pid" ]] && { kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; } || true
    [[ -n "$drain_pid" ]] && { kill "$drain_pid" 2>/dev/null; wait "$drain_pid" 2>/dev/null; } || true
    [[ -n "$prefix" ]] && netns_down "$prefix" || true
}
trap cleanup EXIT

if [[ -z "$client" ]]; then
    why="$(netns_check --tools)" || { echo "bench-net: $why" >&2; exit 1; }
    prefix="vmbus-bench-$$"
    netns_up "$prefix"
    netns_veth "$prefix"
    client="$prefix-a" server="$prefix-b" address="${VETH_ADDRESS_B%/*}" label="${label:-veth}"
fi
[[ -n "$server" && -n "$address" ]] || { echo "bench-net: --client, --server and --address go together" >&2; exit 2; }
label="${label:-$client→$server}"

in_client() { ip netns exec "$client" "$@"; }

# --- ping: rtt percentiles from every reply's time=.
out="$(in_client ping -n -c "$ping_count" -i 0.002 -W 1 "$address" || true)"
loss="$(grep -o '[0-9.]*% packet loss' <<<"$out" | cut -d% -f1)"
grep -o 'time=[0-9.]*' <<<"$out" | cut -d= -f2 | sort -g | awk -v label="$label" -v n="$ping_count" -v loss="$loss" '
    { t[NR] = $1; sum += $1 }
    END {
        if (NR == 0) { printf "%-6s ping        %d × 2 ms: no replies (loss %s%%)\n", label, n, loss; exit }
        printf "%-6s ping        %d × 2 ms: rtt p50 %.3f ms, avg %.3f ms, max %.3f ms, loss %s%%\n",
            label, n, t[int((NR + 1) / 2)], sum / NR, t[NR], loss
    }'

# --- flood ping: loss, and the average rtt from the summary.
out="$(in_client ping -n -q -f -c "$flood_count" -W 1 "$address" || true)"
loss="$(grep -o '[0-9.]*% packet loss' <<<"$out" | cut -d% -f1)"
avg="$(grep -o 'mdev = [0-9./]*' <<<"$out" | cut -d/ -f2 || true)"
printf "%-6s ping -f     %d: loss %s%%, rtt avg %s ms\n" "$label" "$flood_count" "${loss:-?}" "${avg:-?}"

# --- iperf3 server in the server namespace; measuring starts once it says it listens (its
# first output line), not after a guessed delay.
exec {server_out}< <(exec ip netns exec "$server" iperf3 -s -B "$address" -p "$port" --forceflush 2>&1)
server_pid=$!
while IFS= read -r -t 10 -u "$server_out" line; do
    [[ "$line" == *"Server listening"* ]] && break
done
[[ "${line:-}" == *"Server listening"* ]] || { echo "bench-net: iperf3 server did not start: ${line:-no output}" >&2; exit 1; }
# Its later reports go nowhere: a full pipe would stall it.
cat <&"$server_out" >/dev/null &
drain_pid=$!

# The receiver's line of an iperf3 run (the [SUM] line with -P): Mbit/s, then UDP's loss.
iperf() {
    local out
    out="$(in_client iperf3 -c "$address" -p "$port" -t "$seconds" -f m "$@" 2>&1)" || { echo "iperf3 failed: $out" | tail -3 >&2; return 1; }
    grep 'receiver' <<<"$out" | tail -1
}
rate() { awk '{ for (i = 1; i <= NF; i++) if ($i == "Mbits/sec") printf "%.2f", $(i - 1) / 1000 }'; }

line="$(iperf)"; printf "%-6s tcp →       %s s: %s Gbit/s\n" "$label" "$seconds" "$(rate <<<"$line")"
line="$(iperf -R)"; printf "%-6s tcp ←       %s s: %s Gbit/s\n" "$label" "$seconds" "$(rate <<<"$line")"
line="$(iperf -P 4)"; printf "%-6s tcp -P 4    %s s: %s Gbit/s\n" "$label" "$seconds" "$(rate <<<"$line")"
line="$(iperf -u -b "$udp_rate")"
lost="$(grep -o '[0-9]*/[0-9]* ([0-9.e+-]*%)' <<<"$line" || echo '?')"
printf "%-6s udp %-7s %s s: %s Gbit/s received, lost %s\n" "$label" "$udp_rate" "$seconds" "$(rate <<<"$line")" "$lost"
