// Network-interface calls for TAP devices and packet sockets: the ioctls and socket
// addresses Swift's Glibc module does not import (linux/if_tun.h, struct ifreq, sockaddr_ll).
//
// Every function returns -1 with errno set on failure, like the system calls it wraps.
#ifndef CLINUX_NET_H
#define CLINUX_NET_H

#include <stdint.h>
#include <sys/types.h>

/// The longest interface name plus its terminating NUL (IFNAMSIZ).
extern const int CLINUX_IFNAMSIZ;

/// Opens `device` (normally "/dev/net/tun") and attaches the descriptor to the TAP interface
/// `name` (IFF_TAP | IFF_NO_PI: whole Ethernet frames, no packet-information header), creating
/// it if it does not exist; an empty name lets the kernel pick one ("tapN"). With
/// `multi_queue`, IFF_MULTI_QUEUE: every call with the same name adds one queue. The
/// descriptor is close-on-exec and non-blocking. The interface's name is copied to
/// `actual_name` (CLINUX_IFNAMSIZ bytes). `*failed_step` says what failed: 1 open, 2 ioctl.
/// With `vnet_header`, IFF_VNET_HDR: every read and write starts with a 10-byte
/// struct virtio_net_hdr (checksum and segmentation offload state).
int clinux_tap_open(const char *device, const char *name, int multi_queue, int vnet_header, char *actual_name, int *failed_step);

/// TUNSETOFFLOAD: which offloads the kernel may hand this TAP's reader (TUN_F_* bits).
int clinux_tap_set_offload(int fd, unsigned int flags);
/// TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6.
extern const unsigned int CLINUX_TUN_F_CSUM, CLINUX_TUN_F_TSO4, CLINUX_TUN_F_TSO6;

/// writev(2) of two pieces: a header and a body, as one frame.
ssize_t clinux_writev2(int fd, const void *head, size_t head_length, const void *body, size_t body_length);

/// SIOCGIFMTU / SIOCSIFMTU on interface `name`.
int clinux_if_get_mtu(const char *name);
int clinux_if_set_mtu(const char *name, int mtu);
/// SIOCGIFHWADDR / SIOCSIFHWADDR (Ethernet): six bytes at `mac`.
int clinux_if_get_mac(const char *name, uint8_t *mac);
int clinux_if_set_mac(const char *name, const uint8_t *mac);
/// SIOCGIFFLAGS: 1 if IFF_UP is set, 0 if not.
int clinux_if_is_up(const char *name);
/// SIOCSIFFLAGS: sets or clears IFF_UP, keeping the other flags.
int clinux_if_set_up(const char *name, int up);
/// if_nametoindex; -1 (errno ENODEV) if there is no such interface.
int clinux_if_index(const char *name);

/// An AF_PACKET SOCK_RAW socket bound to interface `ifindex` that receives frames of
/// `ethertype` (host order; 0x0003 ETH_P_ALL: every frame, incoming and outgoing), whole with
/// their Ethernet header. Close-on-exec and non-blocking.
int clinux_packet_socket(int ifindex, int ethertype);

/// poll(2) for POLLIN on one descriptor, retrying on EINTR with the time left: 1 readable,
/// 0 timed out. A negative timeout waits forever.
int clinux_wait_readable(int fd, int timeout_ms);

#endif
