#!/usr/bin/env bash
# Runs one libFuzzer target of FuzzTesting/ for a number of seconds.
#
#   Scripts/fuzz.sh TARGET SECONDS [libFuzzer options…]
#   Scripts/fuzz.sh list                      # the targets
#   Scripts/fuzz.sh FuzzChannelMessage 60 -jobs=2
#
# The corpus grows in FuzzTesting/corpus/TARGET (git-ignored); FuzzTesting/Seeds/TARGET holds
# the committed seeds. A crash leaves crash-<sha1> in the current directory and exits non-zero;
# replay it with: FuzzTesting/.build/release/TARGET crash-<sha1>
# FUZZ_SANITIZE=address adds AddressSanitizer (slower). FUZZ_CONFIG=debug builds unoptimised.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
fuzz="$here/FuzzTesting"
targets=$(sed -n 's/.*\.executableTarget(name: "\([A-Za-z]*\)".*/\1/p' "$fuzz/Package.swift")

if [ "${1:-}" = "list" ] || [ $# -lt 2 ]; then
    [ "${1:-}" = "list" ] || echo "usage: Scripts/fuzz.sh TARGET SECONDS [libFuzzer options…]" >&2
    echo "$targets"
    [ "${1:-}" = "list" ]; exit $?
fi
target=$1 seconds=$2
shift 2
if ! grep -qx "$target" <<<"$targets"; then
    echo "unknown fuzz target '$target'; one of:" >&2
    echo "$targets" >&2
    exit 2
fi
config=${FUZZ_CONFIG:-release}
sanitize=(--sanitize=fuzzer)
[ -n "${FUZZ_SANITIZE:-}" ] && sanitize+=("--sanitize=$FUZZ_SANITIZE")

(cd "$fuzz" && swift build -c "$config" "${sanitize[@]}" --product "$target" >&2)
corpus="$fuzz/corpus/$target"
mkdir -p "$corpus"
seeds=()
[ -d "$fuzz/Seeds/$target" ] && seeds=("$fuzz/Seeds/$target")
# Without this the Swift runtime's backtracer takes the trap and libFuzzer writes no crash file.
export SWIFT_BACKTRACE=enable=no
exec "$fuzz/.build/$config/$target" -max_total_time="$seconds" -print_final_stats=1 -max_len=4096 \
    "$@" "$corpus" "${seeds[@]}"
