// Shared by the preload library's files; nothing here is exported.
#ifndef VMBUS_UIO_PRELOAD_INTERNAL_H
#define VMBUS_UIO_PRELOAD_INTERNAL_H

#define _GNU_SOURCE
#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

// The helpers below are shared between this library's files but must not become symbols a
// preloaded program (or another library) could bind to.
#pragma GCC visibility push(hidden)

// Looks a libc function up behind this library, once; aborts the process when libc lacks it,
// because carrying on would call through a null pointer at a random later moment.
void *vmbus_uio_real(const char *name);

#define REAL(name, type) \
    static __typeof__(type) real_##name; \
    if (!real_##name) real_##name = (type)vmbus_uio_real(#name)

// The export directory, or NULL when VMBUS_UIO_EXPORT is unset (the library then passes
// every call through untouched).
const char *vmbus_uio_export(void);

// One line on standard error when VMBUS_UIO_DEBUG is set.
void vmbus_uio_debug(const char *format, ...) __attribute__((format(printf, 1, 2)));

// If `path` is one the export stands in for (/sys/bus/vmbus…, /sys/class/uio…, /dev/uioN),
// writes its place under the export into `buffer` and returns `buffer`; otherwise returns
// `path`. Returns NULL with errno = ENAMETOOLONG if the rewritten path does not fit.
const char *vmbus_uio_rewrite(const char *path, char buffer[PATH_MAX]);

// The uio number N when `path` (already rewritten) is the export's DIR/dev/uioN, else -1.
int vmbus_uio_node_number(const char *path);

// Opens the stand-in node N: connects to its socket, remembers the descriptor as a uio node.
int vmbus_uio_connect(int number, int flags);

// The uio number behind a descriptor this library opened, or -1 for any other descriptor.
int vmbus_uio_fd_number(int fd);

#pragma GCC visibility pop

#endif
