/// NVSP protocol versions (11 §2.1): `major << 16 | minor`. An open set: a peer may offer any
/// number; the named ones are those Linux, DPDK and OpenVMM know.
public struct NVSPVersion: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// 1: the base protocol (its number is 2, not 0x10000).
    public static let v1 = Self(rawValue: 0x0000_0002)
    /// 2: adds NDIS_CONFIG.
    public static let v2 = Self(rawValue: 0x0003_0002)
    /// 4: VF association, data-path switch.
    public static let v4 = Self(rawValue: 0x0004_0000)
    /// 5: sub-channels, send table, OID_QUERY_EX.
    public static let v5 = Self(rawValue: 0x0005_0000)
    /// 6: PD API (unused).
    public static let v6 = Self(rawValue: 0x0006_0000)
    /// 6.1: 40-byte messages, RSC.
    public static let v61 = Self(rawValue: 0x0006_0001)

    /// The versions a guest tries, newest first (Linux and DPDK: INIT with min = max = v).
    public static let guestOrder: [NVSPVersion] = [.v61, .v6, .v5, .v4, .v2, .v1]

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .v1: return "1"
        case .v2: return "2"
        default: return "\(self.rawValue >> 16).\(self.rawValue & 0xFFFF)"
        }
    }
}

/// NVSP message types (11 §2.3). An open set: unknown types survive a round trip.
public struct NVSPMessageType: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let initialize = Self(rawValue: 1)
    public static let initializeComplete = Self(rawValue: 2)
    public static let sendNDISVersion = Self(rawValue: 100)
    public static let sendReceiveBuffer = Self(rawValue: 101)
    public static let sendReceiveBufferComplete = Self(rawValue: 102)
    public static let revokeReceiveBuffer = Self(rawValue: 103)
    public static let sendSendBuffer = Self(rawValue: 104)
    public static let sendSendBufferComplete = Self(rawValue: 105)
    public static let revokeSendBuffer = Self(rawValue: 106)
    public static let sendRNDISPacket = Self(rawValue: 107)
    public static let sendRNDISPacketComplete = Self(rawValue: 108)
    public static let sendNDISConfig = Self(rawValue: 125)
    public static let vfAssociation = Self(rawValue: 128)
    public static let switchDataPath = Self(rawValue: 129)
    public static let oidQueryEx = Self(rawValue: 131)
    public static let oidQueryExComplete = Self(rawValue: 132)
    public static let subchannel = Self(rawValue: 133)
    public static let sendIndirectionTable = Self(rawValue: 134)
}

/// NVSP status words (11 §2.3): only ``success`` is success.
public struct NVSPStatus: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let none = Self(rawValue: 0)
    public static let success = Self(rawValue: 1)
    public static let failure = Self(rawValue: 2)
    public static let protocolTooNew = Self(rawValue: 3)
    public static let protocolTooOld = Self(rawValue: 4)
    public static let invalidRNDISPacket = Self(rawValue: 5)
    public static let busy = Self(rawValue: 6)
    public static let unsupported = Self(rawValue: 7)

    public var isSuccess: Bool { self == .success }
}

/// NDIS_CONFIG capability bits (11 §3).
public struct NVSPCapabilities: OptionSet, Hashable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let vmq = Self(rawValue: 0x01)
    public static let chimney = Self(rawValue: 0x02)
    public static let sriov = Self(rawValue: 0x04)
    public static let ieee8021q = Self(rawValue: 0x08)
    public static let correlationID = Self(rawValue: 0x10)
    public static let teaming = Self(rawValue: 0x20)
    public static let virtualSubnet = Self(rawValue: 0x40)
    public static let rsc = Self(rawValue: 0x80)
}

/// One receive-buffer section as the host describes it (RECV_BUF_COMPLETE, 11 §3).
public struct NVSPReceiveSection: Hashable, Sendable {
    public var offset: UInt32
    public var subAllocationSize: UInt32
    public var subAllocationCount: UInt32
    public var endOffset: UInt32

    public init(offset: UInt32 = 0, subAllocationSize: UInt32, subAllocationCount: UInt32) {
        self.offset = offset
        self.subAllocationSize = subAllocationSize
        self.subAllocationCount = subAllocationCount
        // Exact for any buffer the host accepted: size × count ≤ the buffer (< 4 GiB).
        self.endOffset = offset &+ subAllocationSize &* subAllocationCount
    }
}

/// Fixed values of the network protocol.
public enum NVSP {
    /// The receive buffer's id in SEND_RECV_BUF, which becomes the transfer-page-set id.
    public static let receiveBufferID: UInt16 = 0xCAFE
    /// Linux's send buffer id.
    public static let sendBufferID: UInt16 = 0
    /// "No send section": the message is in GPA-direct ranges only.
    public static let noSection: UInt32 = 0xFFFF_FFFF
    /// The id Linux puts on messages sent without completion request.
    public static let noCompletionID: UInt64 = 0xFFFF_FFFF_FFFF_FFFD
    /// The whole `nvsp_message` with the v6 union (11 §2.2).
    public static let messageSize = 40
    /// Without the v6 members: what hosts send before 6.1.
    public static let legacyMessageSize = 28
    /// SEND_RNDIS_PKT channel types.
    public static let dataChannel: UInt32 = 0
    public static let controlChannel: UInt32 = 1
    /// Entries of the send indirection table.
    public static let indirectionTableEntries = 16
}
