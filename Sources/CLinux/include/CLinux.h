// Linux system calls and macros that Swift's Glibc module does not import.
//
// Functions that need _GNU_SOURCE (memfd_create, F_ADD_SEALS, struct ucred) are real functions
// defined in CLinux.c, because a feature macro cannot reach headers imported through Glibc.
// The CMSG_* macros become static inline functions so Swift can call them.
#ifndef CLINUX_H
#define CLINUX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <sys/epoll.h>
#include "CLinuxNet.h"

/// memfd_create(2).
int clinux_memfd_create(const char *name, unsigned int flags);
/// preadv2/pwritev2 with RWF_NOWAIT: -1 with EAGAIN when the data is not in the page cache
/// (or the write would block); EOPNOTSUPP where the file system cannot say.
struct iovec;
long clinux_preadv_nowait(int fd, const struct iovec *iov, int count, long long offset);
long clinux_pwritev_nowait(int fd, const struct iovec *iov, int count, long long offset);
/// fcntl(fd, F_ADD_SEALS, seals).
int clinux_add_seals(int fd, int seals);
/// fcntl(fd, F_GET_SEALS).
int clinux_get_seals(int fd);
/// perf_event_open(2) for this thread's user-space instructions retired, counting from now:
/// the descriptor, or -1 with errno (ENOENT/EOPNOTSUPP where the machine has no hardware
/// counters, as in most VMs; EACCES under a strict perf_event_paranoid).
int clinux_instruction_counter_open(void);
/// The count of a counter from clinux_instruction_counter_open, or -1.
long long clinux_instruction_counter_read(int fd);
/// getsockopt(SO_PEERCRED) on a connected Unix socket.
int clinux_peer_cred(int sock, pid_t *pid, uid_t *uid, gid_t *gid);

extern const unsigned int CLINUX_MFD_CLOEXEC;
extern const unsigned int CLINUX_MFD_ALLOW_SEALING;
extern const int CLINUX_F_SEAL_SEAL;
extern const int CLINUX_F_SEAL_SHRINK;
extern const int CLINUX_F_SEAL_GROW;
extern const int CLINUX_F_SEAL_WRITE;

/// The CPU's spin-wait hint (x86 PAUSE): a polling loop that uses it yields the core's
/// resources to a sibling thread and stops hammering the cache line it watches.
static inline void clinux_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
static inline size_t clinux_cmsg_space(size_t n) { return CMSG_SPACE(n); }
static inline size_t clinux_cmsg_len(size_t n) { return CMSG_LEN(n); }
static inline struct cmsghdr *clinux_cmsg_firsthdr(struct msghdr *m) { return CMSG_FIRSTHDR(m); }
static inline struct cmsghdr *clinux_cmsg_nxthdr(struct msghdr *m, struct cmsghdr *c) { return CMSG_NXTHDR(m, c); }
static inline unsigned char *clinux_cmsg_data(struct cmsghdr *c) { return CMSG_DATA(c); }

/* Unix SOCK_SEQPACKET sockets (spec 09): listen at / connect to a path; -1 and errno on failure. */
int clinux_seqpacket_listen(const char *path, int backlog);
/// A Unix socket of `type` (SOCK_STREAM, SOCK_SEQPACKET) bound to `path` and listening.
int clinux_unix_listen(const char *path, int type, int backlog);
/// A Unix socket of `type` connected to `path`.
int clinux_unix_connect(const char *path, int type);
/// A TCP socket listening on host:port (port 0: any free port), SO_REUSEADDR set.
int clinux_tcp_listen(const char *host, int port, int backlog);
/// A TCP socket connected to host:port, TCP_NODELAY set.
int clinux_tcp_connect(const char *host, int port);
/// Sets TCP_NODELAY (accepted sockets).
int clinux_tcp_nodelay(int fd);
/// The local port of a TCP socket.
int clinux_local_port(int fd);
int clinux_seqpacket_connect(const char *path);
/* accept4 with SOCK_CLOEXEC, retrying on EINTR. */
int clinux_accept(int sock);
/* One datagram with up to `nfds` descriptors as SCM_RIGHTS (MSG_NOSIGNAL). */
ssize_t clinux_send_fds(int sock, const void *buf, size_t len, const int *fds, int nfds);
/* One datagram; descriptors land in fds (at most maxfds, extra ones are closed), their count
   in *nfds; *truncated is 1 if the datagram or its control data did not fit (MSG_TRUNC or
   MSG_CTRUNC). Descriptors are received close-on-exec. */
ssize_t clinux_recv_fds(int sock, void *buf, size_t len, int *fds, int maxfds, int *nfds, int *truncated);
/* epoll with a u64 token per descriptor. */
int clinux_epoll_add(int ep, int fd, uint64_t token);
int clinux_epoll_del(int ep, int fd);
int clinux_epoll_wait(int ep, uint64_t *tokens, int max, int timeout_ms);
/// Runs `path` with `argv` (NULL-terminated; environment inherited, standard input
/// /dev/null, every signal default and unblocked) and waits for it. Past `timeout_ms` it is
/// sent SIGTERM, and SIGKILL `grace_ms` later. Returns 0 if it ended in time, 1 if it was
/// stopped, -1 with errno if it could not start; `*status` is its wait status (-1 if lost).
int clinux_run_command(const char *path, char *const argv[], int timeout_ms, int grace_ms, int *status);

