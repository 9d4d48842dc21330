import VMBusWire

/// Why a ring is unusable. Every case means the peer wrote something impossible into shared
/// memory; the ring is then broken for good (02 §13) and the channel must be closed.
public enum RingError: Error, Hashable, Sendable {
    /// A control word holds an index that is out of range or not 8-byte aligned.
    case invalidIndex(word: String, value: UInt32, dataSize: Int)
    /// Fewer than 16 bytes are available, but the ring is not empty.
    case truncatedDescriptor(available: Int)
    /// The packet descriptor is impossible (offset8 < 2, len8 < offset8…).
    case invalidDescriptor(WireError)
    /// The packet claims to run past the writer's index.
    case packetPastWriteIndex(length: Int, available: Int)
    /// The packet is longer than this ring's reader accepts.
    case packetTooLarge(length: Int, limit: Int)
    /// The ring failed earlier; nothing more is read or written.
    case broken
}

extension RingError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .invalidIndex(let word, let value, let size):
            return "ring corrupt: \(word) \(value) is not an 8-aligned offset below \(size)"
        case .truncatedDescriptor(let available):
            return "ring corrupt: \(available) bytes available, fewer than a descriptor"
        case .invalidDescriptor(let error):
            return "ring corrupt: bad packet descriptor: \(error)"
        case .packetPastWriteIndex(let length, let available):
            return "ring corrupt: packet of \(length) bytes but only \(available) written"
        case .packetTooLarge(let length, let limit):
            return "packet of \(length) bytes exceeds this ring's limit of \(limit)"
        case .broken:
            return "ring is broken by an earlier error"
        }
    }
}

/// Per-ring counters, named as Linux's sysfs attributes (02 §11, 05 §9.2).
///
/// `interrupts` and `events` count doorbells, which the ring itself never rings: the channel
/// that owns the ring records them with ``IncomingRing/recordInterrupt()`` and
/// ``OutgoingRing/recordEvent()``.
public struct RingStatistics: Hashable, Sendable {
    /// Signals received for this ring (Linux `interrupts`).
    public var interrupts: UInt64 = 0
    /// Signals sent for this ring (Linux `events`, `sig_events`).
    public var events: UInt64 = 0
    /// Signals requested because the ring went from empty to non-empty (writer side).
    public var intrOutEmpty: UInt64 = 0
    /// Signals requested because freed space satisfied the writer's `pending_send_sz` (reader side).
    public var intrInFull: UInt64 = 0
    /// Writes that were the first to find the ring full since the last successful write.
    public var outFullFirst: UInt64 = 0
    /// Every write that found the ring full.
    public var outFullTotal: UInt64 = 0
    /// Packets written or read.
    public var packets: UInt64 = 0
    /// Payload-carrying bytes written or read (descriptors and padding included, trailers not).
    public var bytes: UInt64 = 0

    /// All counters zero.
    public init() {}
}
