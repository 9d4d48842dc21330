#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <sys/uio.h>
#include <pthread.h>
#include "CLinux.h"
#if defined(__x86_64__)
#include <emmintrin.h>
#include <x86intrin.h>
#endif

long clinux_preadv_nowait(int fd, const struct iovec *iov, int count, long long offset) {
    return preadv2(fd, iov, count, offset, RWF_NOWAIT);
}
long clinux_pwritev_nowait(int fd, const struct iovec *iov, int count, long long offset) {
    return pwritev2(fd, iov, count, offset, RWF_NOWAIT);
}

int clinux_memfd_create(const char *name, unsigned int flags) { return memfd_create(name, flags); }
int clinux_add_seals(int fd, int seals) { return fcntl(fd, F_ADD_SEALS, seals); }
int clinux_get_seals(int fd) { return fcntl(fd, F_GET_SEALS); }

int clinux_peer_cred(int sock, pid_t *pid, uid_t *uid, gid_t *gid) {
    struct ucred cred;
    socklen_t len = sizeof(cred);
    int rc = getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len);
    if (rc == 0) {
        *pid = cred.pid;
        *uid = cred.uid;
        *gid = cred.gid;
    }
    return rc;
}

const int CLINUX_O_DIRECT = O_DIRECT;

int clinux_punch_hole(int fd, off_t offset, off_t length) {
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
}

int clinux_dio_alignment(int fd, unsigned int *memory_alignment, unsigned int *offset_alignment) {
#ifdef STATX_DIOALIGN
    struct statx st;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &st) != 0) return -1;
    if (!(st.stx_mask & STATX_DIOALIGN) || st.stx_dio_mem_align == 0) {
        errno = EOPNOTSUPP;
        return -1;
    }
    *memory_alignment = st.stx_dio_mem_align;
    *offset_alignment = st.stx_dio_offset_align;
    return 0;
#else
    (void)fd;
    (void)memory_alignment;
    (void)offset_alignment;
    errno = EOPNOTSUPP;
    return -1;
#endif
}

const unsigned int CLINUX_MFD_CLOEXEC = MFD_CLOEXEC;
const unsigned int CLINUX_MFD_ALLOW_SEALING = MFD_ALLOW_SEALING;
const int CLINUX_F_SEAL_SEAL = F_SEAL_SEAL;
const int CLINUX_F_SEAL_SHRINK = F_SEAL_SHRINK;
const int CLINUX_F_SEAL_GROW = F_SEAL_GROW;
const int CLINUX_F_SEAL_WRITE = F_SEAL_WRITE;

static int clinux_unix_address(const char *path, struct sockaddr_un *address) {
    memset(address, 0, sizeof(*address));
    address->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(address->sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(address->sun_path, path);
    return 0;
}

int clinux_unix_listen(const char *path, int type, int backlog) {
    struct sockaddr_un address;
    if (clinux_unix_address(path, &address) != 0) return -1;
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (bind(fd, (struct sockaddr *)&address, sizeof(address)) != 0 || listen(fd, backlog) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int clinux_seqpacket_listen(const char *path, int backlog) {
    return clinux_unix_listen(path, SOCK_SEQPACKET, backlog);
}

int clinux_seqpacket_connect(const char *path) {
    return clinux_unix_connect(path, SOCK_SEQPACKET);
}

int clinux_unix_connect(const char *path, int type) {
    struct sockaddr_un address;
    if (clinux_unix_address(path, &address) != 0) return -1;
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&address, sizeof(address)) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

ssize_t clinux_send_fds(int sock, const void *buf, size_t len, const int *fds, int nfds) {
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    char control[CMSG_SPACE(sizeof(int) * 8)];
    if (nfds > 8) {
        errno = EINVAL;
        return -1;
    }
    if (nfds > 0) {
        memset(control, 0, sizeof(control));
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    ssize_t n;
    do { n = sendmsg(sock, &msg, MSG_NOSIGNAL); } while (n < 0 && errno == EINTR);
    return n;
}

ssize_t clinux_recv_fds(int sock, void *buf, size_t len, int *fds, int maxfds, int *nfds, int *truncated) {
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    char control[CMSG_SPACE(sizeof(int) * 8)];
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n;
    do { n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); } while (n < 0 && errno == EINTR);
    *nfds = 0;
    *truncated = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
    if (n < 0) return n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *received = (int *)CMSG_DATA(c);
        for (int i = 0; i < count; i++) {
            if (*nfds < maxfds) {
                fds[(*nfds)++] = received[i];
            } else {
                close(received[i]);
                *truncated = 1;
            }
        }
    }
    return n;
}

int clinux_epoll_add(int ep, int fd, uint64_t token) {
    struct epoll_event event;
    memset(&event, 0, sizeof(event));
    event.events = EPOLLIN;
    event.data.u64 = token;
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &event);
}

int clinux_epoll_del(int ep, int fd) { return epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL); }

