#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include "CLinux.h"

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

const unsigned int CLINUX_MFD_CLOEXEC = MFD_CLOEXEC;
const unsigned int CLINUX_MFD_ALLOW_SEALING = MFD_ALLOW_SEALING;
const int CLINUX_F_SEAL_SEAL = F_SEAL_SEAL;
const int CLINUX_F_SEAL_SHRINK = F_SEAL_SHRINK;
const int CLINUX_F_SEAL_GROW = F_SEAL_GROW;
const int CLINUX_F_SEAL_WRITE = F_SEAL_WRITE;
