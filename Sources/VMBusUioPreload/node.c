// The stand-in /dev/uioN: a connection to the export's socket that behaves like the uio
// character device for the calls a uio program makes (05 §10.2–10.3):
//
//   read/pread of 4 bytes  blocks until an interrupt, returns the running count; end of
//                          stream (the host rescinded the device) is EIO, as on a kernel
//   write/pwrite of 4      irqcontrol: non-zero unmasks and signals the host, 0 masks
//   other sizes            EINVAL, as uio refuses them
//   mmap at K × page size  map K, backed by the export's DIR/dev/uioN.mapK file
//   poll/select/epoll      work as they are: the socket is readable when a count is waiting
//
// The host side is hostile to nothing here, but a program's mistakes must fail as they do
// on a kernel rather than confuse the export's 4-byte protocol.
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

// Descriptor → uio number + 1 (0: not ours). Descriptors past the table cannot be tracked,
// so opening a node on one fails with EMFILE rather than silently acting as a socket.
enum { table_size = 65536 };
static int node_of_fd[table_size];

int vmbus_uio_fd_number(int fd) {
    if (fd < 0 || fd >= table_size) return -1;
    return __atomic_load_n(&node_of_fd[fd], __ATOMIC_ACQUIRE) - 1;
}

static void remember(int fd, int number) { __atomic_store_n(&node_of_fd[fd], number + 1, __ATOMIC_RELEASE); }

static void forget(int fd) {
    if (fd >= 0 && fd < table_size) __atomic_store_n(&node_of_fd[fd], 0, __ATOMIC_RELEASE);
}

int vmbus_uio_connect(int number, int flags) {
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    int length = snprintf(address.sun_path, sizeof address.sun_path, "%s/dev/uio%d", vmbus_uio_export(), number);
    if (length < 0 || (size_t)length >= sizeof address.sun_path) {
        vmbus_uio_debug("open /dev/uio%d: the export's path is too long for a Unix socket", number);
        errno = ENAMETOOLONG;
        return -1;
    }
    REAL(socket, int (*)(int, int, int));
    int fd = real_socket(AF_UNIX, SOCK_STREAM | ((flags & O_CLOEXEC) ? SOCK_CLOEXEC : 0), 0);
    if (fd < 0) return -1;
    if (fd >= table_size) {
        REAL(close, int (*)(int));
        real_close(fd);
        errno = EMFILE;
        return -1;
    }
    // Connected blocking even for O_NONBLOCK: the export accepts one program at a time and a
    // half-made connection would fail the first read with a confusing error.
    REAL(connect, int (*)(int, const struct sockaddr *, socklen_t));
    if (real_connect(fd, (const struct sockaddr *)&address, sizeof address) != 0) {
        int error = errno;
        vmbus_uio_debug("open /dev/uio%d: cannot connect to %s: %s", number, address.sun_path, strerror(error));
        REAL(close, int (*)(int));
        real_close(fd);
        // A node that is gone (rescinded, or the host stopped) reads as a device that is gone.
        errno = (error == ECONNREFUSED || error == ENOENT) ? ENODEV : error;
        return -1;
    }
    // The export says when the channel is open (one 4-byte word, its interrupt count): a
    // kernel's open() returns only then, and a program that writes to the rings at once must
    // not race the reset the export does between opens.
    uint32_t opened;
    size_t got = 0;
    REAL(read, ssize_t (*)(int, void *, size_t));
    while (got < sizeof opened) {
        ssize_t n = real_read(fd, (char *)&opened + got, sizeof opened - got);
        if (n > 0) {
            got += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            vmbus_uio_debug("open /dev/uio%d: the export closed the node while opening", number);
            REAL(close, int (*)(int));
            real_close(fd);
            errno = ENODEV;
            return -1;
        }
    }
    if (flags & O_NONBLOCK) fcntl(fd, F_SETFL, O_NONBLOCK);
    remember(fd, number);
    vmbus_uio_debug("open /dev/uio%d: connected to %s (fd %d)", number, address.sun_path, fd);
    return fd;
}

