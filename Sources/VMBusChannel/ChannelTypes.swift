import VMBusRing
import VMBusWire

/// How a channel rings its peer's doorbell: `HvSignalEvent` or a monitor bit for a guest, an
/// event-flag bit for a host, an eventfd between processes, a function call in one process.
/// Called without any channel lock held; it must not block.
public protocol ChannelDoorbell: Sendable {
    /// Tells the peer to look at the rings. Signals carry no data and may coalesce: the peer reads
    /// the rings' control words to learn what happened.
    func ring()
}

/// A doorbell that runs a closure: for tests and the in-process bus.
public struct ClosureDoorbell: ChannelDoorbell {
    let action: @Sendable () -> Void
    /// A doorbell whose ``ring()`` calls `action` on the ringing thread; `action` must not block.
    public init(_ action: @escaping @Sendable () -> Void) { self.action = action }
    /// Calls the closure given at creation.
    public func ring() { self.action() }
}

/// How received packets reach the consumer (Linux's channel callback modes).
public enum ChannelDelivery: Hashable, Sendable {
    /// Mask the peer's signals while draining and publish the freed space once per batch:
    /// fewest signals (Linux's default `HV_CALL_BATCHED`).
    case batched
    /// Publish the freed space after every packet and leave signals unmasked: lowest latency
    /// for a writer waiting for room, more signals.
    case perPacket
}

/// Delays that make races easier to hit, like Linux's per-channel `fuzz_test` knobs: each is
/// 0…1000 µs.
public struct FaultInjection: Hashable, Sendable {
    /// Largest delay of either kind, in microseconds (Linux's limit).
    public static let maximumMicroseconds = 1000

    /// Waits this long after every interrupt before draining (`fuzz_test_interrupt_delay`).
    public var interruptDelayMicroseconds: Int
    /// Waits this long before delivering each packet (`fuzz_test_message_delay`).
    public var messageDelayMicroseconds: Int

    /// - Throws: ``ChannelError/invalidOption(_:)`` for a delay outside 0…1000 µs.
    public init(interruptDelayMicroseconds: Int = 0, messageDelayMicroseconds: Int = 0) throws(ChannelError) {
        for (name, value) in [("interrupt delay", interruptDelayMicroseconds), ("message delay", messageDelayMicroseconds)]
        where value < 0 || value > Self.maximumMicroseconds {
            throw ChannelError.invalidOption("\(name) \(value) µs is outside 0…\(Self.maximumMicroseconds) µs")
        }
        self.interruptDelayMicroseconds = interruptDelayMicroseconds
        self.messageDelayMicroseconds = messageDelayMicroseconds
    }

    /// No delays.
    public static let none = try! FaultInjection()
}

/// Per-channel choices.
public struct ChannelOptions: Sendable {
    /// How received packets are delivered.
    public var delivery: ChannelDelivery = .batched
    /// The largest packet (`len8 × 8`) to accept from the peer; `nil` for the ring's maximum.
    /// Longer packets are a channel error (Linux's `max_pkt_size`).
    public var maximumPacketLength: Int?
    /// Outstanding requests at once; `nil` sizes the table from the outgoing ring (one id per
    /// 64 bytes of ring, at least 16).
    public var requestorCapacity: Int?
    /// Drop completions whose transaction id is not an outstanding request (counted in
    /// ``ChannelStatistics/rejectedCompletions``). With `false` they reach the consumer, for
    /// drivers that keep their own ids.
    public var rejectUnknownCompletions = true
    /// Parse packets with the host's strict rules (02 §9.3) when a consumer asks for a parsed
    /// packet: the default for a host reading a guest.
    public var strictPackets = false
    /// Fault-injection delays.
    public var faultInjection: FaultInjection = .none
    /// How long a reader that found its ring empty, or a writer that found it full, keeps
    /// polling before it sleeps until the peer's signal, in microseconds (0: sleep at once).
    /// Polling trades CPU while busy for fewer wake-ups (and, for a writer, spares the reader a
    /// signal). A reader learns a longer window, up to 4 times this, from gaps it slept
    /// through, and rests from polling when its polls keep failing (`PollWindow`); at most
    /// one channel per spare CPU polls at a time (`PollGate`); an idle channel polls once
    /// after its last packet, then sleeps.
    ///
    /// Off by default. For one busy stream between two processes it pays handsomely (a
    /// task-driven echo round trip 124–130 µs → 11–21 µs at the median, one-way 16 KiB
    /// packets 1.2–1.7 → 10–15 GB/s on the 2-CPU machine of BENCHMARKS.md); with many busy
    /// channels on few CPUs the polls take CPU from the threads they wait for (64 guest
    /// processes × 8 channels on 2 CPUs: fewer round trips per second and a worse p99). Turn
    /// it on for the channels that carry a stream: hvsock does (`HvSock`), as does
    /// `vmbus fcopy-daemon`.
    public var pollMicroseconds = 0

