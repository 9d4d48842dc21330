import VMBusWire

/// The status of a failed `HvPostMessage` (01 §1.1). An open set.
public struct HvPostStatus: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// HV_STATUS_SUCCESS: the message was queued.
    public static let success = Self(rawValue: 0)
    /// HV_STATUS_INSUFFICIENT_MEMORY: transient.
    public static let insufficientMemory = Self(rawValue: 11)
    /// HV_STATUS_INVALID_CONNECTION_ID: on InitiateContact it means "try the next lower version".
    public static let invalidConnectionID = Self(rawValue: 18)
    /// HV_STATUS_INSUFFICIENT_BUFFERS: transient (the host's message queue is full).
    public static let insufficientBuffers = Self(rawValue: 19)

    /// Not a hypervisor status: the substrate's connection to the host is gone (a local
    /// substrate's socket closed). Not transient.
    public static let substrateGone = Self(rawValue: 0xFFFF)

    /// Whether posting again later can succeed.
    public var isTransient: Bool { self == .insufficientMemory || self == .insufficientBuffers }
}

/// Linux's retry rule for a post the hypervisor refused (01 §1.1): up to 100 attempts, waiting
/// 1 µs and doubling the wait for the first 22 retries, so a full host queue stalls the sender
/// briefly instead of failing it or stalling it forever.
public struct PostRetry: Hashable, Sendable {
    /// Attempts before giving up, the first included.
    public static let maximumAttempts = 100
    /// Retries whose wait doubles; later retries wait as long as the last of these.
    public static let doublingRetries = 22

    /// What to do after a failed post.
    public enum Decision: Hashable, Sendable {
        /// Post again after this many nanoseconds.
        case retry(afterNanoseconds: UInt64)
        /// Stop: the failure is not transient, or the attempts are used up.
        case giveUp
    }

    /// Failed attempts so far.
    public private(set) var failures = 0

    /// No failures yet.
    public init() {}

    /// Records a failed attempt and decides what comes next.
    public mutating func failed(_ status: HvPostStatus) -> Decision {
        self.failures += 1
        guard status.isTransient, self.failures < Self.maximumAttempts else { return .giveUp }
        return .retry(afterNanoseconds: 1000 << UInt64(min(self.failures - 1, Self.doublingRetries)))
    }
}

extension GuestConnection {
    /// A post failed for good (after ``PostRetry``). An InitiateContact refused with an invalid
    /// connection id means the host does not know that version's port: the next lower version is
    /// proposed (01 §5.1). Any other failure while contacting ends negotiation.
    public mutating func postFailed(_ status: HvPostStatus) -> [GuestAction] {
        guard case .contacting(let index) = self.state else { return [] }
        guard status == .invalidConnectionID, index + 1 < self.configuration.versions.count else {
            self.state = .disconnected
            return [.connectionFailed]
        }
        return self.propose(index + 1)
    }
}
