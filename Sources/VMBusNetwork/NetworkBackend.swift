import VMBusMemory

/// A 48-bit Ethernet address.
public struct MACAddress: Hashable, Sendable, CustomStringConvertible {
    public var bytes: [UInt8]

    /// - Precondition: six bytes.
    public init(_ bytes: [UInt8]) {
        precondition(bytes.count == 6, "a MAC address has 6 bytes")
        self.bytes = bytes
    }

    /// Parses `aa:bb:cc:dd:ee:ff`.
    public init?(_ text: String) {
        let parts = text.split(separator: ":")
        guard parts.count == 6 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard part.count == 2, let byte = UInt8(part, radix: 16) else { return nil }
            bytes.append(byte)
        }
        self.bytes = bytes
    }

    /// Hyper-V's prefix 00:15:5D with three bytes from `seed`: a locally unique default.
    public static func hyperV(seed: UInt32) -> MACAddress {
        MACAddress([0x00, 0x15, 0x5D, UInt8(truncatingIfNeeded: seed >> 16), UInt8(truncatingIfNeeded: seed >> 8), UInt8(truncatingIfNeeded: seed)])
    }

    public var description: String { self.bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":") }
}

/// Where a synthetic NIC's frames go and come from: the host's side of the wire (a TAP
/// device, another guest, a test), or — in a guest — the operating system's side (a TAP device
/// that makes the guest process a real NIC of its network namespace).
///
/// Frames are pushed both ways, on the thread that has them, with no task in between: the NIC
/// calls ``send(_:)`` from its interrupt handler for each frame it takes off its channel; the
/// backend hands incoming frames, a batch at a time, to the ``FrameSink`` the NIC attached
/// with ``attach(_:)``. A backend outlives the NICs that use it (a guest that reconnects gets
/// a new NIC on the same TAP device): each ``attach(_:)`` replaces the previous sink.
public protocol NetworkBackend: AnyObject, Sendable {
    /// The MAC address a host reports for the NIC (a guest backend may adopt the NIC's).
    var macAddress: MACAddress { get }
    /// The L3 MTU (1500 for Ethernet).
    var mtu: Int { get }
    /// One Ethernet frame (no FCS) out of the NIC into the backend, lent in place (it may
    /// still be in the peer's buffer): copy or write it before returning. Must not block; a
    /// backend that cannot take it drops it.
    func send(_ frame: Span<UInt8>)
    /// Starts handing incoming frames to `sink` (`nil`: stop; frames are then dropped).
    func attach(_ sink: (any FrameSink)?)
    /// Stops the backend and releases it.
    func close()

    /// What frames handed to ``send(_:offload:)`` may leave undone (a NIC advertises these to
    /// its peer). None by default: every frame complete.
    var offloads: NetworkOffloads { get }
    /// A frame with offload state (a partial checksum, a large TCP segment).
    func send(_ frame: Span<UInt8>, offload: FrameOffload)
    /// What the NIC can take in frames this backend pushes to it (the backend may then hand
    /// over partial checksums and large segments instead of doing the work).
    func acceptOffloads(_ offloads: NetworkOffloads)
    /// Stops taking frames from outside and hands the NIC what it took already: the first step
    /// of a host takeover (docs/SERVICING.md), while the NIC still runs. Frames arriving
    /// meanwhile wait outside (a TAP's kernel queue) for whoever reads next. `false` if the
    /// NIC did not take what the backend holds in `timeout`.
    func pauseReceiving(timeout: Duration) async -> Bool
    /// Takes frames again (the takeover failed).
    func resumeReceiving()
}

extension NetworkBackend {
    /// Backends that are pushed to by others (a switch port, a test's port) hold nothing.
    public func pauseReceiving(timeout: Duration) async -> Bool { true }
    public func resumeReceiving() {}
    public var offloads: NetworkOffloads { [] }
    /// Backends without offloads get complete frames only (a NIC advertises none to them).
    public func send(_ frame: Span<UInt8>, offload: FrameOffload) { self.send(frame) }
    public func acceptOffloads(_ offloads: NetworkOffloads) {}
}

/// A NIC's way in: where a backend pushes the frames the NIC must take.
public protocol FrameSink: AnyObject, Sendable {
    /// Takes frames `first...` of `frames` (each copied before this returns) and returns the
    /// index of the first one it could not take for want of room now — `frames.count` when it
    /// took them all. A frame it must refuse for good (too large, NIC not ready) counts as
    /// taken and is dropped (and counted) by the NIC. One call is one batch: its frames reach
    /// the peer with at most one signal per queue.
    func deliver(_ frames: FrameBatch, from first: Int) -> Int
    /// Blocks the calling thread (a backend's own) until the NIC may have room again, or
    /// `timeout` passes.
    func waitForRoom(timeout: Duration)
}

/// The sink slot of a backend: the NIC attached to it now.
final class SinkSlot: Sendable {
    let sink = Locked<(any FrameSink)?>(nil)

    /// Pushes the whole batch into the attached sink, waiting on this thread while the NIC has
    /// no room (the backend's reader stops reading, so the kernel queues or drops — not us).
    /// Frames are dropped only when no NIC is attached or `running` turns false.
    /// - Returns: frames delivered and frames dropped.
    func push(_ batch: FrameBatch, running: () -> Bool) -> (delivered: Int, dropped: Int) {
        var next = 0
        while next < batch.count {
            guard let sink = self.sink.withLock({ $0 }), running() else { return (next, batch.count - next) }
            next = sink.deliver(batch, from: next)
            if next < batch.count { sink.waitForRoom(timeout: .milliseconds(100)) }
        }
        return (batch.count, 0)
    }
}

/// Counters of one queue (channel) of a synthetic NIC, as `ethtool -S` shows them.
public struct NetworkQueueStatistics: Hashable, Sendable {
    public var txPackets: UInt64 = 0
    public var txBytes: UInt64 = 0
    public var rxPackets: UInt64 = 0
    public var rxBytes: UInt64 = 0
    /// Frames dropped: no free buffer, filter off, malformed.
    public var rxDropped: UInt64 = 0
    public var txDropped: UInt64 = 0
    /// Messages from the peer refused as malformed.
    public var malformed: UInt64 = 0
    /// Large TCP segments sent whole (LSO guest → host, counted in tx_packets too).
    public var txLargeSegments: UInt64 = 0
    /// Segments received whole over several sub-allocations (RSC host → guest, in rx_packets too).
    public var rxCoalesced: UInt64 = 0
    /// Why the host last stopped this channel (a protocol breach, 11 §8), if it did.
    public var lastFault: String?

    public init() {}
}
