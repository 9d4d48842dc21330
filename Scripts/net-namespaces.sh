#!/usr/bin/env bash
# Two private network namespaces for network tests and benchmarks, joined by a veth pair (the
# baseline path) or, later, by the VMBus synthetic NIC (a TAP in each, made by `vmbus host
# --net tap:NAME` and `vmbus guest --net tap:NAME`).
#
# Everything lives inside namespaces named PREFIX-a and PREFIX-b: interfaces are created there
# directly (never in the caller's namespace, then moved), addresses are set only there, and
# `down` deletes both namespaces, which destroys every interface in them. The machine's own
# interfaces, addresses and routes are never touched. Needs root (CAP_SYS_ADMIN and
# CAP_NET_ADMIN) and iproute2.
#
#   net-namespaces.sh check [--tools]       why namespaces/TAP (and ping/iperf3) are unusable; exit 1 if so
#   net-namespaces.sh up PREFIX              namespaces PREFIX-a and PREFIX-b, loopback up
#   net-namespaces.sh veth PREFIX            veth0 in each, 10.200.0.1/24 (a) and 10.200.0.2/24 (b), up
#   net-namespaces.sh address PREFIX a|b IFNAME ADDRESS/LENGTH
#                                            an address on IFNAME in one namespace, link up (TAPs)
#   net-namespaces.sh exec PREFIX a|b COMMAND...
#                                            runs COMMAND inside one namespace
#   net-namespaces.sh down PREFIX            ends the processes in both namespaces, deletes them
#
# PREFIX: letters, digits, '-' and '_' (make it unique per run: include the pid). The veth
# addresses can be changed with VETH_ADDRESS_A / VETH_ADDRESS_B (ADDRESS/LENGTH).
#
# Usable as a library too: `source Scripts/net-namespaces.sh` defines the netns_* functions
# without running anything.
set -euo pipefail

# iproute2 and ping live in sbin on some systems, which a test runner's PATH may lack.
PATH="$PATH:/usr/sbin:/sbin"

VETH_ADDRESS_A="${VETH_ADDRESS_A:-10.200.0.1/24}"
VETH_ADDRESS_B="${VETH_ADDRESS_B:-10.200.0.2/24}"

netns_die() { echo "net-namespaces: $*" >&2; exit 1; }

# A prefix that is safe in a namespace name and in `rm`-free cleanup.
netns_check_prefix() {
    [[ "${1:-}" =~ ^[A-Za-z0-9_-]{1,40}$ ]] || netns_die "invalid PREFIX '${1:-}': 1-40 of [A-Za-z0-9_-]"
}

netns_side() {
    [[ "${1:-}" == a || "${1:-}" == b ]] || netns_die "invalid side '${1:-}': a or b"
}

# Prints every reason namespaces or TAPs cannot be used here; returns 1 if there is one.
# With --tools, ping and iperf3 are required too.
netns_check() {
    local problems=()
    command -v ip >/dev/null || problems+=("iproute2 'ip' is not installed")
    [[ "$(id -u)" == 0 ]] || problems+=("not root: namespaces and TAPs need CAP_SYS_ADMIN and CAP_NET_ADMIN")
    if [[ ! -c /dev/net/tun ]]; then
        problems+=("/dev/net/tun is missing (tun module not loaded, or not exposed to this container)")
    elif ! { exec 3<>/dev/net/tun; } 2>/dev/null; then
        problems+=("/dev/net/tun cannot be opened")
    else
        exec 3>&-
    fi
    if [[ ${#problems[@]} == 0 ]]; then
        # The real test: make and delete a namespace (a container may forbid it even to root).
        local probe="vmbus-check-$$"
        if ip netns add "$probe" 2>/dev/null; then
            ip netns delete "$probe"
        else
            problems+=("'ip netns add' fails (no CAP_SYS_ADMIN, or /run/netns not writable)")
        fi
    fi
    if [[ "${1:-}" == --tools ]]; then
        command -v ping >/dev/null || problems+=("ping is not installed (apt-get install iputils-ping)")
        command -v iperf3 >/dev/null || problems+=("iperf3 is not installed (apt-get install iperf3)")
    fi
    if [[ ${#problems[@]} -gt 0 ]]; then
        printf 'unavailable: %s\n' "${problems[@]}"
        return 1
    fi
    echo "available"
}

netns_up() {
    netns_check_prefix "$1"
    local side
    for side in a b; do
        ip netns add "$1-$side"
        ip -n "$1-$side" link set lo up
    done
}

# veth0 in PREFIX-a, its peer veth0 in PREFIX-b: created in the namespaces themselves, so no
# interface ever appears in the caller's namespace (and equal names cannot clash).
netns_veth() {
    netns_check_prefix "$1"
    ip -n "$1-a" link add veth0 type veth peer name veth0 netns "$1-b"
    netns_address "$1" a veth0 "$VETH_ADDRESS_A"
    netns_address "$1" b veth0 "$VETH_ADDRESS_B"
}

netns_address() {
    netns_check_prefix "$1"
    netns_side "$2"
    ip -n "$1-$2" address add "$4" dev "$3"
    ip -n "$1-$2" link set "$3" up
}

netns_exec() {
    netns_check_prefix "$1"
    netns_side "$2"
    local ns="$1-$2"
    shift 2
    exec ip netns exec "$ns" "$@"
}

# Idempotent: a namespace already gone is fine. The processes inside are this run's own (the
# namespace names are unique per run); each is ended by pid before its namespace is deleted.
netns_down() {
    netns_check_prefix "$1"
    local side ns pid
    for side in a b; do
        ns="$1-$side"
        ip netns list | awk '{print $1}' | grep -qxF -- "$ns" || continue
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -TERM "$pid" 2>/dev/null || true
        done
        ip netns delete "$ns"
    done
}

# Run as a command (not sourced).
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    command="${1:-}"
    shift || true
    case "$command" in
        check) netns_check "$@" ;;
        up) [[ $# == 1 ]] || netns_die "usage: up PREFIX"; netns_up "$1" ;;
        veth) [[ $# == 1 ]] || netns_die "usage: veth PREFIX"; netns_veth "$1" ;;
        address) [[ $# == 4 ]] || netns_die "usage: address PREFIX a|b IFNAME ADDRESS/LENGTH"; netns_address "$@" ;;
        exec) [[ $# -ge 3 ]] || netns_die "usage: exec PREFIX a|b COMMAND..."; netns_exec "$@" ;;
        down) [[ $# == 1 ]] || netns_die "usage: down PREFIX"; netns_down "$1" ;;
        *) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
fi
