/// RNDIS message types (11 §5.1). An open set.
public struct RNDISMessageType: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// 0x00000001 REMOTE_NDIS_PACKET_MSG: a data frame with its per-packet info.
    public static let packet = Self(rawValue: 0x0000_0001)
    /// 0x00000002 REMOTE_NDIS_INITIALIZE_MSG.
    public static let initialize = Self(rawValue: 0x0000_0002)
    /// 0x80000002 REMOTE_NDIS_INITIALIZE_CMPLT.
    public static let initializeComplete = Self(rawValue: 0x8000_0002)
    /// 0x00000003 REMOTE_NDIS_HALT_MSG: the guest stops the device; no answer.
    public static let halt = Self(rawValue: 0x0000_0003)
    /// 0x00000004 REMOTE_NDIS_QUERY_MSG: read an OID.
    public static let query = Self(rawValue: 0x0000_0004)
    /// 0x80000004 REMOTE_NDIS_QUERY_CMPLT.
    public static let queryComplete = Self(rawValue: 0x8000_0004)
    /// 0x00000005 REMOTE_NDIS_SET_MSG: write an OID.
    public static let set = Self(rawValue: 0x0000_0005)
    /// 0x80000005 REMOTE_NDIS_SET_CMPLT.
    public static let setComplete = Self(rawValue: 0x8000_0005)
    /// 0x00000006 REMOTE_NDIS_RESET_MSG.
    public static let reset = Self(rawValue: 0x0000_0006)
    /// 0x80000006 REMOTE_NDIS_RESET_CMPLT.
    public static let resetComplete = Self(rawValue: 0x8000_0006)
    /// 0x00000007 REMOTE_NDIS_INDICATE_STATUS_MSG: an unsolicited status (link up or down, …).
    public static let indicateStatus = Self(rawValue: 0x0000_0007)
    /// 0x00000008 REMOTE_NDIS_KEEPALIVE_MSG.
    public static let keepalive = Self(rawValue: 0x0000_0008)
    /// 0x80000008 REMOTE_NDIS_KEEPALIVE_CMPLT.
    public static let keepaliveComplete = Self(rawValue: 0x8000_0008)
}

extension RNDISMessageType: CustomStringConvertible {
    /// The message's name without its `REMOTE_NDIS_` prefix, or its number if unknown.
    public var description: String {
        switch self {
        case .packet: return "PACKET"
        case .initialize: return "INITIALIZE"
        case .initializeComplete: return "INITIALIZE_CMPLT"
        case .halt: return "HALT"
        case .query: return "QUERY"
        case .queryComplete: return "QUERY_CMPLT"
        case .set: return "SET"
        case .setComplete: return "SET_CMPLT"
        case .reset: return "RESET"
        case .resetComplete: return "RESET_CMPLT"
        case .indicateStatus: return "INDICATE_STATUS"
        case .keepalive: return "KEEPALIVE"
        case .keepaliveComplete: return "KEEPALIVE_CMPLT"
        default: return "0x\(String(self.rawValue, radix: 16))"
        }
    }
}

/// RNDIS / NDIS status codes, including the indication codes (11 §5.1).
public struct RNDISStatus: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// 0 NDIS_STATUS_SUCCESS.
    public static let success = Self(rawValue: 0)
    /// 0x80000005 NDIS_STATUS_BUFFER_OVERFLOW: the answer did not fit.
    public static let bufferOverflow = Self(rawValue: 0x8000_0005)
    /// 0xC0000001 NDIS_STATUS_FAILURE.
    public static let failure = Self(rawValue: 0xC000_0001)
    /// 0xC00000BB NDIS_STATUS_NOT_SUPPORTED: an OID the device does not implement.
    public static let notSupported = Self(rawValue: 0xC000_00BB)
    /// 0xC0010004 NDIS_STATUS_BAD_VERSION.
    public static let badVersion = Self(rawValue: 0xC001_0004)
    /// 0xC0010015 NDIS_STATUS_INVALID_DATA.
    public static let invalidData = Self(rawValue: 0xC001_0015)
    /// 0x4001000B NDIS_STATUS_MEDIA_CONNECT: indication, the link is up.
    public static let mediaConnect = Self(rawValue: 0x4001_000B)
    /// 0x4001000C NDIS_STATUS_MEDIA_DISCONNECT: indication, the link is down.
    public static let mediaDisconnect = Self(rawValue: 0x4001_000C)
    /// 0x40010013 NDIS_STATUS_LINK_SPEED_CHANGE: indication.
    public static let linkSpeedChange = Self(rawValue: 0x4001_0013)
    /// 0x40010018 NDIS_STATUS_NETWORK_CHANGE: indication, the guest should renew its address.
    public static let networkChange = Self(rawValue: 0x4001_0018)
    /// 0x40020006 NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG: indication.
    public static let taskOffloadCurrentConfig = Self(rawValue: 0x4002_0006)
}