/* Disk images (VMBusStorage's FileDisk). */
/// O_DIRECT, which needs _GNU_SOURCE and so is not visible through Glibc.
extern const int CLINUX_O_DIRECT;
/// fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE): frees the blocks of a byte range,
/// which then reads as zeros; the file's size is kept. -1 and errno on failure (EOPNOTSUPP
/// where the file system cannot punch holes).
int clinux_punch_hole(int fd, off_t offset, off_t length);
/// statx(STATX_DIOALIGN): the alignment O_DIRECT needs of memory buffers and of file offsets
/// and lengths. 0 on success; -1 and errno (EOPNOTSUPP when the kernel, its headers or the file
/// system do not report it, or the file does not support direct I/O).
int clinux_dio_alignment(int fd, unsigned int *memory_alignment, unsigned int *offset_alignment);

/// Installs SIGINT/SIGTERM handlers (once) that count signals on the returned eventfd; -1 on
/// failure.
int clinux_termination_signals(void);

/// SIGUSR1 from now on, counted on an eventfd by a signal handler (the same eventfd for every
/// call) instead of its default action: `vmbus guest`'s hibernation request. -1 on failure.
int clinux_hibernate_signal(void);

/// Names the calling thread (pthread_setname_np; at most 15 bytes are kept).
void clinux_set_thread_name(const char *name);
/// The calling thread's name into `buffer` (16 bytes at least); 0 on success.
int clinux_thread_name(char *buffer, size_t size);

/// Copies `count` bytes with non-temporal (streaming) stores where the CPU has them (x86-64),
/// then fences them (sfence), so a store published after the call is seen after them; elsewhere
/// a plain memcpy. One of the two kinds of store a ring's large writes choose between
/// (`clinux_copy_choice`): the lines go out of the writer's cache instead of being fetched for
/// ownership from the reader's, which doubles what two threads move through a ring at 16 KiB
/// when the reader's cache is far, and costs three times as much when the two share one
/// (BENCHMARKS.md).
void clinux_copy_streaming(void *destination, const void *source, size_t count);

/// How one ring's writer copies its large payloads: with plain stores or streaming ones,
/// whichever gives the ring more throughput where its reader runs now.
///
/// Which wins depends on where the reader's core is. When its cache is far (another core
/// complex), a plain store must first fetch each line back from it, and streaming stores double
/// the throughput; when the two threads share a cache, plain stores stay in it and streaming
/// stores (which go out to memory) are three times slower; in between, plain stores cost the
/// writer more yet leave the lines where the reader gets them faster. The hypervisor moves the
/// vCPUs between these placements, and only the ring's pace shows which wins, so the writer
/// times epochs of 32 large writes (wall time from an epoch's first write to the next epoch's,
/// waiting for room included), keeps a moving average of each kind's time per byte, and uses
/// the cheaper kind. One epoch in 16 tries the other kind, one in 64 when that one was more than
/// half as dear again. Zero-initialise; one writer at a time.
typedef struct clinux_copy_choice {
    /// Time-stamp counter at the start of the current epoch.
    uint64_t epoch_start;
    /// Bytes written in the current epoch.
    uint64_t epoch_bytes;
    /// Epochs started so far.
    uint32_t epochs;
    /// Large writes in the current epoch.
    uint32_t epoch_writes;
    /// Moving averages of the time per byte, in time-stamp ticks per 256 bytes; 0 until measured.
    uint32_t plain_cost;
    uint32_t streaming_cost;
    /// Whether writes outside exploration epochs stream.
    uint8_t streaming;
    /// Whether the current epoch streams.
    uint8_t epoch_streaming;
    /// 0: choose by measurement; 1: always plain; 2: always streaming (benchmarks and tests).
    uint8_t forced;
} clinux_copy_choice;

/// Large writes per timed epoch.
#define CLINUX_COPY_EPOCH 32

/// Whether the next large write starts an epoch (and so needs the time-stamp counter).
int clinux_copy_choice_due(const clinux_copy_choice *choice);

/// The kind of store the next large write of `count` bytes uses (1: streaming, 0: plain).
/// `now` is the time-stamp counter when the write is due to start an epoch, else ignored;
/// closing an epoch records its time per byte and updates the choice.
int clinux_copy_choice_next(clinux_copy_choice *choice, size_t count, uint64_t now);

/// Records one measured time per byte (ticks per 256 bytes) for a kind of store and updates
/// which kind is used: the moving average takes an eighth of each sample, clamped to four times
/// the average (a preempted epoch), and the choice moves only to a kind at least an eighth
/// cheaper.
void clinux_copy_choice_record(clinux_copy_choice *choice, int streaming, uint64_t cost);

/// Copies `count` bytes from `source`: the first `first` to `destination`, the rest to `wrapped`
/// (the start of a ring's data area), with the kind of store `choice` picks. Ends with a store
/// fence when streaming, as `clinux_copy_streaming` does.
void clinux_copy_large(clinux_copy_choice *choice, void *destination, void *wrapped, const void *source,
                       size_t first, size_t count);

#endif
