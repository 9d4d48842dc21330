# Sourced by the two Linux bench scripts (after setting `here` to Scripts/): the repository,
# the defaults of --linux-src ($LINUX_SRC) and of the tag fetched ($LINUX_TAG, v6.12), and
# linux_sources, which finds Linux's files for them.
repo=$(dirname "$here")
linux_src=${LINUX_SRC:-}
tag=${LINUX_TAG:-v6.12}

#
#   linux_sources NAME DIR TAG FILE...
#
# Prints the directory that holds every FILE (paths inside a Linux tree): DIR when given (it
# must have them all), else ~/.cache/swift-vmbus/linux-TAG, where missing files are fetched
# from kernel.org first. Fails, naming NAME, when a file is missing or cannot be fetched.
linux_sources() {
    local name=$1 dir=$2 tag=$3 f url
    shift 3
    if [ -z "$dir" ]; then
        dir=${XDG_CACHE_HOME:-$HOME/.cache}/swift-vmbus/linux-$tag
        for f in "$@"; do
            [ -f "$dir/$f" ] && continue
            mkdir -p "$dir/$(dirname "$f")"
            url="https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/plain/$f?h=$tag"
            if ! curl -fsSL "$url" -o "$dir/$f.part"; then
                echo "$name: could not fetch $url; give a Linux tree with --linux-src" >&2
                return 1
            fi
            mv "$dir/$f.part" "$dir/$f"
        done
    fi
    for f in "$@"; do
        [ -f "$dir/$f" ] || { echo "$name: $dir has no $f (Linux 6.10 or later needed)" >&2; return 1; }
    done
    echo "$dir"
}
