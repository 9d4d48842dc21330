import VMBusChannel
import VMBusGuest
import VMBusMemory
import VMBusWire

/// A NIC's receive and send buffers as the guest reaches them: both in one mapping, at the
/// offsets of their runs, with the GPADL handles the host knows them by (11 §4).
struct NetvscBuffers: Sendable {
    let memory: MappedMemory
    let receive: GuestBuffer
    let send: GuestBuffer
    let gpadls: (receive: UInt32, send: UInt32)
}

/// What a NIC gets from whatever carries it beyond its primary channel: sub-channels, and guest
/// memory for large-send buffers. A VMBus connection has both; a uio device has the
/// sub-channels the kernel opened and no guest memory to allocate from (a uio NIC runs
/// without offloads, so it never asks).
struct NetvscSubstrate: Sendable {
    let openChannel: @Sendable (UInt32, RingPages, ChannelOptions) async throws -> Channel
    let memory: Memory

    /// Pages handed out for large-send buffers.
    struct Memory: Sendable {
        let allocateRun: @Sendable (Int) throws -> GuestBuffer

        func allocate(pages: Int) throws -> GuestBuffer { try self.allocateRun(pages) }
    }

    init(_ bus: GuestBus) {
        self.openChannel = { relid, pages, options in try await bus.open(relid, pages: pages, options: options) }
        let memory = bus.memory
        self.memory = Memory { pages in try memory.allocate(pages: pages) }
    }

    /// A substrate without guest memory (uio).
    init(open: @escaping @Sendable (UInt32, RingPages, ChannelOptions) async throws -> Channel) {
        self.openChannel = open
        self.memory = Memory { _ in throw NetvscError.refused("large-send buffers: a uio device has no guest memory to allocate from") }
    }

    /// Opens sub-channel `relid` (ring sizes apply to a VMBus connection only).
    func open(_ relid: UInt32, pages: RingPages, options: ChannelOptions) async throws -> Channel {
        try await self.openChannel(relid, pages, options)
    }
}