    /// The defaults: batched delivery, packets up to what the ring holds, a requestor sized from
    /// the ring, unknown completions rejected, no polling, no fault injection.
    public init() {}

    /// Default options, polling for `pollMicroseconds`.
    public init(pollMicroseconds: Int) {
        self.pollMicroseconds = pollMicroseconds
    }
}

/// Why a channel stopped.
public enum CloseReason: Hashable, Sendable {
    /// This side closed it.
    case closedLocally
    /// The peer closed it (a host seeing CloseChannel, a guest whose host closed).
    case closedByPeer
    /// The host rescinded the offer.
    case rescinded
    /// The peer wrote something impossible into a ring; the channel is unusable.
    case ringCorrupted(RingError)
    /// The connection underneath went away (Unload, reconnect, a dead peer process).
    case connectionLost
}

/// A channel operation that failed.
public enum ChannelError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The channel is closed, for this reason.
    case closed(CloseReason)
    /// The packet can never fit the ring (it exceeds ``Channel/maximumPacketLength``).
    case packetTooLarge(length: Int, limit: Int)
    /// The packet could not be encoded.
    case invalidPacket(WireError)
    /// Every transaction id is outstanding.
    case requestorFull
    /// Another task is already consuming this channel's incoming ring.
    case readerBusy
    /// A locally chosen option is out of range.
    case invalidOption(String)
    /// A wait for room or for a packet passed its deadline; the channel stays open.
    case timedOut
    /// The waiting task was cancelled; the channel stays open.
    case cancelled

    public var description: String {
        switch self {
        case .closed(let reason): return "channel closed: \(reason)"
        case .packetTooLarge(let length, let limit): return "packet of \(length) bytes exceeds the ring's limit of \(limit)"
        case .invalidPacket(let error): return "cannot encode packet: \(error)"
        case .requestorFull: return "no free transaction id"
        case .readerBusy: return "another task is reading this channel"
        case .invalidOption(let text): return "invalid channel option: \(text)"
        case .timedOut: return "timed out"
        case .cancelled: return "cancelled"
        }
    }
}

/// Counters of one channel (02 §11 per ring, plus the channel's own). While a
/// ``ChannelReader`` holds the incoming ring, its counters are as of the reader's last batch
/// (published once per batch, so reading takes no lock per packet).
public struct ChannelStatistics: Hashable, Sendable {
    /// The ring this side writes.
    public var outgoing = RingStatistics()
    /// The ring this side reads.
    public var incoming = RingStatistics()
    /// Sends that had to wait for room (`pending_send_sz` set).
    public var blockedSends: UInt64 = 0
    /// Completions with a transaction id that was not outstanding, dropped.
    public var rejectedCompletions: UInt64 = 0
    /// Requests answered through the requestor.
    public var completedRequests: UInt64 = 0

    /// All counters zero.
    public init() {}
}
