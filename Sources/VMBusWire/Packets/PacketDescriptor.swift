/// The 16-byte descriptor that starts every ring packet (Linux `vmpacket_descriptor`, 03 §1,
/// 02 §5).
///
/// ```
/// offset 0  type     u16     offset 2  offset8  u16     offset 4  len8  u16
/// offset 6  flags    u16     offset 8  trans_id u64
/// ```
///
/// `offset8` and `len8` count 8-byte units: the payload starts `offset8 × 8` bytes into the
/// packet and the packet (descriptor, type-specific extension, payload, zero padding) is
/// `len8 × 8` bytes long, followed in the ring by an 8-byte trailer.
public struct PacketDescriptor: Hashable, Sendable {
    /// Bytes on the wire.
    @inlinable public static var wireSize: Int { 16 }
    /// Ring bytes after every packet: the "previous packet offset" trailer (02 §5).
    @inlinable public static var trailerSize: Int { 8 }
    /// The smallest legal `offset8`: the payload cannot start inside the descriptor.
    @inlinable public static var minimumOffset8: UInt16 { 2 }
    /// `len8` is a u16, so no packet is longer than 65535 × 8 = 524280 bytes (03 §1). Rings and
    /// receivers usually impose a much smaller limit of their own.
    public static let maximumPacketLength = Int(UInt16.max) * 8

    // MARK: Transaction-id sentinels (03 §6)

    /// Linux `VMBUS_NO_RQSTOR`: the channel has no requestor table (03 §7).
    public static let noRequestor: UInt64 = 0xFFFF_FFFF_FFFF_FFFF
    /// Linux `VMBUS_RQST_ERROR`: allocation failure, an invalid id, or the placeholder current
    /// Linux writes into a descriptor before patching the real id in during the ring write.
    public static let requestError: UInt64 = 0xFFFF_FFFF_FFFF_FFFE
    /// Linux `VMBUS_RQST_ADDR_ANY`: "match any stored cookie" when freeing a requestor slot.
    public static let requestAddressAny: UInt64 = 0xFFFF_FFFF_FFFF_FFFF
    /// netvsc `VMBUS_RQST_ID_NO_RESPONSE`. A driver-local convention, not a wire constant.
    public static let requestNoResponse: UInt64 = 0xFFFF_FFFF_FFFF_FFFD
    /// storvsc `VMBUS_RQST_INIT` (driver-local; the same value as ``requestNoResponse``).
    public static let requestInit: UInt64 = 0xFFFF_FFFF_FFFF_FFFD
    /// storvsc `VMBUS_RQST_RESET` (driver-local).
    public static let requestReset: UInt64 = 0xFFFF_FFFF_FFFF_FFFC
    /// The all-ones id the Linux fcopy daemon answers with (06 §8).
    public static let allOnesTransactionID: UInt64 = 0xFFFF_FFFF_FFFF_FFFF
    /// Id 0: Hyper-V's unsolicited messages use it, and Hyper-V never answers a request that
    /// carries it, so a request wanting completion must not (03 §6).
    public static let unsolicited: UInt64 = 0

    // MARK: Fields

    /// The packet type (offset 0).
    public var type: PacketType
    /// Payload offset in 8-byte units (offset 2); ≥ 2, larger when an extension follows.
    public var offset8: UInt16
    /// Packet length in 8-byte units, trailer excluded (offset 4); ≥ `offset8`.
    public var len8: UInt16
    /// Flags (offset 6), unknown bits preserved.
    public var flags: PacketFlags
    /// Opaque to the transport (offset 8); the responder copies it into its answer (03 §6).
    public var transactionID: UInt64

    /// A descriptor with the given fields, unchecked: encoders compute them, parsers validate.
    @inlinable
    public init(type: PacketType, offset8: UInt16, len8: UInt16, flags: PacketFlags = [], transactionID: UInt64 = 0) {
        self.type = type
        self.offset8 = offset8
        self.len8 = len8
        self.flags = flags
        self.transactionID = transactionID
    }

    // MARK: Wire form