// The 4-byte interrupt read. A count is written by the export in one 4-byte send, so it
// arrives whole; waiting for all four keeps a split one from being half-consumed.
static ssize_t node_read(int fd, void *buffer, size_t count) {
    if (count != 4) {
        errno = EINVAL;
        return -1;
    }
    int nonblocking = (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
    if (nonblocking) {
        // uio's O_NONBLOCK read: EAGAIN until a whole count is there.
        unsigned char peek[4];
        ssize_t ready = recv(fd, peek, 4, MSG_PEEK | MSG_DONTWAIT);
        if (ready == 0) {
            errno = EIO;
            return -1;
        }
        if (ready < 0) return -1;
        if (ready < 4) {
            errno = EAGAIN;
            return -1;
        }
    }
    ssize_t got = recv(fd, buffer, 4, MSG_WAITALL);
    if (got == 4) return 4;
    if (got >= 0) {
        // End of stream: the device was rescinded (or the host stopped).
        errno = EIO;
        return -1;
    }
    if (errno == ECONNRESET) errno = EIO;
    return -1;
}

// irqcontrol: the export applies it exactly as the driver's irqcontrol would.
static ssize_t node_write(int fd, const void *buffer, size_t count) {
    if (count != 4) {
        errno = EINVAL;
        return -1;
    }
    ssize_t sent = send(fd, buffer, 4, MSG_NOSIGNAL);
    if (sent == 4) return 4;
    if (sent >= 0 || errno == EPIPE || errno == ECONNRESET) errno = EIO;
    return -1;
}

ssize_t read(int fd, void *buffer, size_t count) {
    if (vmbus_uio_fd_number(fd) >= 0) return node_read(fd, buffer, count);
    REAL(read, ssize_t (*)(int, void *, size_t));
    return real_read(fd, buffer, count);
}

// uio ignores the file position, so pread is read (the fcopy daemon uses pread at 0).
ssize_t pread(int fd, void *buffer, size_t count, off_t offset) {
    if (vmbus_uio_fd_number(fd) >= 0) return node_read(fd, buffer, count);
    REAL(pread, ssize_t (*)(int, void *, size_t, off_t));
    return real_pread(fd, buffer, count, offset);
}

ssize_t pread64(int fd, void *buffer, size_t count, off64_t offset) {
    if (vmbus_uio_fd_number(fd) >= 0) return node_read(fd, buffer, count);
    REAL(pread64, ssize_t (*)(int, void *, size_t, off64_t));
    return real_pread64(fd, buffer, count, offset);
}

// _FORTIFY_SOURCE forms: the buffer bound is checked by libc's own when forwarded.
ssize_t __read_chk(int fd, void *buffer, size_t count, size_t buflen) {
    if (vmbus_uio_fd_number(fd) >= 0 && count <= buflen) return node_read(fd, buffer, count);
    REAL(__read_chk, ssize_t (*)(int, void *, size_t, size_t));
    return real___read_chk(fd, buffer, count, buflen);
}

ssize_t __pread_chk(int fd, void *buffer, size_t count, off_t offset, size_t buflen) {
    if (vmbus_uio_fd_number(fd) >= 0 && count <= buflen) return node_read(fd, buffer, count);
    REAL(__pread_chk, ssize_t (*)(int, void *, size_t, off_t, size_t));
    return real___pread_chk(fd, buffer, count, offset, buflen);
}

ssize_t __pread64_chk(int fd, void *buffer, size_t count, off64_t offset, size_t buflen) {
    if (vmbus_uio_fd_number(fd) >= 0 && count <= buflen) return node_read(fd, buffer, count);
    REAL(__pread64_chk, ssize_t (*)(int, void *, size_t, off64_t, size_t));
    return real___pread64_chk(fd, buffer, count, offset, buflen);
}

ssize_t write(int fd, const void *buffer, size_t count) {
    if (vmbus_uio_fd_number(fd) >= 0) return node_write(fd, buffer, count);
    REAL(write, ssize_t (*)(int, const void *, size_t));
    return real_write(fd, buffer, count);
}

ssize_t pwrite(int fd, const void *buffer, size_t count, off_t offset) {
    if (vmbus_uio_fd_number(fd) >= 0) return node_write(fd, buffer, count);
    REAL(pwrite, ssize_t (*)(int, const void *, size_t, off_t));
    return real_pwrite(fd, buffer, count, offset);
}

ssize_t pwrite64(int fd, const void *buffer, size_t count, off64_t offset) {
    if (vmbus_uio_fd_number(fd) >= 0) return node_write(fd, buffer, count);
    REAL(pwrite64, ssize_t (*)(int, const void *, size_t, off64_t));
    return real_pwrite64(fd, buffer, count, offset);
}

// mmap of the node: the offset picks the map (uio's convention), the export's map file
// backs it. Sizes and offsets are checked as uio checks them.
static void *node_mmap(int number, void *address, size_t length, int protection, int flags, off64_t offset) {
    long page = sysconf(_SC_PAGESIZE);
    if (offset < 0 || offset % page != 0 || offset / page > 4) {
        vmbus_uio_debug("mmap /dev/uio%d: offset %lld names no uio map (map K is at K x %ld)", number, (long long)offset, page);
        errno = EINVAL;
        return MAP_FAILED;
    }
    int map = (int)(offset / page);
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/dev/uio%d.map%d", vmbus_uio_export(), number, map) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return MAP_FAILED;
    }
    REAL(open, int (*)(const char *, int, ...));
    int fd = real_open(path, ((protection & PROT_WRITE) ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) {
        vmbus_uio_debug("mmap /dev/uio%d: map %d is not exported (%s: %s); the export serves maps 0-2, and 3-4 for a NIC",
                        number, map, path, strerror(errno));
        errno = EINVAL;
        return MAP_FAILED;
    }
    struct stat info = {0};
    REAL(close, int (*)(int));
    REAL(mmap64, void *(*)(void *, size_t, int, int, int, off64_t));
    if (fstat(fd, &info) != 0 || length == 0 || length > (size_t)info.st_size) {
        vmbus_uio_debug("mmap /dev/uio%d: %zu bytes of map %d, which has %lld", number, length, map, (long long)info.st_size);
        real_close(fd);
        errno = EINVAL;
        return MAP_FAILED;
    }
    void *mapped = real_mmap64(address, length, protection, flags, fd, 0);
    int error = errno;
    real_close(fd);
    vmbus_uio_debug("mmap /dev/uio%d: map %d, %zu bytes of %s%s", number, map, length, path, mapped == MAP_FAILED ? " failed" : "");
    errno = error;
    return mapped;
}

void *mmap(void *address, size_t length, int protection, int flags, int fd, off_t offset) {
    int number = vmbus_uio_fd_number(fd);
    if (number >= 0) return node_mmap(number, address, length, protection, flags, offset);
    REAL(mmap, void *(*)(void *, size_t, int, int, int, off_t));
    return real_mmap(address, length, protection, flags, fd, offset);
}

void *mmap64(void *address, size_t length, int protection, int flags, int fd, off64_t offset) {
    int number = vmbus_uio_fd_number(fd);
    if (number >= 0) return node_mmap(number, address, length, protection, flags, offset);
    REAL(mmap64, void *(*)(void *, size_t, int, int, int, off64_t));
    return real_mmap64(address, length, protection, flags, fd, offset);
}

// Closing the node ends the connection (the export closes the channel, as the last close
// of a real node does); the number is forgotten first so a reused descriptor is not ours.
int close(int fd) {
    forget(fd);
    REAL(close, int (*)(int));
    return real_close(fd);
}

// A duplicate of the node is the node too.
static int duplicated(int from, int to) {
    int number = vmbus_uio_fd_number(from);
    if (to >= 0) {
        if (number >= 0 && to < table_size) remember(to, number);
        else forget(to);
    }
    return to;
}

int dup(int fd) {
    REAL(dup, int (*)(int));
    return duplicated(fd, real_dup(fd));
}

int dup2(int fd, int to) {
    REAL(dup2, int (*)(int, int));
    return duplicated(fd, real_dup2(fd, to));
}

int dup3(int fd, int to, int flags) {
    REAL(dup3, int (*)(int, int, int));
    return duplicated(fd, real_dup3(fd, to, flags));
}
