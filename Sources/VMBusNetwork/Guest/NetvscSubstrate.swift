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

/// What a NIC gets from whatever carries it beyond its primary channel: sub-channels, guest
/// memory for large-send buffers, and the GPADLs its buffers are given back through. A VMBus
/// connection has all of them; a uio device has the sub-channels the kernel opened, no guest
/// memory to allocate from (a uio NIC runs without offloads, so it never asks) and buffers
/// that stay the kernel's.
struct NetvscSubstrate: Sendable {
    let openChannel: @Sendable (UInt32, RingPages, ChannelOptions) async throws -> Channel
    let teardown: @Sendable (UInt32) async throws -> Void
    let memory: Memory

    /// Pages handed out for large-send buffers, and given back.
    struct Memory: Sendable {
        let allocateRun: @Sendable (Int) throws -> GuestBuffer
        let releaseRun: @Sendable (GuestBuffer) -> Void

        func allocate(pages: Int) throws -> GuestBuffer { try self.allocateRun(pages) }
        func release(_ buffer: GuestBuffer) { self.releaseRun(buffer) }
    }

    init(_ bus: GuestBus) {
        self.openChannel = { relid, pages, options in try await bus.open(relid, pages: pages, options: options) }
        self.teardown = { handle in try await bus.teardownGpadl(handle) }
        let memory = bus.memory
        self.memory = Memory(allocateRun: { pages in try memory.allocate(pages: pages) }, releaseRun: { memory.release($0) })
    }

    /// A uio device's: sub-channels only.
    init(open: @escaping @Sendable (UInt32, RingPages, ChannelOptions) async throws -> Channel) {
        self.openChannel = open
        // The kernel registered the buffers and keeps them (05 §10.1).
        self.teardown = { _ in }
        self.memory = Memory(
            allocateRun: { _ in throw NetvscError.refused("large-send buffers: a uio device has no guest memory to allocate from") },
            releaseRun: { _ in })
    }

    /// Tears down one of the NIC's GPADLs (nothing for a uio device's).
    func teardownGpadl(_ handle: UInt32) async throws { try await self.teardown(handle) }

    /// Opens sub-channel `relid` (ring sizes apply to a VMBus connection only).
    func open(_ relid: UInt32, pages: RingPages, options: ChannelOptions) async throws -> Channel {
        try await self.openChannel(relid, pages, options)
    }
}
