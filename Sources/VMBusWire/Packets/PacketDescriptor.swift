/// A ring packet type (03 §2). An open set: any u16 is representable.
public struct PacketType: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// 0x0 VM_PKT_INVALID: never valid.
    public static let invalid = Self(rawValue: 0x0)
    /// 0x1 VM_PKT_SYNCH (unused).
    public static let synch = Self(rawValue: 0x1)
    /// 0x2 VM_PKT_ADD_XFER_PAGESET (unused; device protocols set up transfer pages).
    public static let addTransferPageSet = Self(rawValue: 0x2)
    /// 0x3 VM_PKT_RM_XFER_PAGESET (unused).
    public static let removeTransferPageSet = Self(rawValue: 0x3)
    /// 0x4 VM_PKT_ESTABLISH_GPADL (unused; GPADLs use channel messages).
    public static let establishGpadl = Self(rawValue: 0x4)
    /// 0x5 VM_PKT_TEARDOWN_GPADL (unused).
    public static let teardownGpadl = Self(rawValue: 0x5)
    /// 0x6 VM_PKT_DATA_INBAND: the payload follows the descriptor. Most traffic.
    public static let dataInBand = Self(rawValue: 0x6)
    /// 0x7 VM_PKT_DATA_USING_XFER_PAGES: ranges of a transfer page set (netvsc receive).
    public static let dataUsingTransferPages = Self(rawValue: 0x7)
    /// 0x8 VM_PKT_DATA_USING_GPADL (unused).
    public static let dataUsingGpadl = Self(rawValue: 0x8)
    /// 0x9 VM_PKT_DATA_USING_GPA_DIRECT: guest buffers by PFN (storage, network).
    public static let dataUsingGpaDirect = Self(rawValue: 0x9)
    /// 0xA VM_PKT_CANCEL_REQUEST (unused).
    public static let cancelRequest = Self(rawValue: 0xA)
    /// 0xB VM_PKT_COMP: a completion.
    public static let completion = Self(rawValue: 0xB)
    /// 0xC VM_PKT_DATA_USING_ADDITIONAL_PKT (unused).
    public static let dataUsingAdditionalPacket = Self(rawValue: 0xC)
    /// 0xD VM_PKT_ADDITIONAL_DATA (unused).
    public static let additionalData = Self(rawValue: 0xD)

    /// The four types real hosts and guests exchange; OpenVMM treats any other as corruption.
    public static let exchanged: [PacketType] = [.dataInBand, .dataUsingTransferPages, .dataUsingGpaDirect, .completion]
}

/// Descriptor flags (03 §1). Unknown bits are kept; ``PacketDescriptor/validateStrictly()``
/// rejects them.
public struct PacketFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// Bit 0 VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED: the sender wants an answer.
    public static let completionRequested = PacketFlags(rawValue: 1)
}

/// The 16-byte descriptor that starts every ring packet (`vmpacket_descriptor`, 03 §1).
///
/// `offset8` and `len8` count 8-byte units: the payload starts `offset8 × 8` bytes into the
/// packet and the packet (descriptor, extension, payload, zero padding) is `len8 × 8` bytes,
/// followed in the ring by an 8-byte trailer.
public struct PacketDescriptor: Hashable, Sendable {
    public static let wireSize = 16
    /// Ring bytes after every packet (02 §5).
    public static let trailerSize = 8
    /// `len8` is a u16: no packet is longer than this many bytes.
    public static let maximumPacketLength = 65535 * 8
    /// Linux `VMBUS_NO_RQSTOR`: the channel has no requestor table (03 §6).
    public static let noRequestor: UInt64 = 0xFFFF_FFFF_FFFF_FFFF
    /// Linux `VMBUS_RQST_ERROR`: invalid id / allocation failure / placeholder while writing.
    public static let requestError: UInt64 = 0xFFFF_FFFF_FFFF_FFFE
    /// Linux `VMBUS_RQST_ADDR_ANY`: match any stored cookie.
    public static let requestAddressAny: UInt64 = 0xFFFF_FFFF_FFFF_FFFF
    /// netvsc `VMBUS_RQST_ID_NO_RESPONSE` (a driver-local convention, not a wire constant).
    public static let requestNoResponse: UInt64 = 0xFFFF_FFFF_FFFF_FFFD
    /// storvsc `VMBUS_RQST_INIT` (driver-local).
    public static let requestInit: UInt64 = 0xFFFF_FFFF_FFFF_FFFD
    /// storvsc `VMBUS_RQST_RESET` (driver-local).
    public static let requestReset: UInt64 = 0xFFFF_FFFF_FFFF_FFFC
    /// The id the Linux fcopy daemon answers with (06 §8).
    public static let allOnesTransactionID: UInt64 = 0xFFFF_FFFF_FFFF_FFFF

