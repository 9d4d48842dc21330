/// Storage protocol versions (10 §3): `major << 8 | minor` in a u16. An open set: a guest may
/// offer any number and the host decides; the named ones are those Linux, Windows and OpenVMM
/// know.
public struct StorageVersion: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// The version `major.minor`.
    public init(major: UInt8, minor: UInt8) { self.rawValue = UInt16(major) << 8 | UInt16(minor) }

    /// 2.0, Windows Server 2008 (Win6): pre-Win8 packet size.
    public static let win6 = Self(rawValue: 0x0200)
    /// 4.2, Windows 7: pre-Win8 packet size; first version with ENUMERATE_BUS from OpenVMM.
    public static let win7 = Self(rawValue: 0x0402)
    /// 5.1, Windows 8: the 52-byte request and 64-byte packet; sub-channels.
    public static let win8 = Self(rawValue: 0x0501)
    /// 6.0, Windows 8.1 ("Blue"): the newest version OpenVMM accepts, so where Linux ends.
    public static let blue = Self(rawValue: 0x0600)
    /// 6.2, Windows 10 ("Threshold"): Linux offers it first; Linux sends WRITE SAME only here.
    public static let threshold = Self(rawValue: 0x0602)

    /// What Linux ≥ 5.19 offers, in order (older kernels go on with 4.2 and 2.0).
    public static let linuxOrder: [StorageVersion] = [.threshold, .blue, .win8]
    /// What OpenVMM's host accepts: 6.2 is refused, so a Linux guest settles on 6.0.
    public static let openVMMAccepted: [StorageVersion] = [.win6, .win7, .win8, .blue]

    /// The major number (the high byte).
    public var major: UInt8 { UInt8(truncatingIfNeeded: self.rawValue >> 8) }
    /// The minor number (the low byte).
    public var minor: UInt8 { UInt8(truncatingIfNeeded: self.rawValue) }

    /// Whether packets carry the Win8 extension of the SCSI request (10 §2.1): every version
    /// from 5.1 on. Before it the vstor packet is 48 bytes and the sense area 18.
    public var hasWin8Extension: Bool { self >= .win8 }

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }

    public var description: String { "\(self.major).\(self.minor)" }
}

/// vstor packet operations (10 §2.2). An open set: an unknown operation still parses (as
/// ``StoragePacket/Body/raw(_:)``) so a host can refuse it with a typed error, not a trap.
public struct StorageOperation: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// H→G: the operation of every completion, whatever it completes.
    public static let completeIO = Self(rawValue: 1)
    /// H→G, unsolicited: Linux treats it like ``enumerateBus``.
    public static let removeDevice = Self(rawValue: 2)
    /// G→H: one SCSI command in a ``SCSIRequest``.
    public static let executeSRB = Self(rawValue: 3)
    /// G→H: OpenVMM answers SUCCESS and does nothing; Linux never sends it.
    public static let resetLUN = Self(rawValue: 4)
    /// G→H: as ``resetLUN``.
    public static let resetAdapter = Self(rawValue: 5)
    /// G→H: Linux's host-reset handler (id ``StorageProtocol/resetRequestID``).
    public static let resetBus = Self(rawValue: 6)
    /// G→H: the first request of set-up; the host answers with a status.
    public static let beginInitialization = Self(rawValue: 7)
    /// G→H: the last request of set-up; after its completion the guest scans LUNs.
    public static let endInitialization = Self(rawValue: 8)
    /// G→H: one version offer; the completion's status says whether it was taken.
    public static let queryProtocolVersion = Self(rawValue: 9)
    /// G→H: the completion carries ``StorageChannelProperties``.
    public static let queryProperties = Self(rawValue: 10)
    /// H→G, unsolicited: "rescan the bus" after a disk was added or removed.
    public static let enumerateBus = Self(rawValue: 11)
    /// Both ways, Fibre Channel only: the WWN block.
    public static let fibreChannelData = Self(rawValue: 12)
    /// G→H, ≥ 5.1: a u16 count of sub-channels to offer.
    public static let createSubChannels = Self(rawValue: 13)
    /// Defined by OpenVMM only and never used.
    public static let eventNotification = Self(rawValue: 14)
}

/// vstor packet flags (10 §2).
public struct StoragePacketFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `REQUEST_COMPLETION_FLAG`: Linux sets it on every request; hosts send 0.
    public static let requestCompletion = Self(rawValue: 0x1)
}

/// QUERY_PROPERTIES flags (10 §2.4).
public struct StoragePropertyFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The host offers sub-channels: without it Linux never sends CREATE_SUB_CHANNELS.
    public static let supportsMultiChannel = Self(rawValue: 0x1)
}

/// Fixed values and sizes of the storage protocol (10 §2, §4.5, §10).
public enum StorageProtocol {
    /// operation, flags, status: the part every vstor packet has.
    public static let headerSize = 12
    /// The vstor packet with the Win8 request: what versions ≥ 5.1 use and Linux ≥ 5.19
    /// always sends, even during negotiation.
    public static let packetSize = 64
    /// The pre-Win8 vstor packet (versions 2.0 and 4.2).
    public static let legacyPacketSize = 48
    /// `vmscsi_size_delta`: the Win8 extension of the request.
    public static let sizeDelta = packetSize - legacyPacketSize
    /// Linux's fixed transaction id for the initialization operations (`VMBUS_RQST_INIT`).
    public static let initRequestID: UInt64 = 0xFFFF_FFFF_FFFF_FFFD
    /// Linux's fixed transaction id for RESET_BUS (`VMBUS_RQST_RESET`).
    public static let resetRequestID: UInt64 = 0xFFFF_FFFF_FFFF_FFFC
    /// OpenVMM's max_transfer_bytes: 256 KiB, which Linux turns into 512 sectors and 65 PFNs.
    public static let openVMMMaximumTransferBytes: UInt32 = 0x40000

    /// The vstor packet size a peer at `version` expects: 64 from 5.1 on, 48 before.
    public static func packetSize(for version: StorageVersion) -> Int {
        version.hasWin8Extension ? Self.packetSize : Self.legacyPacketSize
    }

    /// The sense bytes a request at `version` advertises in `sense_info_length`: the whole
    /// 20-byte area from 5.1 on, 18 (`0x12`) before.
    public static func senseBufferSize(for version: StorageVersion) -> Int {
        version.hasWin8Extension ? SCSIRequest.senseAreaSize : SCSIRequest.legacySenseSize
    }

    /// The size of a host's reply to a request payload of `requestSize` bytes (10 §2.1):
    /// OpenVMM echoes the request's size, capped at 64, so old guests that sent 48 get 48 and
    /// Linux ≥ 5.19, which drops completions shorter than 64, gets 64. Sizes below the
    /// 12-byte header give the header (such requests are a protocol error anyway).
    public static func replySize(forRequestOfSize requestSize: Int) -> Int {
        min(max(requestSize, Self.headerSize), Self.packetSize)
    }
}
