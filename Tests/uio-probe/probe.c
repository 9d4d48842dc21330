// uio-probe: the smallest uio_hv_generic driver for the file-copy device, written with only
// the calls a real one makes — opendir/readdir to find uioN, fopen of a sysfs attribute,
// open(/dev/uioN), mmap of map 0, a 4-byte write to unmask, 4-byte preads to wait — so that,
// run under libvmbus-uio-preload.so, it proves an unmodified program can drive the export.
//
// It answers the host's IC version negotiation, then waits for the first file-copy message
// (which the host sends only once negotiation succeeded), refuses it as "file exists" so the
// host's copy ends at once, and exits 0. Each step is printed on standard output. Exit 1:
// a call failed; 2: the host sent something unexpected. `--edges` checks failures instead.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FCOPY_DEVICE "/sys/bus/vmbus/devices/eb765408-105f-49b6-b4aa-c123b64d17d4"

// Ring control page fields (spec 02): indices into the data area that follows the page.
struct ring {
    volatile uint32_t *write_index, *read_index, *pending_send_size;
    uint8_t *data;
    uint32_t size;
};

static struct ring ring_at(uint8_t *base, size_t ring_bytes) {
    return (struct ring){(volatile uint32_t *)base, (volatile uint32_t *)(base + 4), (volatile uint32_t *)(base + 12),
                         base + 4096, (uint32_t)(ring_bytes - 4096)};
}

static void copy_out(const struct ring *r, uint32_t at, uint8_t *to, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) to[i] = r->data[(at + i) % r->size];
}

static void copy_in(struct ring *r, uint32_t at, const uint8_t *from, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) r->data[(at + i) % r->size] = from[i];
}

static uint16_t u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static void set16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void set32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }

// One in-band packet's payload from the host's ring: 1 read, 0 empty, -1 malformed. The
// indices are the host's to set, so each is checked before use.
static int receive(struct ring *r, uint8_t *payload, uint32_t capacity, uint32_t *length, uint64_t *transaction) {
    uint32_t write = __atomic_load_n(r->write_index, __ATOMIC_ACQUIRE), read = *r->read_index;
    if (write == read) return 0;
    if (write >= r->size || read >= r->size || write % 8 || read % 8) return -1;
    uint32_t available = (write + r->size - read) % r->size;
    uint8_t descriptor[16];
    if (available < 16) return -1;
    copy_out(r, read, descriptor, 16);
    uint32_t offset = u16(descriptor + 2) * 8u, total = u16(descriptor + 4) * 8u;
    if (offset < 16 || offset > total || total + 8 > available || total - offset > capacity) return -1;
    copy_out(r, (read + offset) % r->size, payload, total - offset);
    memcpy(transaction, descriptor + 8, 8);
    *length = total - offset;
    __atomic_store_n(r->read_index, (read + total + 8) % r->size, __ATOMIC_RELEASE);
    return 1;
}

// Appends an in-band packet (type 6) to the guest's ring; -1 if it does not fit.
static int send(struct ring *r, const uint8_t *payload, uint32_t length, uint64_t transaction) {
    uint32_t write = *r->write_index, read = __atomic_load_n(r->read_index, __ATOMIC_ACQUIRE);
    uint32_t total = 16 + (length + 7) / 8 * 8, used = (write + r->size - read) % r->size;
    if (total + 8 >= r->size - used) return -1;
    uint8_t descriptor[16] = {0}, zeros[8] = {0}, trailer[8] = {0};
    set16(descriptor, 6);
    set16(descriptor + 2, 2);
    set16(descriptor + 4, (uint16_t)(total / 8));
    memcpy(descriptor + 8, &transaction, 8);
    set32(trailer + 4, write);  // the previous write index, in the high half
    copy_in(r, write, descriptor, 16);
    copy_in(r, (write + 16) % r->size, payload, length);
    copy_in(r, (write + 16 + length) % r->size, zeros, total - 16 - length);
    copy_in(r, (write + total) % r->size, trailer, 8);
    __atomic_store_n(r->write_index, (write + total + 8) % r->size, __ATOMIC_RELEASE);
    return 0;
}

// Rewrites a negotiate request into the answer in place: one framework (3.0, else 1.0) and
// file copy 1.1, or a failure status when the host offers neither.
static int answer_negotiation(uint8_t *message, uint32_t length, uint32_t *answer_length) {
    uint8_t *ic = message + 8, *body = ic + 20;
    if (length < 8 + 20 + 8) return -1;
    uint32_t frameworks = u16(body), services = u16(body + 2);
    if (frameworks > 100 || services > 100 || 28 + 8 + 4 * (frameworks + services) > length) return -1;
    uint32_t framework = 0, service = 0;
    for (uint32_t i = 0; i < frameworks + services; i++) {
        uint32_t version = u16(body + 8 + 4 * i) << 16 | u16(body + 10 + 4 * i);
        if (i < frameworks && (version == 0x30000 || (version == 0x10000 && framework == 0))) framework = version;
        if (i >= frameworks && version == 0x10001) service = version;
    }
    if (length < 28 + 16) return -1;
    set16(ic + 10, 16);
    set32(ic + 12, framework && service ? 0 : 0x80004005);
    ic[17] = 0x05;  // transaction | response
    set16(body, 1);
    set16(body + 2, 1);
    set16(body + 8, (uint16_t)(framework >> 16));
    set16(body + 10, (uint16_t)framework);
    set16(body + 12, (uint16_t)(service >> 16));
    set16(body + 14, (uint16_t)service);
    *answer_length = length;
    printf("negotiated framework %u.%u, file copy %u.%u\n", framework >> 16, framework & 0xffff, service >> 16, service & 0xffff);
    return framework && service ? 0 : -1;
}

