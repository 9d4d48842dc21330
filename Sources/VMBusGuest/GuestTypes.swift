import VMBusWire

/// A host message the guest cannot accept: a reply nobody asked for, an offer that collides,
/// a message in the wrong state. The guest survives a buggy or hostile host: it reports this
/// instead of trusting it (style §2.4).
public struct HostMisbehaviour: Error, Hashable, Sendable, CustomStringConvertible {
    /// What the host did wrong, for logs.
    public var reason: String
    /// A misbehaviour described by `reason`.
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "host protocol violation: \(self.reason)" }
}

/// How a guest connects (01 §5.1).
public struct GuestConfiguration: Sendable {
    /// Versions to propose, newest first (Linux 6.18+: 6.0 down to 2.4).
    public var versions: [VMBusVersion] = VMBusVersion.linuxProposalOrder
    /// 6.0 features to request.
    public var features: FeatureFlags = []
    /// VP that receives control messages.
    public var targetVCPU: UInt32 = 0
    /// The guest's VTL (sent from 5.1).
    public var vtl: UInt8 = 0
    /// GPAs of the two monitor pages, or zero for none.
    public var monitorPages: (parentToChild: UInt64, childToParent: UInt64) = (0, 0)
    /// GPA of the legacy interrupt page (protocols below 5.0).
    public var interruptPage: UInt64 = 0
    /// First GPADL handle (Linux counts from 0xE1E10).
    public var firstGpadlHandle: UInt32 = 0xE1E10

    /// Linux's choices: its version list, no 6.0 features, VP 0, no monitor or interrupt pages.
    public init() {}
}

/// What the guest state machine asks its driver to do or tells its user.
public enum GuestAction: Hashable, Sendable {
    /// Post this message to the host at this connection id.
    case post(ChannelMessage, connectionID: UInt32)
    /// Negotiation succeeded.
    case connected(version: VMBusVersion, features: FeatureFlags)
    /// The host accepted none of the proposed versions.
    case connectionFailed
    /// A device's primary channel was offered.
    case offered(OfferChannel)
    /// A sub-channel of an offered primary arrived (after its driver asked for it).
    case subChannelOffered(OfferChannel, primary: UInt32)
    /// The host delivered every offer it had.
    case allOffersDelivered
    /// A channel was rescinded; its user must stop, close and release it.
    case rescinded(UInt32)
    /// A GPADL was created (or refused, with a non-zero status).
    case gpadlCreated(gpadl: UInt32, status: NTStatus)
    /// A channel opened (or failed to, with a non-zero status).
    case opened(channel: UInt32, status: NTStatus)
    /// A GPADL was torn down; its memory may be reused.
    case gpadlTornDown(UInt32)
    /// The host confirmed Unload; everything is released.
    case unloaded
    /// The host answered ModifyChannel (5.3+).
    case modified(channel: UInt32, status: NTStatus)
    /// The host refused an hvsock connect (4.1+).
    case connectRefused(TLConnectResult)
}

/// How the guest signals the host for one channel (01 §1.2–§1.4).
public struct Signalling: Hashable, Sendable {
    /// The `HvSignalEvent` connection id from the offer.
    public var connectionID: UInt32
    /// Set this monitor id's pending bit in the child → parent monitor page instead of issuing
    /// `HvSignalEvent`; `nil` to signal the event.
    public var monitorID: UInt8?
    /// Also set the relid bit in the guest → host half of the legacy interrupt page (channels
    /// without a dedicated interrupt, and monitored channels, as Linux does).
    public var setsInterruptPageBit: Bool

    /// A signalling method: see the properties.
    public init(connectionID: UInt32, monitorID: UInt8?, setsInterruptPageBit: Bool) {
        self.connectionID = connectionID
        self.monitorID = monitorID
        self.setsInterruptPageBit = setsInterruptPageBit
    }
}
