/* drivers/hv/ring_buffer.c driven as the kernel's VMBus drivers drive it: hv_ringbuffer_write
 * with the three pieces vmbus_sendpacket passes (descriptor, payload, padding), and either
 * hv_ringbuffer_read ("kern", what vmbus_recvpacket does) or the packet iterator ("kern-iter",
 * what netvsc and storvsc do: hv_pkt_iter_first/next, then hv_pkt_iter_close after a batch of
 * at most 64 packets, NAPI's weight, or when the ring is empty). */
#include <linux/hyperv.h>
#include "harness.h"

struct kern_ctx {
	struct vmbus_channel channel;
	uint8_t *buffer;
	uint32_t capacity;
	uint64_t request;
	/* The iterator's place: the packet it returned last, and how many since the last close. */
	struct vmpacket_descriptor *current;
	int batch;
};

static void *kern_open(void *ring, size_t ring_size, size_t payload)
{
	struct kern_ctx *ctx = calloc(1, sizeof(*ctx));
	struct hv_ring_buffer *shared = ring;
	struct hv_ring_buffer_info *infos[2] = { &ctx->channel.outbound, &ctx->channel.inbound };

	memset(shared, 0, sizeof(*shared));
	shared->feature_bits.value = 1;
	for (int i = 0; i < 2; i++) {
		infos[i]->ring_buffer = shared;
		infos[i]->ring_size = (u32)ring_size;
		infos[i]->ring_datasize = (u32)(ring_size - sizeof(struct hv_ring_buffer));
		spin_lock_init(&infos[i]->ring_lock);
	}
	/* The reader's copy buffer holds one whole packet (a driver sizes it to its largest). */
	ctx->channel.inbound.pkt_buffer_size = (u32)(payload + 64);
	ctx->channel.inbound.pkt_buffer = calloc(1, payload + 64);
	ctx->capacity = (u32)(payload + 64);
	ctx->buffer = aligned_alloc(64, ctx->capacity);
	return ctx;
}

static int kern_write(void *opaque, const void *data, size_t payload)
{
	struct kern_ctx *ctx = opaque;
	u32 packet_len = sizeof(struct vmpacket_descriptor) + (u32)payload;
	u32 aligned = (packet_len + 7) & ~7u;
	u64 padding = 0;
	struct vmpacket_descriptor desc = {
		.type = VM_PKT_DATA_INBAND,
		.offset8 = sizeof(struct vmpacket_descriptor) >> 3,
		.len8 = (u16)(aligned >> 3),
		.flags = 0,
		.trans_id = ctx->request,
	};
	struct kvec pieces[3] = {
		{ &desc, sizeof(desc) },
		{ (void *)data, payload },
		{ &padding, aligned - packet_len },
	};
	int result = hv_ringbuffer_write(&ctx->channel, pieces, 3, ctx->request, NULL);

	if (result == 0)
		ctx->request++;
	return result;
}

static const void *kern_read(void *opaque)
{
	struct kern_ctx *ctx = opaque;
	u32 actual = 0;
	u64 request = 0;

	if (hv_ringbuffer_read(&ctx->channel, ctx->buffer, ctx->capacity, &actual, &request, false) != 0 || actual == 0)
		return NULL;
	return ctx->buffer;
}

static const void *kern_iter_read(void *opaque)
{
	struct kern_ctx *ctx = opaque;
	struct vmpacket_descriptor *desc = ctx->current;

	if (desc == NULL) {
		desc = hv_pkt_iter_first(&ctx->channel);
		if (desc == NULL)
			return NULL;
	}
	/* The iterator already copied the packet out of the ring (hv_pkt_iter_first); copy its
	 * payload once more only to hand it on, as hv_ringbuffer_read does. */
	const uint8_t *payload = (const uint8_t *)desc + (desc->offset8 << 3);
	u32 length = (desc->len8 << 3) - (desc->offset8 << 3);
	memcpy(ctx->buffer, payload, length);
	ctx->current = __hv_pkt_iter_next(&ctx->channel, desc);
	if (ctx->current == NULL || ++ctx->batch == 64) {
		hv_pkt_iter_close(&ctx->channel);
		ctx->batch = 0;
	}
	return ctx->buffer;
}

static void kern_close(void *opaque)
{
	struct kern_ctx *ctx = opaque;

	free(ctx->channel.inbound.pkt_buffer);
	free(ctx->buffer);
	free(ctx);
}

const struct ring_impl kern_ring = { "kern", kern_open, kern_write, kern_read, kern_close, 1 };
const struct ring_impl kern_iter_ring = { "kern-iter", kern_open, kern_write, kern_iter_read, kern_close, 1 };
