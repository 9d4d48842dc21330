/* tools/hv/vmbus_bufring.c driven as hv_fcopy_uio_daemon drives it: rte_vmbus_chan_send for an
 * in-band packet, rte_vmbus_chan_recv_raw copying the whole packet out. */
#include <errno.h>
#include <stdlib.h>
#include "vmbus_bufring.h"
#include "harness.h"

struct uio_ctx {
	struct vmbus_br tx;
	struct vmbus_br rx;
	uint8_t *buffer;
	uint32_t capacity;
};

static void *uio_open(void *ring, size_t ring_size, size_t payload)
{
	struct uio_ctx *ctx = calloc(1, sizeof(*ctx));

	ctx->capacity = (uint32_t)(payload + 64);
	ctx->buffer = aligned_alloc(64, ctx->capacity);
	vmbus_br_setup(&ctx->tx, ring, (unsigned int)ring_size);
	vmbus_br_setup(&ctx->rx, ring, (unsigned int)ring_size);
	return ctx;
}

static int uio_write(void *opaque, const void *data, size_t payload)
{
	struct uio_ctx *ctx = opaque;

	return rte_vmbus_chan_send(&ctx->tx, VMBUS_CHANPKT_TYPE_INBAND, (void *)data, (uint32_t)payload, 0);
}

static const void *uio_read(void *opaque)
{
	struct uio_ctx *ctx = opaque;
	uint32_t length = ctx->capacity;
	int result = rte_vmbus_chan_recv_raw(&ctx->rx, ctx->buffer, &length);

	if (result <= 0)
		return NULL;
	return ctx->buffer + ((const struct vmbus_chanpkt_hdr *)ctx->buffer)->hlen * 8;
}

static void uio_close(void *opaque)
{
	struct uio_ctx *ctx = opaque;

	free(ctx->buffer);
	free(ctx);
}

const struct ring_impl uio_ring = { "uio", uio_open, uio_write, uio_read, uio_close, 0 };