int clinux_epoll_wait(int ep, uint64_t *tokens, int max, int timeout_ms) {
    struct epoll_event events[64];
    if (max > 64) max = 64;
    int n;
    do { n = epoll_wait(ep, events, max, timeout_ms); } while (n < 0 && errno == EINTR);
    for (int i = 0; i < n; i++) tokens[i] = events[i].data.u64;
    return n;
}

int clinux_accept(int sock) {
    int fd;
    do { fd = accept4(sock, NULL, NULL, SOCK_CLOEXEC); } while (fd < 0 && errno == EINTR);
    return fd;
}

// TCP: one address from getaddrinfo (numeric or a name), first that works.
static int clinux_tcp_open(const char *host, int port, int listening, int backlog) {
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = listening ? AI_PASSIVE : 0;
    struct addrinfo *found = NULL;
    int status = getaddrinfo(host, service, &hints, &found);
    if (status != 0) {
        errno = status == EAI_SYSTEM ? errno : EHOSTUNREACH;
        return -1;
    }
    int fd = -1;
    int saved = EADDRNOTAVAIL;
    for (struct addrinfo *a = found; a != NULL; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) { saved = errno; continue; }
        int ok;
        if (listening) {
            int one = 1;
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            ok = bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, backlog) == 0;
        } else {
            ok = connect(fd, a->ai_addr, a->ai_addrlen) == 0;
        }
        if (ok) break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(found);
    if (fd < 0) errno = saved;
    return fd;
}

int clinux_tcp_listen(const char *host, int port, int backlog) { return clinux_tcp_open(host, port, 1, backlog); }

int clinux_tcp_connect(const char *host, int port) {
    int fd = clinux_tcp_open(host, port, 0, 0);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    return fd;
}

int clinux_tcp_nodelay(int fd) {
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int clinux_local_port(int fd) {
    struct sockaddr_storage address;
    socklen_t length = sizeof(address);
    if (getsockname(fd, (struct sockaddr *)&address, &length) != 0) return -1;
    if (address.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&address)->sin_port);
    if (address.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&address)->sin6_port);
    errno = EAFNOSUPPORT;
    return -1;
}

/* Hooks (VSS, shutdown): a child with a clean signal state, waited for with a deadline. */

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <time.h>
#include <sys/syscall.h>
#include <sys/wait.h>

extern char **environ;

static long long clinux_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until `pid` ends or `timeout_ms` passes: 1 if it ended (not yet reaped), 0 on timeout.
   A pidfd makes this one poll; kernels without pidfd_open (before 5.3) fall back to checking
   every 10 ms with waitid(WNOWAIT), which leaves the child to the final waitpid. */
static int clinux_wait_exit(pid_t pid, int pidfd, int timeout_ms) {
    long long deadline = clinux_now_ms() + timeout_ms;
    for (;;) {
        long long left = deadline - clinux_now_ms();
        if (pidfd >= 0) {
            struct pollfd p = { .fd = pidfd, .events = POLLIN };
            int rc = poll(&p, 1, left > 0 ? (int)left : 0);
            if (rc > 0) return 1;
            if (rc == 0) return 0;
            if (errno != EINTR) return 0;
        } else {
            siginfo_t info;
            memset(&info, 0, sizeof(info));
            if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid) return 1;
            if (left <= 0) return 0;
            struct timespec ten = { .tv_sec = 0, .tv_nsec = 10 * 1000 * 1000 };
            nanosleep(&ten, NULL);
        }
    }
}

