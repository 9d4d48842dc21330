/* The two-thread ring harness of Scripts/bench-linux-rings.sh: one writer and one reader
 * thread move payloads of one size through one Linux ring implementation for a fixed time. */
#ifndef LINUX_RINGS_HARNESS_H
#define LINUX_RINGS_HARNESS_H

#include <stddef.h>
#include <stdint.h>

/* One ring implementation, driven the way its users drive it. */
struct ring_impl {
	const char *name;
	/* Sets up a fresh, empty ring on `ring` (control page first; the data area is also
	 * mapped a second time right after the ring when `double_mapped`). */
	void *(*open)(void *ring, size_t ring_size, size_t payload);
	/* Writes one packet carrying `payload` bytes from `data`: 0, or nonzero when full. */
	int (*write)(void *ctx, const void *data, size_t payload);
	/* Reads one packet, copying it out of the ring: a pointer to its payload, or NULL when
	 * the ring is empty. The pointer is valid until the next call. */
	const void *(*read)(void *ctx);
	void (*close)(void *ctx);
	int double_mapped;
};

extern const struct ring_impl uio_ring;
extern const struct ring_impl kern_ring;
extern const struct ring_impl kern_iter_ring;

#endif