// Waits until the host has read everything written to `r`: exiting earlier would close the
// channel before the host saw the last answer. pending_send_sz asks the host for a signal as
// soon as it frees any room (spec 02); the index check after the fence covers a host that
// read before the request was visible.
static int wait_until_read(struct ring *r, int fd) {
    uint32_t write = *r->write_index, read = __atomic_load_n(r->read_index, __ATOMIC_ACQUIRE);
    __atomic_store_n(r->pending_send_size, r->size - (write + r->size - read) % r->size, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    int32_t word;
    while (__atomic_load_n(r->read_index, __ATOMIC_ACQUIRE) != write) {
        if (pread(fd, &word, 4, 0) != 4) return -1;
    }
    return 0;
}

static int fail(const char *what) {
    printf("%s failed: %s\n", what, strerror(errno));
    return 1;
}

// --edges: the failures a program must see as it would on a kernel — a map the export does
// not back, a read of the wrong size, and reads after the host rescinded the device (the
// caller stops the host once "waiting for the rescind" is printed).
static int edges(int fd) {
    long page = sysconf(_SC_PAGESIZE);
    // Map 3 is a NIC's receive buffer: file copy has none.
    void *buffer = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 3 * page);
    printf("mmap of map 3: %s\n", buffer == MAP_FAILED ? strerror(errno) : "mapped");
    uint64_t wide;
    printf("read of 8 bytes: %s\n", read(fd, &wide, 8) < 0 ? strerror(errno) : "succeeded");
    printf("waiting for the rescind\n");
    fflush(stdout);
    int32_t word;
    while (pread(fd, &word, 4, 0) == 4) continue;
    printf("pread after the rescind: %s\n", strerror(errno));
    return 0;
}

int main(int argc, char **argv) {
    DIR *directory = opendir(FCOPY_DEVICE "/uio");
    if (!directory) return fail("opendir " FCOPY_DEVICE "/uio");
    char node[64] = "";
    for (struct dirent *entry; (entry = readdir(directory));) {
        if (strncmp(entry->d_name, "uio", 3) == 0) snprintf(node, sizeof node, "%s", entry->d_name);
    }
    closedir(directory);
    char path[128];
    snprintf(path, sizeof path, "/sys/class/uio/%s/maps/map0/size", node);
    FILE *attribute = fopen(path, "r");
    unsigned long map_bytes = 0;
    if (!attribute) return fail("fopen map0/size");
    int parsed = fscanf(attribute, "%lx", &map_bytes);
    fclose(attribute);
    if (parsed != 1 || map_bytes < 2 * 8192 || map_bytes % 8192) return fail("parse map0/size");
    snprintf(path, sizeof path, "/dev/%s", node);
    int fd = open(path, O_RDWR);
    if (fd < 0) return fail("open /dev/uioN");
    printf("opened %s, map 0 is %lu bytes\n", path, map_bytes);
    uint8_t *rings = mmap(NULL, map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (rings == MAP_FAILED) return fail("mmap map 0");
    if (argc > 1 && strcmp(argv[1], "--edges") == 0) return edges(fd);
    struct ring outbound = ring_at(rings, map_bytes / 2), inbound = ring_at(rings + map_bytes / 2, map_bytes / 2);
    static uint8_t message[16384];
    for (int negotiated = 0, first = 1;; first = 0) {
        // irqcontrol 1: unmask, and signal the host about any answer just written.
        int32_t word = 1;
        if (write(fd, &word, 4) != 4) return fail("irqcontrol unmask");
        // The first wait is blind, as hv_fcopy_uio_daemon's is: the host's first message may
        // already be in the ring, and its interrupt must still come. Later waits look first,
        // since what the host wrote while the ring was masked raised no interrupt (spec 02).
        int empty = __atomic_load_n(inbound.write_index, __ATOMIC_ACQUIRE) == *inbound.read_index;
        if ((first || empty) && pread(fd, &word, 4, 0) != 4) return fail("pread (wait for an interrupt)");
        uint32_t length, answer_length;
        uint64_t transaction;
        int got;
        while ((got = receive(&inbound, message, sizeof message, &length, &transaction)) == 1) {
            if (length < 28) return printf("a packet too short for an IC message\n"), 2;
            uint16_t type = u16(message + 8 + 4);
            if (type == 0 && !negotiated) {
                if (answer_negotiation(message, length, &answer_length) != 0) return 2;
                negotiated = 1;
            } else if (type == 7 && negotiated && length >= 28 + 4) {
                uint32_t operation = message[28] | message[29] << 8 | message[30] << 16 | (uint32_t)message[31] << 24;
                printf("file copy operation %u\n", operation);
                set32(message + 8 + 12, 0x80070050);  // "the file exists": the copy ends here
                message[8 + 17] = 0x05;
                answer_length = length;
            } else {
                return printf("unexpected IC message type %u\n", type), 2;
            }
            if (send(&outbound, message, answer_length, transaction) != 0) return printf("the answer does not fit\n"), 2;
            fflush(stdout);
            word = 1;
            if (type != 7) continue;
            if (write(fd, &word, 4) != 4) return fail("irqcontrol signal");
            return wait_until_read(&outbound, fd) == 0 ? 0 : fail("pread (wait for the host to read)");
        }
        if (got < 0) return printf("a malformed ring from the host\n"), 2;
    }
}