int clinux_run_command(const char *path, char *const argv[], int timeout_ms, int grace_ms, int *status) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawnattr_init(&attributes);
    /* The caller may ignore or block signals (a daemon ignores SIGTERM to handle it itself);
       the child must start with every signal at its default and none blocked, or SIGTERM
       could not stop it and a shell's pipes would not see SIGPIPE. */
    posix_spawnattr_setsigdefault(&attributes, &all);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    pid_t pid;
    int rc = posix_spawn(&pid, path, &actions, &attributes, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    int result = 0;
    if (!clinux_wait_exit(pid, pidfd, timeout_ms)) {
        result = 1;
        kill(pid, SIGTERM);
        if (!clinux_wait_exit(pid, pidfd, grace_ms)) kill(pid, SIGKILL);
    }
    if (pidfd >= 0) close(pidfd);
    while (waitpid(pid, status, 0) < 0) {
        if (errno != EINTR) {
            *status = -1;
            break;
        }
    }
    return result;
}

/* SIGINT and SIGTERM counted on an eventfd by a real signal handler, installed synchronously:
 * a signal that arrives right after the call is never lost (a dispatch signal source registers
 * asynchronously, and the ignored disposition it needs discards signals until it has). */
static int clinux_termination_fd = -1;

static void clinux_on_termination(int signal_number) {
    (void)signal_number;
    int saved = errno;
    uint64_t one = 1;
    ssize_t written = write(clinux_termination_fd, &one, sizeof(one));
    (void)written;
    errno = saved;
}

int clinux_termination_signals(void) {
    if (clinux_termination_fd >= 0) return clinux_termination_fd;
    int fd = eventfd(0, EFD_CLOEXEC);
    if (fd < 0) return -1;
    clinux_termination_fd = fd;
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = clinux_on_termination;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    if (sigaction(SIGINT, &action, NULL) != 0 || sigaction(SIGTERM, &action, NULL) != 0) return -1;
    return fd;
}

static int clinux_hibernate_fd = -1;

static void clinux_on_hibernate(int signal_number) {
    (void)signal_number;
    int saved = errno;
    uint64_t one = 1;
    ssize_t written = write(clinux_hibernate_fd, &one, sizeof(one));
    (void)written;
    errno = saved;
}

int clinux_hibernate_signal(void) {
    if (clinux_hibernate_fd >= 0) return clinux_hibernate_fd;
    int fd = eventfd(0, EFD_CLOEXEC);
    if (fd < 0) return -1;
    clinux_hibernate_fd = fd;
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = clinux_on_hibernate;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    if (sigaction(SIGUSR1, &action, NULL) != 0) return -1;
    return fd;
}

int clinux_instruction_counter_open(void) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_HARDWARE;
    attr.config = PERF_COUNT_HW_INSTRUCTIONS;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    // pid 0, cpu -1: this thread, on whichever CPU it runs.
    return (int)syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

long long clinux_instruction_counter_read(int fd) {
    long long count = 0;
    return read(fd, &count, sizeof count) == (ssize_t)sizeof count ? count : -1;
}

void clinux_set_thread_name(const char *name) {
    char cut[16];
    snprintf(cut, sizeof cut, "%s", name);
    pthread_setname_np(pthread_self(), cut);
}
int clinux_thread_name(char *buffer, size_t size) { return pthread_getname_np(pthread_self(), buffer, size); }

