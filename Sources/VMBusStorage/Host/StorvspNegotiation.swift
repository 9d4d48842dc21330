import VMBusWire

/// The storvsp's half of a controller's set-up (10 §3), on the primary channel: a value that
/// takes each request and says what to answer. OpenVMM's rules: steps in order, an operation
/// out of order answered INVALID_DEVICE_STATE with the state kept, an unknown version
/// REVISION_MISMATCH, sub-channels once (between QUERY_PROPERTIES and END_INITIALIZATION, or
/// when ready), at most the offered number.
public struct StorvspNegotiation: Hashable, Sendable {
    public enum Stage: Hashable, Sendable {
        case awaitingBegin, awaitingVersion, awaitingProperties, awaitingEnd, ready
    }

    /// What to do for one request.
    public struct Reply: Hashable, Sendable {
        public var status: NTStatus
        public var body: StoragePacket.Body
        /// Sub-channels to offer before answering (CREATE_SUB_CHANNELS taken).
        public var createSubChannels: UInt16?
    }

    public internal(set) var stage: Stage = .awaitingBegin
    public internal(set) var version: StorageVersion?
    public internal(set) var subChannelsCreated = false
    /// Versions accepted (OpenVMM: 2.0, 4.2, 5.1, 6.0 — a Linux guest settles on 6.0).
    public let acceptedVersions: [StorageVersion]
    /// Sub-channels offered at most (QUERY_PROPERTIES' max_channel_cnt, from 5.1 on).
    public let maximumSubChannels: UInt16
    /// QUERY_PROPERTIES' max_transfer_bytes: a non-zero multiple of 4096.
    public let maximumTransferBytes: UInt32

    public init(
        acceptedVersions: [StorageVersion] = StorageVersion.openVMMAccepted, maximumSubChannels: UInt16 = 0,
        maximumTransferBytes: UInt32 = StorageProtocol.openVMMMaximumTransferBytes
    ) {
        self.acceptedVersions = acceptedVersions
        self.maximumSubChannels = maximumSubChannels
        self.maximumTransferBytes = max(4096, maximumTransferBytes / 4096 * 4096)
    }

    public var isReady: Bool { self.stage == .ready }

    /// The answer to a set-up request (or a reset). I/O (EXECUTE_SRB) is not set-up: the
    /// device executes it once ``isReady``; before, it is out of order.
    public mutating func receive(_ packet: StoragePacket) -> Reply {
        func reply(_ status: NTStatus = .success, _ body: StoragePacket.Body = .none) -> Reply {
            Reply(status: status, body: body, createSubChannels: nil)
        }
        switch packet.operation {
        case .beginInitialization:
            guard self.stage == .awaitingBegin else { return reply(.invalidDeviceState) }
            self.stage = .awaitingVersion
            return reply()
        case .queryProtocolVersion:
            guard self.stage == .awaitingVersion, case .version(let offered, _) = packet.body else {
                return reply(.invalidDeviceState)
            }
            // The version is echoed either way; the status says whether it was taken.
            guard self.acceptedVersions.contains(offered) else { return reply(.revisionMismatch, .version(offered, revision: 0)) }
            self.version = offered
            self.stage = .awaitingProperties
            return reply(.success, .version(offered, revision: 0))
        case .queryProperties:
            guard self.stage == .awaitingProperties, let version = self.version else { return reply(.invalidDeviceState) }
            self.stage = .awaitingEnd
            let multi = version.hasWin8Extension && self.maximumSubChannels > 0
            let properties = StorageChannelProperties(
                maximumSubChannelCount: multi ? self.maximumSubChannels : 0, flags: multi ? .supportsMultiChannel : [],
                maximumTransferBytes: self.maximumTransferBytes)
            return reply(.success, .properties(properties))
        case .endInitialization:
            guard self.stage == .awaitingEnd else { return reply(.invalidDeviceState) }
            self.stage = .ready
            return reply()
        case .createSubChannels:
            guard self.stage == .awaitingEnd || self.stage == .ready, !self.subChannelsCreated,
                let version = self.version, version.hasWin8Extension, case .subChannelCount(let count) = packet.body
            else { return reply(.invalidDeviceState) }
            guard count <= self.maximumSubChannels else { return reply(.invalidParameter) }
            self.subChannelsCreated = true
            return Reply(status: .success, body: .none, createSubChannels: count)
        case .resetLUN, .resetAdapter, .resetBus:
            // Nothing is queued behind a reset here: every request completes on its own.
            return reply()
        default:
            return reply(.invalidDeviceState)
        }
    }
}
