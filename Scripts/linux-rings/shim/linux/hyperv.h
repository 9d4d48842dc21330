/* Hyper-V ring types for the ring_buffer.c harness (Scripts/bench-linux-rings.sh): the shared
 * control page as spec 02 lays it out, and the channel fields ring_buffer.c touches. */
#ifndef SHIM_LINUX_HYPERV_H
#define SHIM_LINUX_HYPERV_H

#include <linux/kernel.h>

struct hv_ring_buffer {
	u32 write_index;
	u32 read_index;
	u32 interrupt_mask;
	u32 pending_send_sz;
	u32 reserved1[12];
	union {
		struct {
			u32 feat_pending_send_sz:1;
		};
		u32 value;
	} feature_bits;
	u8 reserved2[PAGE_SIZE - 68];
	u8 buffer[];
} __packed;

struct hv_ring_buffer_info {
	struct hv_ring_buffer *ring_buffer;
	u32 ring_size;
	struct reciprocal_value ring_size_div10_reciprocal;
	spinlock_t ring_lock;
	u32 ring_datasize;
	u32 priv_read_index;
	struct mutex ring_buffer_mutex;
	void *pkt_buffer;
	u32 pkt_buffer_size;
};

struct hv_ring_buffer_debug_info {
	u32 current_interrupt_mask;
	u32 current_read_index;
	u32 current_write_index;
	u32 bytes_avail_toread;
	u32 bytes_avail_towrite;
};

struct vmpacket_descriptor {
	u16 type;
	u16 offset8;
	u16 len8;
	u16 flags;
	u64 trans_id;
} __packed;

#define VM_PKT_DATA_INBAND 6
#define VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED 1
#define VMBUS_NO_RQSTOR U64_MAX
#define VMBUS_RQST_ERROR (U64_MAX - 1)

struct vmbus_channel {
	struct hv_ring_buffer_info outbound;
	struct hv_ring_buffer_info inbound;
	bool rescind;
	bool out_full_flag;
	u64 intr_out_empty;
	u64 intr_in_full;
	u64 out_full_total;
	u64 out_full_first;
	u64 (*next_request_id_callback)(struct vmbus_channel *channel, u64 rqst_addr);
	u64 (*request_addr_callback)(struct vmbus_channel *channel, u64 rqst_id);
	/* The harness's stand-in for the hypercall: counted, not sent (nobody waits for it). */
	u64 signals;
};

/* Free space for the writer, as the reader last published it. */
static inline u32 hv_get_bytes_to_write(const struct hv_ring_buffer_info *rbi)
{
	u32 read_loc = READ_ONCE(rbi->ring_buffer->read_index);
	u32 write_loc = rbi->ring_buffer->write_index;
	u32 dsize = rbi->ring_datasize;

	return write_loc >= read_loc ? dsize - (write_loc - read_loc) : read_loc - write_loc;
}

static inline void vmbus_setevent(struct vmbus_channel *channel)
{
	channel->signals++;
}

struct vmpacket_descriptor *hv_pkt_iter_first(struct vmbus_channel *channel);
struct vmpacket_descriptor *__hv_pkt_iter_next(struct vmbus_channel *channel,
					       const struct vmpacket_descriptor *desc);
void hv_pkt_iter_close(struct vmbus_channel *channel);
int hv_ringbuffer_write(struct vmbus_channel *channel, const struct kvec *kv_list, u32 kv_count,
			u64 requestid, u64 *trans_id);
int hv_ringbuffer_read(struct vmbus_channel *channel, void *buffer, u32 buflen,
		       u32 *buffer_actual_len, u64 *requestid, bool raw);

#endif
