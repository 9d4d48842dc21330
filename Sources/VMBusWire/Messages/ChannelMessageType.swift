/// The `msgtype` of a VMBus channel message (04 §2).
///
/// An open set: every u32 is representable; the 30 values the protocol defines have names and
/// carry their direction, minimum protocol version and the 6.0 features that gate them.
public struct ChannelMessageType: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Which side sends a message.
    public enum Direction: Sendable {
        /// From the guest (the VMBus client) to the host.
        case guestToHost
        /// From the host (the VMBus server) to the guest.
        case hostToGuest
    }

    /// 0 INVALID: never valid.
    public static let invalid = Self(rawValue: 0)
    /// 1 OFFERCHANNEL.
    public static let offerChannel = Self(rawValue: 1)
    /// 2 RESCIND_CHANNELOFFER.
    public static let rescindChannelOffer = Self(rawValue: 2)
    /// 3 REQUESTOFFERS.
    public static let requestOffers = Self(rawValue: 3)
    /// 4 ALLOFFERS_DELIVERED.
    public static let allOffersDelivered = Self(rawValue: 4)
    /// 5 OPENCHANNEL.
    public static let openChannel = Self(rawValue: 5)
    /// 6 OPENCHANNEL_RESULT.
    public static let openChannelResult = Self(rawValue: 6)
    /// 7 CLOSECHANNEL.
    public static let closeChannel = Self(rawValue: 7)
    /// 8 GPADL_HEADER.
    public static let gpadlHeader = Self(rawValue: 8)
    /// 9 GPADL_BODY.
    public static let gpadlBody = Self(rawValue: 9)
    /// 10 GPADL_CREATED.
    public static let gpadlCreated = Self(rawValue: 10)
    /// 11 GPADL_TEARDOWN.
    public static let gpadlTeardown = Self(rawValue: 11)
    /// 12 GPADL_TORNDOWN.
    public static let gpadlTorndown = Self(rawValue: 12)
    /// 13 RELID_RELEASED.
    public static let relIdReleased = Self(rawValue: 13)
    /// 14 INITIATE_CONTACT.
    public static let initiateContact = Self(rawValue: 14)
    /// 15 VERSION_RESPONSE.
    public static let versionResponse = Self(rawValue: 15)
    /// 16 UNLOAD.
    public static let unload = Self(rawValue: 16)
    /// 17 UNLOAD_RESPONSE (OpenVMM: UNLOAD_COMPLETE).
    public static let unloadResponse = Self(rawValue: 17)
    /// 18 OPEN_RESERVED_CHANNEL (Linux: CHANNELMSG_18).
    public static let openReservedChannel = Self(rawValue: 18)
    /// 19 CLOSE_RESERVED_CHANNEL (Linux: CHANNELMSG_19).
    public static let closeReservedChannel = Self(rawValue: 19)
    /// 20 CLOSE_RESERVED_RESPONSE (Linux: CHANNELMSG_20).
    public static let closeReservedResponse = Self(rawValue: 20)
    /// 21 TL_CONNECT_REQUEST.
    public static let tlConnectRequest = Self(rawValue: 21)
    /// 22 MODIFYCHANNEL.
    public static let modifyChannel = Self(rawValue: 22)
    /// 23 TL_CONNECT_RESULT.
    public static let tlConnectResult = Self(rawValue: 23)
    /// 24 MODIFYCHANNEL_RESPONSE.
    public static let modifyChannelResponse = Self(rawValue: 24)
    /// 25 MODIFY_CONNECTION.
    public static let modifyConnection = Self(rawValue: 25)
    /// 26 MODIFY_CONNECTION_RESPONSE.
    public static let modifyConnectionResponse = Self(rawValue: 26)
    /// 27 PAUSE.
    public static let pause = Self(rawValue: 27)
    /// 28 PAUSE_RESPONSE.
    public static let pauseResponse = Self(rawValue: 28)
    /// 29 RESUME.
    public static let resume = Self(rawValue: 29)

    /// Linux defines types 0–24 (`CHANNELMSG_COUNT` = 25) and drops anything above.
    public static let linuxCount: UInt32 = 25

    /// The table of 04 §2: name, direction, first version (`nil`: accepted even while
    /// disconnected), gating features.
    private static let table: [(String, Direction?, VMBusVersion?, FeatureFlags)] = [
        ("INVALID", nil, .ws2008, []),
        ("OFFERCHANNEL", .hostToGuest, .ws2008, []),
        ("RESCIND_CHANNELOFFER", .hostToGuest, .ws2008, []),
        ("REQUESTOFFERS", .guestToHost, .ws2008, []),
        ("ALLOFFERS_DELIVERED", .hostToGuest, .ws2008, []),
        ("OPENCHANNEL", .guestToHost, .ws2008, []),
        ("OPENCHANNEL_RESULT", .hostToGuest, .ws2008, []),
        ("CLOSECHANNEL", .guestToHost, .ws2008, []),
        ("GPADL_HEADER", .guestToHost, .ws2008, []),
        ("GPADL_BODY", .guestToHost, .ws2008, []),
        ("GPADL_CREATED", .hostToGuest, .ws2008, []),
        ("GPADL_TEARDOWN", .guestToHost, .ws2008, []),
        ("GPADL_TORNDOWN", .hostToGuest, .ws2008, []),
        ("RELID_RELEASED", .guestToHost, .ws2008, []),
        ("INITIATE_CONTACT", .guestToHost, nil, []),
        ("VERSION_RESPONSE", .hostToGuest, nil, []),
        ("UNLOAD", .guestToHost, .ws2008, []),
        ("UNLOAD_RESPONSE", .hostToGuest, .win7, []),
        ("OPEN_RESERVED_CHANNEL", .guestToHost, .win10, []),
        ("CLOSE_RESERVED_CHANNEL", .guestToHost, nil, []),
        ("CLOSE_RESERVED_RESPONSE", .hostToGuest, .win10, []),
        ("TL_CONNECT_REQUEST", .guestToHost, .win10, []),
        ("MODIFYCHANNEL", .guestToHost, .win10_4_1, []),
        ("TL_CONNECT_RESULT", .hostToGuest, .win10_4_1, []),
        ("MODIFYCHANNEL_RESPONSE", .hostToGuest, .win10_5_3, []),
        ("MODIFY_CONNECTION", .guestToHost, .copper, .modifyConnection),
        ("MODIFY_CONNECTION_RESPONSE", .hostToGuest, .copper, .modifyConnection),
        ("PAUSE", .guestToHost, .copper, .pauseResume),
        ("PAUSE_RESPONSE", .hostToGuest, .copper, .pauseResume),
        ("RESUME", .guestToHost, .copper, .pauseResume),
    ]

    private var entry: (String, Direction?, VMBusVersion?, FeatureFlags)? {
        Int(exactly: self.rawValue).flatMap { $0 < Self.table.count ? Self.table[$0] : nil }
    }

    /// Whether the protocol defines this type (1–29).
    public var isKnown: Bool { self.rawValue != 0 && self.entry != nil }

    /// The spec name (`OFFERCHANNEL`…), or `UNKNOWN(n)`.
    public var name: String { self.entry?.0 ?? "UNKNOWN(\(self.rawValue))" }

    /// Who sends it; `nil` for INVALID and unknown types.
    public var direction: Direction? { self.entry?.1 }

    /// The first protocol version at which the message may be used; `nil` when it is accepted
    /// in any state, even before a version is negotiated (InitiateContact, VersionResponse,
    /// CloseReservedChannel).
    public var minimumVersion: VMBusVersion? { self.entry?.2 }

    /// The 6.0 features that must have been negotiated for the message to be valid.
    public var requiredFeatures: FeatureFlags { self.entry?.3 ?? [] }

    /// Whether a message of this type may appear on a connection in the given state.
    /// - Parameters:
    ///   - version: the negotiated version, or `nil` while disconnected.
    ///   - features: the negotiated 6.0 features.
    public func isAllowed(version: VMBusVersion?, features: FeatureFlags) -> Bool {
        guard self.isKnown else { return false }
        guard let minimum = self.minimumVersion else { return true }
        guard let version else { return false }
        return version >= minimum && features.isSuperset(of: self.requiredFeatures)
    }
}

extension ChannelMessageType: CustomStringConvertible {
    public var description: String { "\(self.name) (\(self.rawValue))" }
}
