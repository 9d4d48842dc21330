#!/usr/bin/env bash
# Builds the DocC documentation of every target with a catalog (Sources/<Target>/Docs.docc) with
# warnings as errors — a broken ``symbol`` link, a documented parameter that does not exist or an
# undocumented one beside documented ones all fail — then fails when a public symbol declared in
# those targets has no doc comment (Scripts/DocCoverage.swift; Scripts/doc-coverage-allowed.txt
# lists the symbols still waiting for theirs, and nothing may be added to it).
#
#   Scripts/check-docs.sh                  check (what CI runs)
#   Scripts/check-docs.sh --site DIR       also write a static website per target to DIR/<Target>
#                                          (open DIR/<Target>/index.html through any web server)
#   Scripts/check-docs.sh --list           print every undocumented public symbol, then check
#
# SCRATCH_PATH picks the build directory (default .build, the one `swift build` uses).
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="${SCRATCH_PATH:-.build}"
site=""
list=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --site) site="$2"; shift 2 ;;
        --list) list=1; shift ;;
        *) echo "usage: $0 [--site DIR] [--list]" >&2; exit 2 ;;
    esac
done

targets=()
for catalog in Sources/*/Docs.docc; do
    targets+=("$(basename "$(dirname "$catalog")")")
done
target_flags=()
for target in "${targets[@]}"; do target_flags+=(--target "$target"); done

swift package --scratch-path "$scratch" generate-documentation "${target_flags[@]}" --warnings-as-errors

# The plugin leaves each target's symbol graph in <scratch>/<triple>/extracted-symbols/<package>/<Target>.
graphs=()
for target in "${targets[@]}"; do
    found=("$scratch"/*/extracted-symbols/*/"$target")
    [[ -d "${found[0]}" ]] || { echo "no symbol graph for $target under $scratch" >&2; exit 1; }
    graphs+=("${found[0]}")
done
coverage_flags=(--allowed Scripts/doc-coverage-allowed.txt)
[[ -n "$list" ]] && coverage_flags+=(--list)
swift Scripts/DocCoverage.swift "${coverage_flags[@]}" "${graphs[@]}"

if [[ -n "$site" ]]; then
    mkdir -p "$site"
    for target in "${targets[@]}"; do
        swift package --scratch-path "$scratch" --allow-writing-to-directory "$site" generate-documentation \
            --target "$target" --output-path "$site/$target" --transform-for-static-hosting \
            --hosting-base-path "$target" --disable-indexing
    done
    echo "static documentation in $site/<Target>; e.g. python3 -m http.server -d $site, then /<Target>/documentation/<target>/"
fi
