#!/usr/bin/env bash
# Counts the heap allocations a command makes: builds a tiny LD_PRELOAD library that counts
# malloc/calloc/realloc/posix_memalign calls and prints the total to stderr at exit.
#
#   Scripts/malloc-count.sh COMMAND [ARGS…]
#
# Used by BENCHMARKS.md to show that the ring data path allocates nothing per packet: run the
# same benchmark with two packet counts and compare the totals.
set -euo pipefail
lib=${TMPDIR:-/tmp}/swift-vmbus-malloc-count.so
if [ ! -f "$lib" ]; then
    src=$(mktemp --suffix=.c)
    cat > "$src" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stddef.h>
static atomic_ulong count;
static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static int (*real_memalign)(void **, size_t, size_t);
static char bootstrap[4096];
static size_t bootstrap_used;
void *malloc(size_t n) {
    if (!real_malloc) real_malloc = dlsym(RTLD_NEXT, "malloc");
    atomic_fetch_add(&count, 1);
    return real_malloc(n);
}
void *calloc(size_t a, size_t b) {
    if (!real_calloc) {
        /* dlsym itself may calloc: serve it from a static buffer. */
        void *p = bootstrap + bootstrap_used;
        bootstrap_used += (a * b + 15) & ~(size_t)15;
        real_calloc = dlsym(RTLD_NEXT, "calloc");
        return p;
    }
    atomic_fetch_add(&count, 1);
    return real_calloc(a, b);
}
void *realloc(void *p, size_t n) {
    if (!real_realloc) real_realloc = dlsym(RTLD_NEXT, "realloc");
    atomic_fetch_add(&count, 1);
    return real_realloc(p, n);
}
int posix_memalign(void **p, size_t a, size_t n) {
    if (!real_memalign) real_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    atomic_fetch_add(&count, 1);
    return real_memalign(p, a, n);
}
static void (*real_free)(void *);
void free(void *p) {
    if (p >= (void *)bootstrap && p < (void *)(bootstrap + sizeof bootstrap)) return;
    if (!real_free) real_free = dlsym(RTLD_NEXT, "free");
    real_free(p);
}
__attribute__((destructor)) static void report(void) {
    fprintf(stderr, "allocations: %lu\n", (unsigned long)atomic_load(&count));
}
C
    gcc -shared -fPIC -O2 -o "$lib" "$src" -ldl
    rm -f "$src"
fi
LD_PRELOAD="$lib" exec "$@"