    /// Reads and validates a descriptor.
    /// - Throws: ``WireError/truncated(needed:available:)`` below 16 bytes;
    ///   ``WireError/invalidField(name:value:)`` for `offset8 < 2` (name "offset8") or
    ///   `len8 < offset8` (name "len8").
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize)
        let word0 = try reader.readUInt64()
        let word1 = try reader.readUInt64()
        try self.init(words: (word0, word1))
    }

    /// Writes the 16 bytes as they are, unchecked.
    public func write(to writer: inout WireWriter) {
        writer.writeUInt16(self.type.rawValue)
        writer.writeUInt16(self.offset8)
        writer.writeUInt16(self.len8)
        writer.writeUInt16(self.flags.rawValue)
        writer.writeUInt64(self.transactionID)
    }

    /// The allocation-free form for the ring data path: the descriptor as the two
    /// little-endian u64 words a reader copies once out of shared memory, validated like
    /// ``init(from:)``.
    ///
    /// Word 0 is `type | offset8 << 16 | len8 << 32 | flags << 48`; word 1 is the transaction id.
    @inlinable
    public init(words: (UInt64, UInt64)) throws(WireError) {
        self.type = PacketType(rawValue: UInt16(truncatingIfNeeded: words.0))
        self.offset8 = UInt16(truncatingIfNeeded: words.0 >> 16)
        self.len8 = UInt16(truncatingIfNeeded: words.0 >> 32)
        self.flags = PacketFlags(rawValue: UInt16(truncatingIfNeeded: words.0 >> 48))
        self.transactionID = words.1
        guard self.offset8 >= Self.minimumOffset8 else {
            throw WireError.invalidField(name: "offset8", value: UInt64(self.offset8))
        }
        guard self.len8 >= self.offset8 else { throw WireError.invalidField(name: "len8", value: UInt64(self.len8)) }
    }

    /// The two words of the wire form (see ``init(words:)``).
    @inlinable
    public var words: (UInt64, UInt64) {
        let word0 = UInt64(self.type.rawValue) | UInt64(self.offset8) << 16 | UInt64(self.len8) << 32
            | UInt64(self.flags.rawValue) << 48
        return (word0, self.transactionID)
    }

    // MARK: Derived lengths

    // offset8 and len8 are u16s: they widen to Int losslessly and × 8 cannot overflow.

    /// Bytes from the descriptor's start to the payload: `offset8 × 8`.
    @inlinable public var payloadOffset: Int { Int(self.offset8) * 8 }
    /// The packet's length, descriptor through padding, trailer excluded: `len8 × 8`.
    @inlinable public var totalLength: Int { Int(self.len8) * 8 }
    /// Payload bytes, the sender's zero padding included: `(len8 − offset8) × 8`. Negative only
    /// for a hand-built descriptor that a parser would reject.
    @inlinable public var payloadLength: Int { self.totalLength - self.payloadOffset }
    /// Ring bytes the packet consumes, trailer included: `len8 × 8 + 8`.
    @inlinable public var ringBytes: Int { self.totalLength + Self.trailerSize }

    // MARK: Strict validation

    /// OpenVMM's host-side checks beyond the basic ones (02 §9.3): only the four exchanged
    /// types, no flag bit other than bit 0, and `offset8 ≥ 3` for transfer-page and GPA-direct
    /// packets (their extension header needs 8 bytes).
    /// - Throws: ``WireError/unknownType(_:)`` for another type;
    ///   ``WireError/invalidField(name:value:)`` named "packet flags" or "offset8".
    public func validateStrictly() throws(WireError) {
        guard self.type.isExchanged else { throw WireError.unknownType(UInt32(self.type.rawValue)) }
        guard self.flags.isSubset(of: .known) else {
            throw WireError.invalidField(name: "packet flags", value: UInt64(self.flags.rawValue))
        }
        let hasExtension = self.type == .dataUsingTransferPages || self.type == .dataUsingGpaDirect
        if hasExtension, self.offset8 < 3 {
            throw WireError.invalidField(name: "offset8", value: UInt64(self.offset8))
        }
    }

    /// Whether ``validateStrictly()`` would accept this descriptor.
    public var isStrictlyValid: Bool {
        do {
            try self.validateStrictly()
            return true
        } catch {
            return false
        }
    }
}
