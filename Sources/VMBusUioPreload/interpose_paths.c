// The libc calls that take a path, interposed so the paths a uio program names resolve in
// the export (see paths.c); opening the stand-in /dev/uioN connects to its socket instead.
// Relative paths pass through: a program that reached the tree by an absolute path and
// then works relative to a descriptor is already inside the export.
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

// Rewrites `path` into a local buffer named `target`, failing the call when it does not fit.
#define REWRITE(path, failure) \
    char target_buffer[PATH_MAX]; \
    const char *target = vmbus_uio_rewrite(path, target_buffer); \
    if (!target) return failure

// open() and friends: the node becomes a connection, any other path opens where it points.
static int open_path(const char *target, int flags) {
    int number = vmbus_uio_node_number(target);
    return number >= 0 ? vmbus_uio_connect(number, flags) : -2;
}

// Declares an open-like function: `call` forwards with the rewritten path.
#define OPEN_LIKE(name, params, call) \
    int name params { \
        mode_t mode = 0; \
        /* O_TMPFILE shares its O_DIRECTORY bit: only the whole flag means a mode follows */ \
        if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) { \
            va_list args; \
            va_start(args, flags); \
            mode = va_arg(args, mode_t); \
            va_end(args); \
        } \
        REWRITE(path, -1); \
        int opened = open_path(target, flags); \
        if (opened != -2) return opened; \
        REAL(name, int (*) params); \
        return call; \
    }

OPEN_LIKE(open, (const char *path, int flags, ...), real_open(target, flags, mode))
OPEN_LIKE(open64, (const char *path, int flags, ...), real_open64(target, flags, mode))
OPEN_LIKE(openat, (int dirfd, const char *path, int flags, ...), real_openat(dirfd, target, flags, mode))
OPEN_LIKE(openat64, (int dirfd, const char *path, int flags, ...), real_openat64(dirfd, target, flags, mode))

// The _FORTIFY_SOURCE entry points a program built with -D_FORTIFY_SOURCE calls instead.
int __open_2(const char *path, int flags) { return open(path, flags); }
int __open64_2(const char *path, int flags) { return open64(path, flags); }
int __openat_2(int dirfd, const char *path, int flags) { return openat(dirfd, path, flags); }
int __openat64_2(int dirfd, const char *path, int flags) { return openat64(dirfd, path, flags); }

// stdio: sysfs attributes are often read with fopen + fscanf. The node is not a stdio file
// on a real kernel either (uio needs exact 4-byte reads), so it is not special here.
#define PATH_CALL(ret, name, params, failure, path, call) \
    ret name params { \
        REWRITE(path, failure); \
        REAL(name, ret (*) params); \
        return call; \
    }

PATH_CALL(FILE *, fopen, (const char *path, const char *mode), NULL, path, real_fopen(target, mode))
PATH_CALL(FILE *, fopen64, (const char *path, const char *mode), NULL, path, real_fopen64(target, mode))
PATH_CALL(FILE *, freopen, (const char *path, const char *mode, FILE *stream), NULL, path, real_freopen(target, mode, stream))

// Existence, type and size checks (the fcopy daemon sizes its rings from the `ring` file).
PATH_CALL(int, stat, (const char *path, struct stat *buf), -1, path, real_stat(target, buf))
PATH_CALL(int, lstat, (const char *path, struct stat *buf), -1, path, real_lstat(target, buf))
PATH_CALL(int, stat64, (const char *path, struct stat64 *buf), -1, path, real_stat64(target, buf))
PATH_CALL(int, lstat64, (const char *path, struct stat64 *buf), -1, path, real_lstat64(target, buf))
PATH_CALL(int, fstatat, (int dirfd, const char *path, struct stat *buf, int flags), -1, path, real_fstatat(dirfd, target, buf, flags))
PATH_CALL(int, fstatat64, (int dirfd, const char *path, struct stat64 *buf, int flags), -1, path,
          real_fstatat64(dirfd, target, buf, flags))
PATH_CALL(int, statx, (int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf), -1, path,
          real_statx(dirfd, target, flags, mask, buf))

// Binaries built against glibc before 2.33 call these versioned forms instead of stat().
int __xstat(int version, const char *path, struct stat *buf);
int __lxstat(int version, const char *path, struct stat *buf);
int __xstat64(int version, const char *path, struct stat64 *buf);
int __lxstat64(int version, const char *path, struct stat64 *buf);
int __fxstatat(int version, int dirfd, const char *path, struct stat *buf, int flags);
int __fxstatat64(int version, int dirfd, const char *path, struct stat64 *buf, int flags);
PATH_CALL(int, __xstat, (int version, const char *path, struct stat *buf), -1, path, real___xstat(version, target, buf))
PATH_CALL(int, __lxstat, (int version, const char *path, struct stat *buf), -1, path, real___lxstat(version, target, buf))
PATH_CALL(int, __xstat64, (int version, const char *path, struct stat64 *buf), -1, path, real___xstat64(version, target, buf))
PATH_CALL(int, __lxstat64, (int version, const char *path, struct stat64 *buf), -1, path, real___lxstat64(version, target, buf))
PATH_CALL(int, __fxstatat, (int version, int dirfd, const char *path, struct stat *buf, int flags), -1, path,
          real___fxstatat(version, dirfd, target, buf, flags))
PATH_CALL(int, __fxstatat64, (int version, int dirfd, const char *path, struct stat64 *buf, int flags), -1, path,
          real___fxstatat64(version, dirfd, target, buf, flags))

PATH_CALL(int, access, (const char *path, int mode), -1, path, real_access(target, mode))
PATH_CALL(int, faccessat, (int dirfd, const char *path, int mode, int flags), -1, path, real_faccessat(dirfd, target, mode, flags))

// Directory scans: the fcopy daemon lists DEVICE/uio for uioN; DPDK lists the devices.
PATH_CALL(DIR *, opendir, (const char *path), NULL, path, real_opendir(target))
PATH_CALL(int, scandir, (const char *path, struct dirent ***list, int (*filter)(const struct dirent *),
                         int (*compare)(const struct dirent **, const struct dirent **)),
          -1, path, real_scandir(target, list, filter, compare))
PATH_CALL(int, scandir64, (const char *path, struct dirent64 ***list, int (*filter)(const struct dirent64 *),
                           int (*compare)(const struct dirent64 **, const struct dirent64 **)),
          -1, path, real_scandir64(target, list, filter, compare))

// Links: `driver` names the bound driver. The tree's links are relative, so what they read
// is what a kernel's would.
PATH_CALL(ssize_t, readlink, (const char *path, char *buf, size_t size), -1, path, real_readlink(target, buf, size))
PATH_CALL(ssize_t, readlinkat, (int dirfd, const char *path, char *buf, size_t size), -1, path,
          real_readlinkat(dirfd, target, buf, size))
PATH_CALL(ssize_t, __readlink_chk, (const char *path, char *buf, size_t size, size_t buflen), -1, path,
          real___readlink_chk(target, buf, size, buflen))

// Canonical names come back inside the export; they are not rewritten a second time.
PATH_CALL(char *, realpath, (const char *path, char *resolved), NULL, path, real_realpath(target, resolved))
PATH_CALL(char *, __realpath_chk, (const char *path, char *resolved, size_t size), NULL, path,
          real___realpath_chk(target, resolved, size))
PATH_CALL(char *, canonicalize_file_name, (const char *path), NULL, path, real_canonicalize_file_name(target))
