/// A VMBus protocol version, `major << 16 | minor` on the wire (04 §5).
///
/// An open set: any 32-bit value can be represented (a peer may propose versions we do not
/// know), and the known ones have names after the Windows release that introduced them.
public struct VMBusVersion: RawRepresentable, Hashable, Comparable, Sendable {
    public var rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The version `major.minor`.
    public init(major: UInt16, minor: UInt16) {
        self.rawValue = UInt32(major) << 16 | UInt32(minor)
    }

    /// The major number (the high 16 bits).
    public var major: UInt16 { UInt16(truncatingIfNeeded: self.rawValue >> 16) }
    /// The minor number (the low 16 bits).
    public var minor: UInt16 { UInt16(truncatingIfNeeded: self.rawValue) }

    public static func < (lhs: VMBusVersion, rhs: VMBusVersion) -> Bool { lhs.rawValue < rhs.rawValue }

    /// 0.13, WS2008 (`VERSION_WS2008`, OpenVMM V1): interrupt page, 190-byte offers.
    public static let ws2008 = VMBusVersion(major: 0, minor: 13)
    /// 1.1, Win7 / WS2008 R2: UnloadResponse, dedicated interrupts, per-offer connection ids.
    public static let win7 = VMBusVersion(major: 1, minor: 1)
    /// 2.4, Win8 / WS2012: per-channel event flags, target VP, sub-channels, pending send size.
    public static let win8 = VMBusVersion(major: 2, minor: 4)
    /// 3.0, Win8.1 / WS2012 R2: target vCPU for control messages, reconnect after Unload.
    public static let win8_1 = VMBusVersion(major: 3, minor: 0)
    /// 4.0, Win10: TL connect (hvsock), reserved channels.
    public static let win10 = VMBusVersion(major: 4, minor: 0)
    /// 4.1, Win10 RS3: ModifyChannel, TL connect result.
    public static let win10_4_1 = VMBusVersion(major: 4, minor: 1)
    /// 5.0: multi-client (InitiateContact on connection 4, message SINT, message connection id).
    public static let win10_5_0 = VMBusVersion(major: 5, minor: 0)
    /// 5.1, Win10 RS4: message VTL.
    public static let win10_5_1 = VMBusVersion(major: 5, minor: 1)
    /// 5.2, WS2019 / RS5: TL connect with silo id; minimum for isolated Linux guests.
    public static let win10_5_2 = VMBusVersion(major: 5, minor: 2)
    /// 5.3, WS2022 ("Iron"): ModifyChannelResponse.
    public static let win10_5_3 = VMBusVersion(major: 5, minor: 3)
    /// 6.0 ("Copper"): feature flags, InitiateContact with features, extended responses.
    public static let copper = VMBusVersion(major: 6, minor: 0)

    /// Every version a Hyper-V compatible host knows, oldest first.
    public static let known: [VMBusVersion] = [
        .ws2008, .win7, .win8, .win8_1, .win10, .win10_4_1,
        .win10_5_0, .win10_5_1, .win10_5_2, .win10_5_3, .copper,
    ]

    /// The order in which Linux 6.18+ proposes versions to a host (newest first, 6.0 down to 2.4).
    public static let linuxProposalOrder: [VMBusVersion] = [
        .copper, .win10_5_3, .win10_5_2, .win10_5_1, .win10_5_0, .win10_4_1, .win10, .win8_1, .win8,
    ]

    /// Whether this is one of the exactly-known values a host may accept.
    public var isKnown: Bool { Self.known.contains(self) }
}

extension VMBusVersion: CustomStringConvertible {
    public var description: String { "\(self.major).\(self.minor)" }
}

/// Feature flags negotiated by protocol 6.0 (InitiateContact @20, VersionResponse @16; 04 §5.1).
///
/// Unknown bits are kept, so a value read from the peer survives a round trip.
public struct FeatureFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The guest may choose the event flag and connection id in OpenChannel.
    public static let guestSpecifiedSignalParameters = FeatureFlags(rawValue: 0x01)
    /// The REDIRECT_INTERRUPT open flag is supported.
    public static let channelInterruptRedirection = FeatureFlags(rawValue: 0x02)
    /// ModifyConnection and its response are supported.
    public static let modifyConnection = FeatureFlags(rawValue: 0x04)
    /// InitiateContact carries a client GUID (the 56-byte form).
    public static let clientID = FeatureFlags(rawValue: 0x08)
    /// Offer flags for confidential rings and external memory may be used (paravisor only).
    public static let confidentialChannels = FeatureFlags(rawValue: 0x10)
    /// Pause, PauseResponse and Resume are supported.
    public static let pauseResume = FeatureFlags(rawValue: 0x20)
    /// The host supplies the monitor page GPAs in VersionResponse.
    public static let serverSpecifiedMonitorPages = FeatureFlags(rawValue: 0x40)
    /// Offer flag "require pinned external memory" is supported (OpenVMM).
    public static let gpaPinning = FeatureFlags(rawValue: 0x80)

    /// Every flag the spec defines.
    public static let allKnown: FeatureFlags = [
        .guestSpecifiedSignalParameters, .channelInterruptRedirection, .modifyConnection, .clientID,
        .confidentialChannels, .pauseResume, .serverSpecifiedMonitorPages, .gpaPinning,
    ]
}

/// Connection ids and SINT numbers of the VMBus control plane (04 §6).
public enum VMBusConnectionID {
    /// Where control messages are posted for protocol < 5.0 (`VMBUS_MESSAGE_CONNECTION_ID`).
    public static let message: UInt32 = 1
    /// Legacy shared guest→host event connection (0.13, pre-Win8 shared interrupt).
    public static let event: UInt32 = 2
    /// Legacy monitor connection.
    public static let monitor: UInt32 = 3
    /// Where InitiateContact is posted for protocol ≥ 5.0 (the multi-client port).
    public static let multiClientMessage: UInt32 = 4
    /// Redirected (paravisor) message connection used by OpenVMM and Windows.
    public static let redirectedMessage: UInt32 = 0x80_0074
    /// The SINT on which VMBus messages and events arrive.
    public static let messageSINT: UInt8 = 2
    /// SynIC `message_type` of VMBus channel messages.
    public static let synicMessageType: UInt32 = 1

    /// The message connection id a guest posts InitiateContact to when proposing `version`.
    public static func initiateContact(for version: VMBusVersion) -> UInt32 {
        version >= .win10_5_0 ? Self.multiClientMessage : Self.message
    }

    /// OpenVMM's per-channel connection id for VTL0 / SINT 2: `relid | sint << 12 | vtl << 16`.
    /// Guests must treat connection ids as opaque; hosts may choose any scheme.
    public static func openVMMChannel(relid: UInt32, sint: UInt8 = 2, vtl: UInt8 = 0) -> UInt32 {
        relid | UInt32(sint) << 12 | UInt32(vtl) << 16
    }
}
