// doc-c-guest: a VMBus guest in plain C that attaches to a swift-vmbus host through the local
// substrate (spec 09, docs/SUBSTRATE.md), finds the "uppercase" device of the DocC articles,
// opens its channel and sends one request. It is the program of the article "Attaching a C
// program through spec 09" (Sources/VMBusLocal/Docs.docc), run by DocSnippetTests.
//
//     doc-c-guest SOCKET TEXT      prints the device's answer; exit 0, or 1 with a message
//
// Only libc and Linux calls; no error recovery beyond saying what failed.
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define PAGE 4096
#define MEMORY_BYTES (1 << 20)
#define RING_PAGES 4 // per direction: a control page, then 3 pages of data
#define RING_GPA (16 * PAGE) // where the rings sit in guest memory; page 0 is never used

// The uppercase device's class GUID, 5d2b6f1e-8c3a-4e57-9b1d-0f7a4c2e9d11, in its wire form:
// the first three fields little-endian, the last eight bytes as written.
static const uint8_t uppercase_class[16] = {0x1e, 0x6f, 0x2b, 0x5d, 0x3a, 0x8c, 0x57, 0x4e,
                                            0x9b, 0x1d, 0x0f, 0x7a, 0x4c, 0x2e, 0x9d, 0x11};

static int sock;
static uint8_t *memory; // guest physical memory: GPA = offset in the memfd
static int doorbell_to_host = -1, doorbell_from_host = -1;

static void fail(const char *what) {
    fprintf(stderr, "doc-c-guest: %s\n", what);
    exit(1);
}

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); } // x86-64 and arm64: little-endian
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

// --- Spec 09 frames: u16 kind, u16 flags (0), u32 body length, body; fds as SCM_RIGHTS. ---

static void send_frame(uint16_t kind, const uint8_t *body, uint32_t length, int fd) {
    uint8_t frame[4096];
    memcpy(frame, &kind, 2);
    memset(frame + 2, 0, 2);
    put32(frame + 4, length);
    memcpy(frame + 8, body, length);
    struct iovec iov = {frame, 8 + length};
    union { struct cmsghdr align; char bytes[CMSG_SPACE(sizeof(int))]; } control;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        msg.msg_control = control.bytes;
        msg.msg_controllen = sizeof(control.bytes);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    if (sendmsg(sock, &msg, MSG_NOSIGNAL) != (ssize_t)(8 + length)) fail("cannot send a frame");
}

// Receives one frame into `frame`; returns its kind. DOORBELLS frames keep their two eventfds.
static uint16_t receive_frame(uint8_t frame[4096]) {
    struct iovec iov = {frame, 4096};
    union { struct cmsghdr align; char bytes[CMSG_SPACE(2 * sizeof(int))]; } control;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.bytes,
                         .msg_controllen = sizeof(control.bytes)};
    ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (n < 8) fail("the host closed the connection");
    if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) fail("a truncated frame");
    uint16_t kind;
    memcpy(&kind, frame, 2);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (kind == 5) { // DOORBELLS: [0] guest -> host, [1] host -> guest
        if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(2 * sizeof(int))) fail("DOORBELLS without fds");
        memcpy(&doorbell_to_host, CMSG_DATA(c), sizeof(int));
        memcpy(&doorbell_from_host, CMSG_DATA(c) + sizeof(int), sizeof(int));
    }
    return kind;
}

// --- VMBus channel messages (spec 04) travel in MESSAGE frames (kind 4). ---

static uint32_t message_connection = 4; // InitiateContact from 5.0 on; then the host's choice

static void post(const uint8_t *message, uint32_t size) {
    uint8_t body[12 + 240];
    put32(body, message_connection);
    put32(body + 4, 1); // message type 1: a VMBus channel message
    put32(body + 8, size);
    memcpy(body + 12, message, size);
    send_frame(4, body, 12 + size, -1);
}