    public var type: PacketType
    /// Payload offset in 8-byte units (≥ 2).
    public var offset8: UInt16
    /// Packet length in 8-byte units (≥ offset8).
    public var len8: UInt16
    public var flags: PacketFlags
    /// Opaque to the transport; 0 means "unsolicited" (03 §6).
    public var transactionID: UInt64

    /// A descriptor with the given fields, unchecked: encoders compute them; parsers validate.
    public init(type: PacketType, offset8: UInt16, len8: UInt16, flags: PacketFlags = [], transactionID: UInt64 = 0) {
        self.type = type
        self.offset8 = offset8
        self.len8 = len8
        self.flags = flags
        self.transactionID = transactionID
    }

    /// Reads and validates a descriptor: `offset8 ≥ 2` and `len8 ≥ offset8`.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize)
        let word0 = try reader.readUInt64()
        let word1 = try reader.readUInt64()
        try self.init(words: (word0, word1))
    }

    /// The zero-copy form for the ring data path: the descriptor as two little-endian u64
    /// words read once from shared memory (word 0 = type | offset8 << 16 | len8 << 32 |
    /// flags << 48, word 1 = transaction id), validated like ``init(from:)``.
    public init(words: (UInt64, UInt64)) throws(WireError) {
        self.type = PacketType(rawValue: UInt16(truncatingIfNeeded: words.0))
        self.offset8 = UInt16(truncatingIfNeeded: words.0 >> 16)
        self.len8 = UInt16(truncatingIfNeeded: words.0 >> 32)
        self.flags = PacketFlags(rawValue: UInt16(truncatingIfNeeded: words.0 >> 48))
        self.transactionID = words.1
        guard self.offset8 >= 2 else { throw WireError.invalidField(name: "offset8", value: UInt64(self.offset8)) }
        guard self.len8 >= self.offset8 else { throw WireError.invalidField(name: "len8", value: UInt64(self.len8)) }
    }

    /// The two words of the wire form (see ``init(words:)``).
    public var words: (UInt64, UInt64) {
        (UInt64(self.type.rawValue) | UInt64(self.offset8) << 16 | UInt64(self.len8) << 32
            | UInt64(self.flags.rawValue) << 48, self.transactionID)
    }

    public func write(to writer: inout WireWriter) {
        writer.writeUInt16(self.type.rawValue)
        writer.writeUInt16(self.offset8)
        writer.writeUInt16(self.len8)
        writer.writeUInt16(self.flags.rawValue)
        writer.writeUInt64(self.transactionID)
    }

    /// Bytes from the descriptor start to the payload.
    public var payloadOffset: Int { Int(self.offset8) * 8 }
    /// The packet's length (descriptor through padding), excluding the trailer.
    public var totalLength: Int { Int(self.len8) * 8 }
    /// Payload bytes, including the sender's zero padding.
    public var payloadLength: Int { self.totalLength - self.payloadOffset }
    /// Ring bytes the packet consumes: `len8 × 8 + 8`.
    public var ringBytes: Int { self.totalLength + Self.trailerSize }

    /// OpenVMM's stricter checks for packets a host receives (02 §9.3): only the four exchanged
    /// types, no flag bit other than bit 0, and the type-specific minimum `offset8` of 3 for
    /// transfer-page and GPA-direct packets.
    public func validateStrictly() throws(WireError) {
        guard PacketType.exchanged.contains(self.type) else {
            throw WireError.unknownType(UInt32(self.type.rawValue))
        }
        guard self.flags.subtracting(.completionRequested).isEmpty else {
            throw WireError.invalidField(name: "packet flags", value: UInt64(self.flags.rawValue))
        }
        if self.type == .dataUsingTransferPages || self.type == .dataUsingGpaDirect, self.offset8 < 3 {
            throw WireError.invalidField(name: "offset8", value: UInt64(self.offset8))
        }
    }
}
