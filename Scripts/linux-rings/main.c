/* linux-rings: Linux's two VMBus ring implementations under the same load as
 * `vmbus bench ring` (two threads, one ring, copy-out reads, a fixed time per run).
 *
 *   linux-rings [--seconds S] [--warmup S] [--ring-size BYTES] [--rings uio,kern,kern-iter]
 *               SIZE...
 *
 * Prints one JSON line per ring and payload size. Each payload carries a sequence number that
 * the reader checks, so a ring that lost, repeated or reordered a packet fails the run. */
#define _GNU_SOURCE
#include <emmintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "harness.h"

struct run {
	const struct ring_impl *impl;
	void *ctx;
	size_t payload;
	atomic_int stop;
	/* Each on its own cache line: the reader's count is read only twice a run. */
	_Alignas(64) atomic_uint_fast64_t received;
	_Alignas(64) uint64_t errors;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void pause_for(double seconds)
{
	struct timespec ts = { (time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9) };

	while (nanosleep(&ts, &ts) != 0) {
	}
}

static void *writer(void *opaque)
{
	struct run *run = opaque;
	uint8_t *data = aligned_alloc(64, run->payload + 64);
	uint64_t sequence = 0;

	memset(data, 0x5a, run->payload);
	while (!atomic_load_explicit(&run->stop, memory_order_relaxed)) {
		memcpy(data, &sequence, sizeof(sequence));
		if (run->impl->write(run->ctx, data, run->payload) == 0)
			sequence++;
		else
			_mm_pause();
	}
	free(data);
	return NULL;
}

static void *reader(void *opaque)
{
	struct run *run = opaque;
	uint64_t expected = 0;

	while (!atomic_load_explicit(&run->stop, memory_order_relaxed)) {
		const void *payload = run->impl->read(run->ctx);

		if (payload == NULL) {
			_mm_pause();
			continue;
		}
		uint64_t sequence;
		memcpy(&sequence, payload, sizeof(sequence));
		if (sequence != expected)
			run->errors++;
		expected = sequence + 1;
		atomic_store_explicit(&run->received, atomic_load_explicit(&run->received, memory_order_relaxed) + 1,
				      memory_order_relaxed);
	}
	return NULL;
}

/* A memfd ring: the control page and data area, and the data area once more right after it. */
static uint8_t *map_ring(size_t ring_size, int double_mapped)
{
	int fd = memfd_create("linux-rings", MFD_CLOEXEC);
	size_t data = ring_size - 4096;
	size_t span = double_mapped ? ring_size + data : ring_size;

	if (fd < 0 || ftruncate(fd, (off_t)ring_size) != 0)
		return NULL;
	uint8_t *base = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		return NULL;
	if (mmap(base, ring_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED)
		return NULL;
	if (double_mapped &&
	    mmap(base + ring_size, data, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 4096) == MAP_FAILED)
		return NULL;
	close(fd);
	return base;
}

static int measure(const struct ring_impl *impl, size_t ring_size, size_t payload, double warmup, double seconds)
{
	uint8_t *ring = map_ring(ring_size, impl->double_mapped);
	struct run *run = aligned_alloc(64, sizeof(*run));
	pthread_t threads[2];

	if (ring == NULL) {
		perror("linux-rings: mapping the ring");
		return 1;
	}
	memset(run, 0, sizeof(*run));
	run->impl = impl;
	run->payload = payload;
	run->ctx = impl->open(ring, ring_size, payload);
	pthread_create(&threads[0], NULL, reader, run);
	pthread_create(&threads[1], NULL, writer, run);
	pause_for(warmup);
	uint64_t first = atomic_load(&run->received);
	double start = now();
	pause_for(seconds);
	uint64_t last = atomic_load(&run->received);
	double end = now();
	atomic_store(&run->stop, 1);
	pthread_join(threads[0], NULL);
	pthread_join(threads[1], NULL);
	double rate = (double)(last - first) / (end - start);
	printf("{\"bench\": \"linux-ring\", \"ring\": \"%s\", \"payload\": %zu, \"ring_size\": %zu, "
	       "\"packets_per_s\": %.0f, \"gb_per_s\": %.3f, \"errors\": %llu}\n",
	       impl->name, payload, ring_size, rate, rate * (double)payload / 1e9,
	       (unsigned long long)run->errors);
	fflush(stdout);
	int failed = run->errors != 0 || last == first;
	impl->close(run->ctx);
	free(run);
	munmap(ring, impl->double_mapped ? 2 * ring_size - 4096 : ring_size);
	return failed;
}

int main(int argc, char **argv)
{
	const struct ring_impl *all[] = { &uio_ring, &kern_ring, &kern_iter_ring };
	double seconds = 0.5, warmup = 0.1;
	size_t ring_size = 256 << 10;
	const char *rings = "uio,kern,kern-iter";
	size_t sizes[16];
	int count = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--warmup") == 0 && i + 1 < argc)
			warmup = atof(argv[++i]);
		else if (strcmp(argv[i], "--ring-size") == 0 && i + 1 < argc)
			ring_size = strtoul(argv[++i], NULL, 0);
		else if (strcmp(argv[i], "--rings") == 0 && i + 1 < argc)
			rings = argv[++i];
		else if (argv[i][0] != '-' && count < 16)
			sizes[count++] = strtoul(argv[i], NULL, 0);
		else {
			fprintf(stderr, "usage: %s [--seconds S] [--warmup S] [--ring-size BYTES] "
					"[--rings uio,kern,kern-iter] SIZE...\n", argv[0]);
			return 2;
		}
	}
	if (count == 0 || seconds <= 0 || ring_size < 8192 || ring_size % 4096 != 0) {
		fprintf(stderr, "%s: give payload sizes, a positive --seconds and a ring of whole pages\n", argv[0]);
		return 2;
	}
	int failed = 0;
	for (int s = 0; s < count; s++) {
		if (sizes[s] < 8 || (sizes[s] + 24) * 2 > ring_size - 4096) {
			fprintf(stderr, "%s: payload %zu does not fit twice in the ring\n", argv[0], sizes[s]);
			return 2;
		}
		for (size_t r = 0; r < sizeof(all) / sizeof(all[0]); r++) {
			/* Match whole names in the comma-separated list. */
			const char *name = all[r]->name, *at = rings;
			size_t length = strlen(name);
			int chosen = 0;
			while ((at = strstr(at, name)) != NULL) {
				if ((at == rings || at[-1] == ',') && (at[length] == ',' || at[length] == 0))
					chosen = 1;
				at += length;
			}
			if (chosen)
				failed |= measure(all[r], ring_size, sizes[s], warmup, seconds);
		}
	}
	return failed;
}
