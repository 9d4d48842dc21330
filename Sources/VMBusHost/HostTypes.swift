import VMBusRing
import VMBusWire

/// A mistake by the guest, with how far it reaches (style §2.4): one channel, which the host
/// should close or rescind, or the whole connection, which it should drop.
public struct ProtocolViolation: Error, Hashable, Sendable, CustomStringConvertible {
    /// How much the violation spoils.
    public enum Scope: Hashable, Sendable {
        /// The connection: unload it and disconnect.
        case connection
        /// One channel (by relid).
        case channel(UInt32)
    }

    /// What kind of mistake it was, for counting (``HostBus/violationCounts``): an open set,
    /// named in snake case as a metric label shows it.
    public struct Kind: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { self.rawValue }

        /// A channel message that does not decode.
        public static let malformedMessage = Kind(rawValue: "malformed_message")
        /// A message only a host sends, or one out of place in the connection's state.
        public static let unexpectedMessage = Kind(rawValue: "unexpected_message")
        /// A message before a version was negotiated.
        public static let notConnected = Kind(rawValue: "not_connected")
        /// A message naming a channel that was never offered.
        public static let unknownChannel = Kind(rawValue: "unknown_channel")
        /// A GPADL handle reused, unknown, or torn down while still in use.
        public static let badGPADL = Kind(rawValue: "bad_gpadl")
        /// An open, close, modify or release that the channel's state does not allow.
        public static let channelState = Kind(rawValue: "channel_state")
        /// A request for something this host does not support.
        public static let unsupported = Kind(rawValue: "unsupported")
        /// A saved channel the guest's restored state does not match.
        public static let restoreRefused = Kind(rawValue: "restore_refused")
        /// Anything not given a kind of its own.
        public static let other = Kind(rawValue: "other")

        /// A ring the guest corrupted, by how (`ring_invalid_index`, `ring_packet_too_large`, …).
        public init(ringError: RingError) {
            switch ringError {
            case .invalidIndex: self.rawValue = "ring_invalid_index"
            case .truncatedDescriptor: self.rawValue = "ring_truncated_descriptor"
            case .invalidDescriptor: self.rawValue = "ring_invalid_descriptor"
            case .packetPastWriteIndex: self.rawValue = "ring_packet_past_write_index"
            case .packetTooLarge: self.rawValue = "ring_packet_too_large"
            case .broken: self.rawValue = "ring_broken"
            }
        }
    }

    /// How far the mistake reaches.
    public var scope: Scope
    /// What kind of mistake, for counting.
    public var kind: Kind
    /// What the guest did wrong, for logs.
    public var reason: String

    /// A violation of `scope` of kind `kind`, described by `reason`.
    public init(_ scope: Scope, _ reason: String, kind: Kind = .other) {
        self.scope = scope
        self.kind = kind
        self.reason = reason
    }

    public var description: String {
        switch self.scope {
        case .connection: return "guest protocol violation: \(self.reason)"
        case .channel(let relid): return "guest protocol violation on channel \(relid): \(self.reason)"
        }
    }
}

/// How a host negotiates (01 §5.2).
public struct HostConfiguration: Sendable {
    /// The newest version to accept; older known versions are accepted too.
    public var maximumVersion: VMBusVersion = .copper
    /// The oldest version to accept.
    public var minimumVersion: VMBusVersion = .ws2008
    /// 6.0 features this host supports; the guest's request is intersected with them.
    public var supportedFeatures: FeatureFlags = [
        .guestSpecifiedSignalParameters, .channelInterruptRedirection, .modifyConnection, .clientID, .pauseResume,
    ]
    /// The connection id guests post to after a ≥ 5.0 negotiation (OpenVMM's VTL0 value is 1).
    public var messageConnectionID: UInt32 = VMBusConnectionID.message

    /// Versions 0.13 to 6.0, the 6.0 features this implementation supports, connection id 1.
    public init() {}
}

/// A device channel the host offers (04 §3.1), before a relid is assigned.
public struct HostOffer: Hashable, Sendable {
    /// The device class (OfferChannel `if_type`): what guests match drivers on.
    public var interfaceType: GUID
    /// The device instance (OfferChannel `if_instance`): tells devices of one class apart.
    public var interfaceInstance: GUID
    /// Offer flags (OfferChannel `chn_flags`): hvsock, named pipe mode, and so on.
    public var flags: OfferFlags
    /// The 120 bytes of offer user data whose meaning the device class defines (hvsock's pipe
    /// parameters, for one).
    public var userDefined: UserDefinedBytes
    /// 0 for a primary channel; sub-channel offers are made by the bus with their index.
    public var subChannelIndex: UInt16
    /// MMIO space the device wants, in MiB (OfferChannel `mmio_megabytes`; 0 for most devices).
    public var mmioMegabytes: UInt16
    /// How many sub-channels the device may enable later (05 §5); 0 for none.
    public var maximumSubChannels: UInt16
    /// Whether the device wants monitored notification (MNF, 05 §4.3). A monitor id is given
    /// only when the guest also supplied monitor pages; otherwise the offer says 0xFF.
    public var wantsMonitor: Bool

    /// An offer; only the class and instance have no default.
    public init(
        interfaceType: GUID, interfaceInstance: GUID, flags: OfferFlags = [], userDefined: UserDefinedBytes = UserDefinedBytes(),
        subChannelIndex: UInt16 = 0, mmioMegabytes: UInt16 = 0, maximumSubChannels: UInt16 = 0, wantsMonitor: Bool = false
    ) {
        self.interfaceType = interfaceType
        self.interfaceInstance = interfaceInstance
        self.flags = flags
        self.userDefined = userDefined
        self.subChannelIndex = subChannelIndex
        self.mmioMegabytes = mmioMegabytes
        self.maximumSubChannels = maximumSubChannels
        self.wantsMonitor = wantsMonitor
    }
}

/// What the host state machine asks its driver to do. The machine never does I/O itself.
public enum HostAction: Hashable, Sendable {
    /// Post this message to the guest.
    case send(ChannelMessage)
    /// A GPADL's range list is complete and well-formed: check every page against guest memory,
    /// map it, then call ``HostConnection/completeGpadl(_:accepted:)``.
    case mapGpadl(channel: UInt32, gpadl: UInt32, ranges: [GpaRange])
    /// Unmap a GPADL, then call ``HostConnection/completeTeardown(_:)``.
    case unmapGpadl(gpadl: UInt32)
    /// Open a channel: map its rings from the GPADL (split at the page offset), prepare the
    /// doorbells, then call ``HostConnection/completeOpen(_:status:)``.
    case openChannel(OpenChannel, ranges: [GpaRange])
    /// Stop using a channel's rings.
    case closeChannel(UInt32)
    /// The guest asked for an hvsock connection (07 §3.1): offer a channel or refuse.
    case connectRequest(TLConnectRequest)
    /// The guest moved a channel's interrupts to another VP.
    case retarget(channel: UInt32, targetVP: UInt32)
    /// The connection is gone (Unload or a new InitiateContact): drop every mapping.
    case resetConnection
}
