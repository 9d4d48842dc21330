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

    /// How far the mistake reaches.
    public var scope: Scope
    /// What the guest did wrong, for logs.
    public var reason: String

    /// A violation of `scope`, described by `reason`.
    public init(_ scope: Scope, _ reason: String) {
        self.scope = scope
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
