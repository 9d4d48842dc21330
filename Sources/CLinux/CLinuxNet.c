// TAP devices, interface settings and packet sockets (see CLinuxNet.h). The request codes and
// flags are the documented ones of netdevice(7), packet(7) and the kernel's
// Documentation/networking/tuntap.rst.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include "CLinuxNet.h"

const int CLINUX_IFNAMSIZ = IFNAMSIZ;

// A name that fits struct ifreq with its NUL; anything longer is refused rather than cut.
static int clinux_ifreq(struct ifreq *request, const char *name) {
    memset(request, 0, sizeof(*request));
    if (strlen(name) >= IFNAMSIZ) {
        errno = EINVAL;
        return -1;
    }
    strncpy(request->ifr_name, name, IFNAMSIZ - 1);
    return 0;
}

int clinux_tap_open(const char *device, const char *name, int multi_queue, int vnet_header, char *actual_name, int *failed_step) {
    struct ifreq request;
    *failed_step = 0;
    if (clinux_ifreq(&request, name) != 0) return -1;
    int fd = open(device, O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        *failed_step = 1;
        return -1;
    }
    request.ifr_flags = IFF_TAP | IFF_NO_PI | (multi_queue ? IFF_MULTI_QUEUE : 0) | (vnet_header ? IFF_VNET_HDR : 0);
    if (ioctl(fd, TUNSETIFF, &request) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        *failed_step = 2;
        return -1;
    }
    memcpy(actual_name, request.ifr_name, IFNAMSIZ);
    actual_name[IFNAMSIZ - 1] = 0;
    return fd;
}

const unsigned int CLINUX_TUN_F_CSUM = TUN_F_CSUM, CLINUX_TUN_F_TSO4 = TUN_F_TSO4, CLINUX_TUN_F_TSO6 = TUN_F_TSO6;

int clinux_tap_set_offload(int fd, unsigned int flags) { return ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags); }

ssize_t clinux_writev2(int fd, const void *head, size_t head_length, const void *body, size_t body_length) {
    struct iovec pieces[2] = {{(void *)head, head_length}, {(void *)body, body_length}};
    return writev(fd, pieces, 2);
}

// Interface ioctls go through any socket of the caller's network namespace.
static int clinux_if_ioctl(const char *name, unsigned long code, struct ifreq *request) {
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) return -1;
    int rc = ioctl(sock, code, request);
    int saved = errno;
    close(sock);
    errno = saved;
    return rc;
}

int clinux_if_get_mtu(const char *name) {
    struct ifreq request;
    if (clinux_ifreq(&request, name) != 0 || clinux_if_ioctl(name, SIOCGIFMTU, &request) != 0) return -1;
    return request.ifr_mtu;
}

int clinux_if_set_mtu(const char *name, int mtu) {
    struct ifreq request;
    if (clinux_ifreq(&request, name) != 0) return -1;
    request.ifr_mtu = mtu;
    return clinux_if_ioctl(name, SIOCSIFMTU, &request);
}

int clinux_if_get_mac(const char *name, uint8_t *mac) {
    struct ifreq request;
    if (clinux_ifreq(&request, name) != 0 || clinux_if_ioctl(name, SIOCGIFHWADDR, &request) != 0) return -1;
    memcpy(mac, request.ifr_hwaddr.sa_data, 6);
    return 0;
}

int clinux_if_set_mac(const char *name, const uint8_t *mac) {
    struct ifreq request;
    if (clinux_ifreq(&request, name) != 0) return -1;
    request.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    memcpy(request.ifr_hwaddr.sa_data, mac, 6);
    return clinux_if_ioctl(name, SIOCSIFHWADDR, &request);
}

int clinux_if_is_up(const char *name) {
    struct ifreq request;
    if (clinux_ifreq(&request, name) != 0 || clinux_if_ioctl(name, SIOCGIFFLAGS, &request) != 0) return -1;
    return (request.ifr_flags & IFF_UP) ? 1 : 0;
}

int clinux_if_set_up(const char *name, int up) {
    struct ifreq request;
    if (clinux_ifreq(&request, name) != 0 || clinux_if_ioctl(name, SIOCGIFFLAGS, &request) != 0) return -1;
    if (up) request.ifr_flags |= IFF_UP; else request.ifr_flags &= ~IFF_UP;
    return clinux_if_ioctl(name, SIOCSIFFLAGS, &request);
}

int clinux_if_index(const char *name) {
    unsigned int index = if_nametoindex(name);
    return index == 0 ? -1 : (int)index;
}

int clinux_packet_socket(int ifindex, int ethertype) {
    int sock = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons((uint16_t)ethertype));
    if (sock < 0) return -1;
    struct sockaddr_ll address;
    memset(&address, 0, sizeof(address));
    address.sll_family = AF_PACKET;
    address.sll_protocol = htons((uint16_t)ethertype);
    address.sll_ifindex = ifindex;
    if (bind(sock, (struct sockaddr *)&address, sizeof(address)) != 0) {
        int saved = errno;
        close(sock);
        errno = saved;
        return -1;
    }
    return sock;
}

static long clinux_now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

int clinux_wait_readable(int fd, int timeout_ms) {
    long deadline = clinux_now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
    for (;;) {
        struct pollfd entry = { .fd = fd, .events = POLLIN, .revents = 0 };
        int left = timeout_ms < 0 ? -1 : (int)(deadline - clinux_now_ms());
        if (timeout_ms >= 0 && left < 0) left = 0;
        int n = poll(&entry, 1, left);
        if (n >= 0) return n > 0 ? 1 : 0;
        if (errno != EINTR) return -1;
    }
}