// Waits for the channel message of type `type` and returns its bytes (its 8-byte header first).
static const uint8_t *wait_for(uint32_t type) {
    static uint8_t frame[4096];
    for (;;) {
        uint16_t kind = receive_frame(frame);
        if (kind == 6) fail("the host said GOODBYE");
        if (kind != 4) continue; // DOORBELLS was kept by receive_frame
        const uint8_t *message = frame + 8 + 12;
        if (get32(message) == type) return message;
    }
}

// --- Rings (spec 02): a control page, then the data area; packets wrap around it. ---

struct ring { uint8_t *control, *data; uint32_t size; };

static void copy_in(struct ring *r, uint32_t at, const void *from, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) r->data[(at + i) % r->size] = ((const uint8_t *)from)[i];
}
static void copy_out(const struct ring *r, uint32_t at, void *to, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) ((uint8_t *)to)[i] = r->data[(at + i) % r->size];
}

int main(int argc, char **argv) {
    if (argc != 3) fail("usage: doc-c-guest SOCKET TEXT");
    const char *text = argv[2];
    uint32_t length = (uint32_t)strlen(text);
    if (length > 1024) fail("TEXT is longer than 1024 bytes");

    // 1. Guest memory: a memfd sealed against shrinking and growing, mapped here too.
    int memfd = memfd_create("guest-memory", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (memfd < 0 || ftruncate(memfd, MEMORY_BYTES) != 0 ||
        fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) fail("cannot create guest memory");
    memory = mmap(NULL, MEMORY_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    if (memory == MAP_FAILED) fail("cannot map guest memory");

    // 2. Connect and say HELLO with the memory; the host answers WELCOME (or REFUSE).
    sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    strncpy(address.sun_path, argv[1], sizeof(address.sun_path) - 1);
    if (connect(sock, (struct sockaddr *)&address, sizeof(address)) != 0) fail("cannot connect");
    uint8_t hello[24] = {0};
    put32(hello, 1);        // substrate version
    put32(hello + 4, PAGE); // page size
    put64(hello + 8, MEMORY_BYTES);
    send_frame(1, hello, sizeof(hello), memfd);
    uint8_t frame[4096];
    if (receive_frame(frame) != 2) fail("no WELCOME");

    // 3. InitiateContact at version 5.0, interrupts on SINT 2, no monitor pages.
    uint8_t contact[40] = {0};
    put32(contact, 14);
    put32(contact + 8, 5 << 16); // version 5.0
    contact[16] = 2;             // SINT
    post(contact, sizeof(contact));
    const uint8_t *version = wait_for(15);
    if (version[8] == 0) fail("the host does not speak version 5.0");
    message_connection = get32(version + 12);

    // 4. Ask for the offers; keep the uppercase device's relid.
    uint8_t request_offers[8] = {3};
    post(request_offers, sizeof(request_offers));
    uint32_t relid = 0;
    for (;;) {
        static uint8_t offers[4096];
        if (receive_frame(offers) != 4) continue;
        const uint8_t *message = offers + 8 + 12;
        if (get32(message) == 4) break; // AllOffersDelivered
        if (get32(message) == 1 && memcmp(message + 8, uppercase_class, 16) == 0) relid = get32(message + 184);
    }
    if (relid == 0) fail("no uppercase device offered");

    // 5. Describe the rings' pages to the host in a GPADL: 4 pages out, then 4 pages in.
    uint8_t gpadl[28 + 8 * 2 * RING_PAGES] = {0};
    put32(gpadl, 8); // GpadlHeader
    put32(gpadl + 8, relid);
    put32(gpadl + 12, 1);                                     // our handle for it
    gpadl[16] = 8 + 8 * 2 * RING_PAGES;                       // range_buflen
    gpadl[18] = 1;                                            // one range
    put32(gpadl + 20, 2 * RING_PAGES * PAGE);                 // byte count
    for (int i = 0; i < 2 * RING_PAGES; i++) put64(gpadl + 28 + 8 * i, RING_GPA / PAGE + i);
    post(gpadl, sizeof(gpadl));
    if (get32(wait_for(10) + 16) != 0) fail("the host refused the GPADL");

    // 6. Announce pending_send_sz support on both rings, then OpenChannel. The host sends
    //    DOORBELLS (two eventfds) before its OpenResult.
    struct ring out = {memory + RING_GPA, memory + RING_GPA + PAGE, (RING_PAGES - 1) * PAGE};
    struct ring in = {out.control + RING_PAGES * PAGE, out.control + (RING_PAGES + 1) * PAGE, (RING_PAGES - 1) * PAGE};
    put32(out.control + 64, 1);
    put32(in.control + 64, 1);
    uint8_t open[148] = {0};
    put32(open, 5);
    put32(open + 8, relid);
    put32(open + 12, relid);      // open id, echoed in the result
    put32(open + 16, 1);          // the GPADL
    put32(open + 24, RING_PAGES); // where the host -> guest ring starts, in pages
    post(open, sizeof(open));
    if (get32(wait_for(6) + 16) != 0) fail("the host refused to open the channel");
    if (doorbell_to_host < 0) fail("no DOORBELLS before OpenResult");

    // 7. Write one in-band packet asking for a completion: a 16-byte descriptor, the payload
    //    padded to 8 bytes, then the 8-byte trailer; publish the write index; ring the doorbell.
    uint32_t padded = (length + 7) & ~7u;
    uint8_t packet[16 + 1024 + 8] = {0};
    uint16_t descriptor[4] = {6, 2, (uint16_t)((16 + padded) / 8), 1}; // in-band, header 2×8, length/8, completion requested
    memcpy(packet, descriptor, 8);
    put64(packet + 8, 42); // transaction id
    memcpy(packet + 16, text, length);
    uint32_t start = get32(out.control); // write_index
    put64(packet + 16 + padded, (uint64_t)start << 32);
    copy_in(&out, start, packet, 16 + padded + 8);
    __atomic_store_n((uint32_t *)out.control, (start + 16 + padded + 8) % out.size, __ATOMIC_RELEASE);
    uint64_t one = 1;
    if (write(doorbell_to_host, &one, 8) != 8) fail("cannot ring the host's doorbell");

    // 8. Wait for the host's doorbell until the completion is in the incoming ring. The limit
    //    is generous: on a loaded two-core machine the host's reader task may wait seconds for a
    //    thread.
    while (__atomic_load_n((uint32_t *)in.control, __ATOMIC_ACQUIRE) == get32(in.control + 4)) {
        struct pollfd wait = {doorbell_from_host, POLLIN, 0};
        if (poll(&wait, 1, 60000) != 1) fail("no answer within 60 s");
        uint64_t count;
        if (read(doorbell_from_host, &count, 8) != 8) fail("cannot read the doorbell");
    }
    uint32_t read_at = get32(in.control + 4);
    uint16_t answer_descriptor[4];
    uint64_t transaction;
    copy_out(&in, read_at, answer_descriptor, 8);
    copy_out(&in, read_at + 8, &transaction, 8);
    uint32_t total = answer_descriptor[2] * 8u, offset = answer_descriptor[1] * 8u;
    if (answer_descriptor[0] != 11 || transaction != 42 || total < offset + length || total > 16 + 1024)
        fail("the answer is not the completion of the request");
    char answer[1025] = {0};
    copy_out(&in, read_at + offset, answer, length);
    __atomic_store_n((uint32_t *)(in.control + 4), (read_at + total + 8) % in.size, __ATOMIC_RELEASE);
    printf("%s\n", answer);

    // 9. Say GOODBYE (reason 0, normal): the host closes the channel and releases everything.
    uint8_t goodbye[4] = {0};
    send_frame(6, goodbye, sizeof(goodbye), -1);
    close(sock);
    return 0;
}