void clinux_copy_streaming(void *destination, const void *source, size_t count) {
#if defined(__x86_64__)
    unsigned char *to = destination;
    const unsigned char *from = source;
    // Streaming stores want a 16-byte aligned destination; ring payloads are 8-byte aligned.
    size_t head = (16 - ((uintptr_t)to & 15)) & 15;
    if (head > count) head = count;
    memcpy(to, from, head);
    to += head;
    from += head;
    count -= head;
    size_t body = count & ~(size_t)63;
    for (size_t i = 0; i < body; i += 64) {
        __m128i a = _mm_loadu_si128((const __m128i *)(from + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(from + i + 16));
        __m128i c = _mm_loadu_si128((const __m128i *)(from + i + 32));
        __m128i d = _mm_loadu_si128((const __m128i *)(from + i + 48));
        _mm_stream_si128((__m128i *)(to + i), a);
        _mm_stream_si128((__m128i *)(to + i + 16), b);
        _mm_stream_si128((__m128i *)(to + i + 32), c);
        _mm_stream_si128((__m128i *)(to + i + 48), d);
    }
    memcpy(to + body, from + body, count - body);
    // Streaming stores are weakly ordered: without the fence the index published next could
    // become visible before the data.
    _mm_sfence();
#else
    memcpy(destination, source, count);
#endif
}

int clinux_copy_choice_due(const clinux_copy_choice *choice) {
    return choice->forced == 0 && choice->epoch_writes == 0;
}

void clinux_copy_choice_record(clinux_copy_choice *choice, int streaming, uint64_t sample) {
    uint32_t *cost = streaming ? &choice->streaming_cost : &choice->plain_cost;
    if (*cost != 0 && sample > (uint64_t)*cost * 4) sample = (uint64_t)*cost * 4;
    if (sample > UINT32_MAX / 2) sample = UINT32_MAX / 2;
    if (sample == 0) sample = 1;
    *cost = *cost == 0 ? (uint32_t)sample : (uint32_t)(*cost - *cost / 8 + sample / 8);
    uint32_t plain = choice->plain_cost, stream = choice->streaming_cost;
    if (plain == 0 || stream == 0) return;
    if (choice->streaming && plain < stream - stream / 8) choice->streaming = 0;
    else if (!choice->streaming && stream < plain - plain / 8) choice->streaming = 1;
}

int clinux_copy_choice_next(clinux_copy_choice *choice, size_t count, uint64_t now) {
    if (choice->forced != 0) return choice->forced == 2;
    if (choice->epoch_writes == 0) {
        // The previous epoch ends where this one starts: its time includes any wait for room
        // after its last write, which is the reader's pace showing.
        if (choice->epochs != 0 && choice->epoch_bytes != 0 && now > choice->epoch_start)
            clinux_copy_choice_record(choice, choice->epoch_streaming,
                                      (now - choice->epoch_start) * 256 / choice->epoch_bytes);
        choice->epochs++;
        uint32_t current = choice->streaming ? choice->streaming_cost : choice->plain_cost;
        uint32_t other = choice->streaming ? choice->plain_cost : choice->streaming_cost;
        // Far dearer alternatives are tried less often: each try costs its difference.
        uint32_t period = (uint64_t)other * 2 > (uint64_t)current * 3 ? 64 : 16;
        int explore = other == 0 || choice->epochs % period == 0;
        choice->epoch_streaming = explore ? !choice->streaming : choice->streaming;
        choice->epoch_start = now;
        choice->epoch_bytes = 0;
    }
    choice->epoch_bytes += count;
    if (++choice->epoch_writes == CLINUX_COPY_EPOCH) choice->epoch_writes = 0;
    return choice->epoch_streaming;
}

static inline uint64_t clinux_ticks(void) {
#if defined(__x86_64__)
    return __rdtsc();
#else
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
#endif
}

void clinux_copy_large(clinux_copy_choice *choice, void *destination, void *wrapped, const void *source,
                       size_t first, size_t count) {
    uint64_t now = clinux_copy_choice_due(choice) ? clinux_ticks() : 0;
    if (clinux_copy_choice_next(choice, count, now)) {
        clinux_copy_streaming(destination, source, first);
        if (first < count) clinux_copy_streaming(wrapped, (const unsigned char *)source + first, count - first);
    } else {
        memcpy(destination, source, first);
        if (first < count) memcpy(wrapped, (const unsigned char *)source + first, count - first);
    }
}
