import VMBusChannel
import VMBusMemory
import VMBusRing
import VMBusWire

/// What the two doorbells and the fault handler share.
final class PairWiring: Sendable {
    let peers = Locked<(guest: Channel?, host: Channel?)>((nil, nil))
    let signals = Locked((toHost: 0, toGuest: 0))
    let faults = Locked<[CloseReason]>([])
}

/// A guest channel and a host channel over one ring GPADL in anonymous memory, each one's
/// doorbell ringing the other. Counts the signals each side sent.
final class ChannelPair: Sendable {
    let memory: MappedMemory
    let guest: Channel
    let host: Channel
    let wiring = PairWiring()

    /// Rings of `pages` pages each (control page included).
    init(pages: Int = 4, guestOptions: ChannelOptions = ChannelOptions(), hostOptions: ChannelOptions = ChannelOptions()) throws {
        let memory = try MappedMemory.anonymous(size: 2 * pages * MappedMemory.pageSize)
        try ChannelRings.initialize(memory, downstreamPageOffset: pages)
        let g = try ChannelRings.rings(in: memory, downstreamPageOffset: pages, side: .guest)
        let h = try ChannelRings.rings(in: memory, downstreamPageOffset: pages, side: .host)
        let wiring = self.wiring
        self.memory = memory
        self.guest = try Channel(
            relid: 1, outgoing: g.outgoing, incoming: g.incoming,
            doorbell: ClosureDoorbell {
                wiring.signals.withLock { $0.toHost += 1 }
                wiring.peers.withLock { $0.host }?.interrupt()
            }, options: guestOptions)
        self.host = try Channel(
            relid: 1, outgoing: h.outgoing, incoming: h.incoming,
            doorbell: ClosureDoorbell {
                wiring.signals.withLock { $0.toGuest += 1 }
                wiring.peers.withLock { $0.guest }?.interrupt()
            }, options: hostOptions, onFault: { reason in wiring.faults.withLock { $0.append(reason) } })
        wiring.peers.withLock { $0 = (self.guest, self.host) }
    }

    var signalCounts: (toHost: Int, toGuest: Int) { self.wiring.signals.withLock { $0 } }
    var hostFaults: [CloseReason] { self.wiring.faults.withLock { $0 } }

    /// The byte offset of the guest → host ring's control page and the host → guest one.
    var guestToHostControl: Int { 0 }
    var hostToGuestControl: Int { self.memory.size / 2 }
}

/// Bytes 0, 1, 2… of a given length, offset by `seed`.
func pattern(_ count: Int, seed: Int = 0) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 + seed) } }
