import VMBusMemory
import VMBusRing

/// Where a channel's two rings sit in its ring GPADL (01 §2): the guest's outbound ring first,
/// its inbound ring from `downstreamPageOffset`. The host sees the same pages with the roles
/// swapped.
public enum ChannelRings {
    /// Which end of the channel a side is.
    public enum Side: Hashable, Sendable {
        /// The guest: writes the first ring (guest → host), reads the second.
        case guest
        /// The host: writes the second ring (host → guest), reads the first.
        case host
    }

    /// The two rings of a ring GPADL of `size` bytes at `offset` of `memory` (by default the
    /// whole mapping, as a host maps a GPADL).
    /// - Throws: `MemoryError` unless both rings are at least two whole pages inside the mapping.
    public static func rings(
        in memory: MappedMemory, offset: Int = 0, size: Int? = nil, downstreamPageOffset: Int, side: Side
    ) throws(MemoryError) -> (outgoing: SharedRingMemory, incoming: SharedRingMemory) {
        let total = size ?? (memory.size - offset)
        let split = downstreamPageOffset * MappedMemory.pageSize
        guard downstreamPageOffset > 0, split < total else { throw MemoryError.invalidSize(split) }
        let guestToHost = try SharedRingMemory(memory: memory, offset: offset, ringSize: split)
        let hostToGuest = try SharedRingMemory(memory: memory, offset: offset + split, ringSize: total - split)
        switch side {
        case .guest: return (guestToHost, hostToGuest)
        case .host: return (hostToGuest, guestToHost)
        }
    }

    /// What a guest does before OpenChannel (01 §3): zero both control pages and announce
    /// `pending_send_sz` support on both.
    public static func initialize(
        _ memory: MappedMemory, offset: Int = 0, size: Int? = nil, downstreamPageOffset: Int
    ) throws(MemoryError) {
        let (outgoing, incoming) = try Self.rings(
            in: memory, offset: offset, size: size, downstreamPageOffset: downstreamPageOffset, side: .guest)
        outgoing.initializeControlPage()
        incoming.initializeControlPage()
    }
}