/// NDIS object identifiers (11 §5.2, §5.3, §6). An open set.
public struct NDISOID: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// 0x00010106 OID_GEN_MAXIMUM_FRAME_SIZE: the largest frame without the Ethernet header (u32).
    public static let maximumFrameSize = Self(rawValue: 0x0001_0106)
    /// 0x00010107 OID_GEN_LINK_SPEED: in units of 100 bit/s (u32).
    public static let linkSpeed = Self(rawValue: 0x0001_0107)
    /// 0x0001010E OID_GEN_CURRENT_PACKET_FILTER: the ``RNDISPacketFilter`` bits (u32).
    public static let currentPacketFilter = Self(rawValue: 0x0001_010E)
    /// 0x00010111 OID_GEN_MAXIMUM_TOTAL_SIZE: the largest frame with its header (u32).
    public static let maximumTotalSize = Self(rawValue: 0x0001_0111)
    /// 0x00010114 OID_GEN_MEDIA_CONNECT_STATUS: 0 connected, 1 disconnected (u32).
    public static let mediaConnectStatus = Self(rawValue: 0x0001_0114)
    /// 0x00010203 OID_GEN_RECEIVE_SCALE_CAPABILITIES: the vRSS capabilities.
    public static let receiveScaleCapabilities = Self(rawValue: 0x0001_0203)
    /// 0x00010204 OID_GEN_RECEIVE_SCALE_PARAMETERS: the guest's RSS key and indirection table.
    public static let receiveScaleParameters = Self(rawValue: 0x0001_0204)
    /// 0x0001021B OID_GEN_RNDIS_CONFIG_PARAMETER: a named configuration value.
    public static let rndisConfigParameter = Self(rawValue: 0x0001_021B)
    /// 0x00020216 OID_GEN_FRIENDLY_NAME: the adapter's name (UTF-16).
    public static let friendlyName = Self(rawValue: 0x0002_0216)
    /// 0x0001010C OID_GEN_VENDOR_ID.
    public static let vendorID = Self(rawValue: 0x0001_010C)
    /// 0x00010113 OID_GEN_MAC_OPTIONS.
    public static let macOptions = Self(rawValue: 0x0001_0113)
    /// 0x01010101 OID_802_3_PERMANENT_ADDRESS: the MAC address (6 bytes).
    public static let permanentAddress = Self(rawValue: 0x0101_0101)
    /// 0x01010102 OID_802_3_CURRENT_ADDRESS: the MAC address in use (6 bytes).
    public static let currentAddress = Self(rawValue: 0x0101_0102)
    /// 0x0101010A OID_OFFLOAD_ENCAPSULATION: the encapsulation the offloads assume.
    public static let offloadEncapsulation = Self(rawValue: 0x0101_010A)
    /// 0xFC01020C OID_TCP_OFFLOAD_PARAMETERS: the offloads the guest turns on.
    public static let offloadParameters = Self(rawValue: 0xFC01_020C)
    /// 0xFC01020D OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES: the offloads the device can do.
    public static let offloadHardwareCapabilities = Self(rawValue: 0xFC01_020D)
}

/// Packet-filter bits of OID_GEN_CURRENT_PACKET_FILTER.
public struct RNDISPacketFilter: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// 0x01 Frames to the adapter's own address.
    public static let directed = Self(rawValue: 0x01)
    /// 0x02 Multicast frames to addresses in the multicast list.
    public static let multicast = Self(rawValue: 0x02)
    /// 0x04 Every multicast frame.
    public static let allMulticast = Self(rawValue: 0x04)
    /// 0x08 Broadcast frames.
    public static let broadcast = Self(rawValue: 0x08)
    /// 0x20 Every frame.
    public static let promiscuous = Self(rawValue: 0x20)
}

/// What the host says in INITIALIZE_CMPLT (11 §5.1).
public struct RNDISInitializeComplete: Hashable, Sendable {
    /// The request id of the INITIALIZE being answered.
    public var requestID: UInt32
    /// Whether the device initialised.
    public var status: RNDISStatus
    /// The RNDIS major version (1).
    public var major: UInt32 = 1
    /// The RNDIS minor version (0).
    public var minor: UInt32 = 0
    /// 1: connectionless.
    public var deviceFlags: UInt32 = 1
    /// 0: 802.3.
    public var medium: UInt32 = 0
    /// The most RNDIS packets the guest may put in one send (OpenVMM: 8).
    public var maximumPacketsPerMessage: UInt32 = 8
    /// The largest RNDIS message the guest may send, in bytes.
    public var maximumTransferSize: UInt32 = 0xEFFF_FFFF
    /// log2 of the alignment of batched packets (OpenVMM: 3 = 8 bytes).
    public var packetAlignmentShift: UInt32 = 3

    /// An answer to `requestID` with the values above.
    public init(requestID: UInt32, status: RNDISStatus = .success) {
        self.requestID = requestID
        self.status = status
    }
}
