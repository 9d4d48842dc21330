/// RNDIS message types (11 §5.1). An open set.
public struct RNDISMessageType: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let packet = Self(rawValue: 0x0000_0001)
    public static let initialize = Self(rawValue: 0x0000_0002)
    public static let initializeComplete = Self(rawValue: 0x8000_0002)
    public static let halt = Self(rawValue: 0x0000_0003)
    public static let query = Self(rawValue: 0x0000_0004)
    public static let queryComplete = Self(rawValue: 0x8000_0004)
    public static let set = Self(rawValue: 0x0000_0005)
    public static let setComplete = Self(rawValue: 0x8000_0005)
    public static let reset = Self(rawValue: 0x0000_0006)
    public static let resetComplete = Self(rawValue: 0x8000_0006)
    public static let indicateStatus = Self(rawValue: 0x0000_0007)
    public static let keepalive = Self(rawValue: 0x0000_0008)
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

    public static let success = Self(rawValue: 0)
    public static let bufferOverflow = Self(rawValue: 0x8000_0005)
    public static let failure = Self(rawValue: 0xC000_0001)
    public static let notSupported = Self(rawValue: 0xC000_00BB)
    public static let badVersion = Self(rawValue: 0xC001_0004)
    public static let invalidData = Self(rawValue: 0xC001_0015)
    public static let mediaConnect = Self(rawValue: 0x4001_000B)
    public static let mediaDisconnect = Self(rawValue: 0x4001_000C)
    public static let linkSpeedChange = Self(rawValue: 0x4001_0013)
    public static let networkChange = Self(rawValue: 0x4001_0018)
    public static let taskOffloadCurrentConfig = Self(rawValue: 0x4002_0006)
}

/// NDIS object identifiers (11 §5.2, §5.3, §6). An open set.
public struct NDISOID: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let maximumFrameSize = Self(rawValue: 0x0001_0106)
    public static let linkSpeed = Self(rawValue: 0x0001_0107)
    public static let currentPacketFilter = Self(rawValue: 0x0001_010E)
    public static let maximumTotalSize = Self(rawValue: 0x0001_0111)
    public static let mediaConnectStatus = Self(rawValue: 0x0001_0114)
    public static let receiveScaleCapabilities = Self(rawValue: 0x0001_0203)
    public static let receiveScaleParameters = Self(rawValue: 0x0001_0204)
    public static let rndisConfigParameter = Self(rawValue: 0x0001_021B)
    public static let friendlyName = Self(rawValue: 0x0002_0216)
    public static let vendorID = Self(rawValue: 0x0001_010C)
    public static let macOptions = Self(rawValue: 0x0001_0113)
    public static let permanentAddress = Self(rawValue: 0x0101_0101)
    public static let currentAddress = Self(rawValue: 0x0101_0102)
    public static let offloadEncapsulation = Self(rawValue: 0x0101_010A)
    public static let offloadParameters = Self(rawValue: 0xFC01_020C)
    public static let offloadHardwareCapabilities = Self(rawValue: 0xFC01_020D)
}

/// Packet-filter bits of OID_GEN_CURRENT_PACKET_FILTER.
public struct RNDISPacketFilter: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let directed = Self(rawValue: 0x01)
    public static let multicast = Self(rawValue: 0x02)
    public static let allMulticast = Self(rawValue: 0x04)
    public static let broadcast = Self(rawValue: 0x08)
    public static let promiscuous = Self(rawValue: 0x20)
}

/// What the host says in INITIALIZE_CMPLT (11 §5.1).
public struct RNDISInitializeComplete: Hashable, Sendable {
    public var requestID: UInt32
    public var status: RNDISStatus
    public var major: UInt32 = 1
    public var minor: UInt32 = 0
    /// 1: connectionless.
    public var deviceFlags: UInt32 = 1
    /// 0: 802.3.
    public var medium: UInt32 = 0
    /// The most RNDIS packets the guest may put in one send (OpenVMM: 8).
    public var maximumPacketsPerMessage: UInt32 = 8
    public var maximumTransferSize: UInt32 = 0xEFFF_FFFF
    /// log2 of the alignment of batched packets (OpenVMM: 3 = 8 bytes).
    public var packetAlignmentShift: UInt32 = 3

    public init(requestID: UInt32, status: RNDISStatus = .success) {
        self.requestID = requestID
        self.status = status
    }
}
