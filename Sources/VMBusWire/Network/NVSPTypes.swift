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

    /// 1: NVSP_MSG_TYPE_INIT, G→H: the version range the guest speaks.
    public static let initialize = Self(rawValue: 1)
    /// 2: NVSP_MSG_TYPE_INIT_COMPLETE, H→G: the version chosen, or a failure.
    public static let initializeComplete = Self(rawValue: 2)
    /// 100: NVSP_MSG1_TYPE_SEND_NDIS_VER, G→H: the NDIS version the guest speaks.
    public static let sendNDISVersion = Self(rawValue: 100)
    /// 101: NVSP_MSG1_TYPE_SEND_RECV_BUF, G→H: the receive buffer's GPADL.
    public static let sendReceiveBuffer = Self(rawValue: 101)
    /// 102: NVSP_MSG1_TYPE_SEND_RECV_BUF_COMPLETE, H→G: how the host divides it.
    public static let sendReceiveBufferComplete = Self(rawValue: 102)
    /// 103: NVSP_MSG1_TYPE_REVOKE_RECV_BUF, G→H: stop using the receive buffer.
    public static let revokeReceiveBuffer = Self(rawValue: 103)
    /// 104: NVSP_MSG1_TYPE_SEND_SEND_BUF, G→H: the send buffer's GPADL.
    public static let sendSendBuffer = Self(rawValue: 104)
    /// 105: NVSP_MSG1_TYPE_SEND_SEND_BUF_COMPLETE, H→G: its section size.
    public static let sendSendBufferComplete = Self(rawValue: 105)
    /// 106: NVSP_MSG1_TYPE_REVOKE_SEND_BUF, G→H: stop using the send buffer.
    public static let revokeSendBuffer = Self(rawValue: 106)
    /// 107: NVSP_MSG1_TYPE_SEND_RNDIS_PKT, both ways: an RNDIS message.
    public static let sendRNDISPacket = Self(rawValue: 107)
    /// 108: NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE, both ways: its completion.
    public static let sendRNDISPacketComplete = Self(rawValue: 108)
    /// 125: NVSP_MSG2_TYPE_SEND_NDIS_CONFIG, G→H: MTU and capabilities.
    public static let sendNDISConfig = Self(rawValue: 125)
    /// 128: NVSP_MSG4_TYPE_SEND_VF_ASSOCIATION, H→G: an SR-IOV virtual function goes with this NIC.
    public static let vfAssociation = Self(rawValue: 128)
    /// 129: NVSP_MSG4_TYPE_SWITCH_DATA_PATH, G→H: data through the synthetic path or the VF.
    public static let switchDataPath = Self(rawValue: 129)
    /// 131: NVSP_MSG5_TYPE_OID_QUERY_EX, G→H.
    public static let oidQueryEx = Self(rawValue: 131)
    /// 132: NVSP_MSG5_TYPE_OID_QUERY_EX_COMPLETE, H→G.
    public static let oidQueryExComplete = Self(rawValue: 132)
    /// 133: NVSP_MSG5_TYPE_SUBCHANNEL, both ways: ask for and grant sub-channels.
    public static let subchannel = Self(rawValue: 133)
    /// 134: NVSP_MSG5_TYPE_SEND_INDIRECTION_TABLE, H→G: the send indirection table.
    public static let sendIndirectionTable = Self(rawValue: 134)
}

/// NVSP status words (11 §2.3): only ``success`` is success.
public struct NVSPStatus: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// 0: NVSP_STAT_NONE: no status.
    public static let none = Self(rawValue: 0)
    /// 1: NVSP_STAT_SUCCESS.
    public static let success = Self(rawValue: 1)
    /// 2: NVSP_STAT_FAIL.
    public static let failure = Self(rawValue: 2)
    /// 3: NVSP_STAT_PROTOCOL_TOO_NEW.
    public static let protocolTooNew = Self(rawValue: 3)
    /// 4: NVSP_STAT_PROTOCOL_TOO_OLD.
    public static let protocolTooOld = Self(rawValue: 4)
    /// 5: NVSP_STAT_INVALID_RNDIS_PKT: a malformed RNDIS message.
    public static let invalidRNDISPacket = Self(rawValue: 5)
    /// 6: NVSP_STAT_BUSY.
    public static let busy = Self(rawValue: 6)
    /// 7: NVSP_STAT_UNSUPPORTED.
    public static let unsupported = Self(rawValue: 7)

    /// Whether the status is ``success`` (1); every other value, 0 included, is not.
    public var isSuccess: Bool { self == .success }
}

/// NDIS_CONFIG capability bits (11 §3).
public struct NVSPCapabilities: OptionSet, Hashable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// 0x01: VMQ.
    public static let vmq = Self(rawValue: 0x01)
    /// 0x02: TCP chimney offload.
    public static let chimney = Self(rawValue: 0x02)
    /// 0x04: SR-IOV: the guest can use a virtual function.
    public static let sriov = Self(rawValue: 0x04)
    /// 0x08: IEEE 802.1Q VLAN tagging.
    public static let ieee8021q = Self(rawValue: 0x08)
    /// 0x10: Correlation ids.
    public static let correlationID = Self(rawValue: 0x10)
    /// 0x20: NIC teaming.
    public static let teaming = Self(rawValue: 0x20)
    /// 0x40: Virtual subnets.
    public static let virtualSubnet = Self(rawValue: 0x40)
    /// 0x80: Receive segment coalescing (RSC) from the host.
    public static let rsc = Self(rawValue: 0x80)
}

/// One receive-buffer section as the host describes it (RECV_BUF_COMPLETE, 11 §3).
public struct NVSPReceiveSection: Hashable, Sendable {
    /// Where the section starts in the receive buffer, in bytes.
    public var offset: UInt32
    /// Bytes of each slot in the section.
    public var subAllocationSize: UInt32
    /// Slots in the section.
    public var subAllocationCount: UInt32
    /// Where the section ends: ``offset`` plus its slots.
    public var endOffset: UInt32

    /// A section of `subAllocationCount` slots of `subAllocationSize` bytes from `offset`.
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
    /// The SEND_RNDIS_PKT channel type of control messages (everything but PACKET_MSG).
    public static let controlChannel: UInt32 = 1
    /// Entries of the send indirection table.
    public static let indirectionTableEntries = 16
}
