/// The 120-byte user-defined area of an offer (offer offset 60) as pipe and hvsock offers lay
/// it out (04 §3.1.2). Area byte `n` is offer byte `60 + n`.
enum OfferArea {
    /// Bytes of the area (`MAX_USER_DEFINED_BYTES`).
    static let size = 120

    /// A reader over exactly one area.
    /// - Throws: ``WireError/truncated(needed:available:)`` for fewer than 120 bytes;
    ///   ``WireError/trailingBytes(count:)`` for more.
    static func reader(_ area: ArraySlice<UInt8>) throws(WireError) -> WireReader {
        let reader = WireReader(area)
        try reader.require(Self.size)
        if area.count > Self.size { throw WireError.trailingBytes(count: area.count - Self.size) }
        return reader
    }
}

/// The pipe parameters at the start of a pipe offer's user-defined area (offer flag 0x10;
/// 04 §3.1.2): `pipe_mode` u32 @0 (offer @60), then 116 bytes (`MAX_PIPE_USER_DEFINED_BYTES`).
public struct PipeOfferParameters: Hashable, Sendable {
    /// `VMBUS_PIPE_TYPE_BYTE` (0): a stream whose packet boundaries mean nothing (hvsock).
    public static let byteMode: UInt32 = 0
    /// `VMBUS_PIPE_TYPE_MESSAGE` (4): one message per packet (integration services).
    public static let messageMode: UInt32 = 4
    /// Bytes of the whole area (`MAX_USER_DEFINED_BYTES`), the unit both structs read and write.
    public static let areaSize = OfferArea.size
    /// Bytes after `pipe_mode` (`MAX_PIPE_USER_DEFINED_BYTES`).
    public static let userDefinedSize = 116

    /// `pipe_mode`: ``byteMode``, ``messageMode`` or any other value as sent.
    public var pipeMode: UInt32
    /// The bytes after `pipe_mode`: 116 when read; shorter values are zero-filled when written.
    /// OpenVMM splits them into 112 provider bytes and a `PipeFlags` u32 (see ``openVMMPipeFlags``).
    public var userDefined: [UInt8]

    /// Parameters; `userDefined` may be shorter than 116 bytes.
    public init(pipeMode: UInt32, userDefined: [UInt8] = []) {
        self.pipeMode = pipeMode
        self.userDefined = userDefined
    }

    /// Reads one 120-byte area.
    /// - Throws: ``WireError/truncated(needed:available:)`` for fewer than 120 bytes.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(OfferArea.size)
        self.pipeMode = try reader.readUInt32()
        self.userDefined = Array(try reader.readBytes(Self.userDefinedSize))
    }

    /// Reads an area given as exactly 120 bytes.
    /// - Throws: ``WireError/truncated(needed:available:)`` or ``WireError/trailingBytes(count:)``
    ///   unless `area` holds exactly 120 bytes.
    public init(area: ArraySlice<UInt8>) throws(WireError) {
        var reader = try OfferArea.reader(area)
        try self.init(from: &reader)
    }

    /// Reads the parameters from an offer's area.
    public init(_ area: UserDefinedBytes) {
        // UserDefinedBytes always holds exactly 120 bytes, so this cannot fail; the fallback
        // only keeps the initializer total.
        self = (try? Self(area: area.bytes[...])) ?? Self(pipeMode: area.pipeMode)
    }

    /// Appends the 120-byte area.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` if `userDefined` exceeds 116 bytes.
    public func write(to writer: inout WireWriter) throws(WireError) {
        try WireError.check("pipe user-defined bytes", self.userDefined.count, limit: Self.userDefinedSize)
        writer.writeUInt32(self.pipeMode)
        writer.writeFixed(self.userDefined, size: Self.userDefinedSize)
    }

    /// The 120 area bytes.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` if `userDefined` exceeds 116 bytes.
    public func areaBytes() throws(WireError) -> [UInt8] {
        var writer = WireWriter(capacity: OfferArea.size)
        try self.write(to: &writer)
        return writer.bytes
    }

    /// The area as the offer's ``UserDefinedBytes``.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` if `userDefined` exceeds 116 bytes.
    public func area() throws(WireError) -> UserDefinedBytes {
        try UserDefinedBytes(try self.areaBytes())
    }

    /// OpenVMM's `PipeFlags` u32 at area offset 116 (offer @176; bit 0: GPA-direct capable),
    /// or 0 if `userDefined` is too short to hold it.
    public var openVMMPipeFlags: UInt32 {
        guard self.userDefined.count >= Self.userDefinedSize else { return 0 }
        var reader = WireReader(self.userDefined[(Self.userDefinedSize - 4)...])
        return (try? reader.readUInt32()) ?? 0
    }
}

/// The hvsock parameters of an hvsock offer's user-defined area (flags 0x2011; 04 §3.1.2,
/// 07 §3).
///
/// | Area offset | Offer offset | Size | Field |
/// |---|---|---|---|
/// | 0 | 60 | 4 | `pipe_mode` (0, byte mode) |
/// | 4 | 64 | 1 | `is_for_guest_accept` |
/// | 5 | 65 | 1 | `is_for_guest_container` |
/// | 6 | 66 | 4 | `version` (unaligned; 0 pre-RS5, 1 RS5) |
/// | 10 | 70 | 16 | `silo_id` (unaligned GUID) |
/// | 26 | 86 | 2 | padding |
///
/// Linux reads only byte 4. The flag bytes are read as Linux tests them (non-zero is true) and
/// written as 0 or 1; the padding and bytes 28–119 are written as zeros and ignored when read.
public struct HvSockOfferParameters: Hashable, Sendable {
    /// Area bytes the hvsock fields occupy, padding included.
    public static let usedSize = 28

    /// `pipe_mode` as sent (hvsock offers use ``PipeOfferParameters/byteMode``).
    public var pipeMode: UInt32
    /// Offer offset 64: the host is connecting to a guest listener (07 §3.2) rather than
    /// answering the guest's TL connect (07 §3.1).
    public var isForGuestAccept: Bool
    /// Offer offset 65.
    public var isForGuestContainer: Bool
    /// Offer offset 66: 0 before RS5, 1 from RS5.
    public var version: UInt32
    /// Offer offset 70.
    public var siloID: GUID

    /// Parameters; byte mode and RS5 layout unless told otherwise.
    public init(
        pipeMode: UInt32 = PipeOfferParameters.byteMode, isForGuestAccept: Bool, isForGuestContainer: Bool = false,
        version: UInt32 = 1, siloID: GUID = .zero
    ) {
        self.pipeMode = pipeMode
        self.isForGuestAccept = isForGuestAccept
        self.isForGuestContainer = isForGuestContainer
        self.version = version
        self.siloID = siloID
    }

    /// Reads one 120-byte area.
    /// - Throws: ``WireError/truncated(needed:available:)`` for fewer than 120 bytes.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(OfferArea.size)
        self.pipeMode = try reader.readUInt32()
        self.isForGuestAccept = try reader.readUInt8() != 0
        self.isForGuestContainer = try reader.readUInt8() != 0
        self.version = try reader.readUInt32()
        self.siloID = try reader.readGUID()
        try reader.skip(OfferArea.size - 26)
    }

    /// Reads an area given as exactly 120 bytes.
    /// - Throws: ``WireError/truncated(needed:available:)`` or ``WireError/trailingBytes(count:)``
    ///   unless `area` holds exactly 120 bytes.
    public init(area: ArraySlice<UInt8>) throws(WireError) {
        var reader = try OfferArea.reader(area)
        try self.init(from: &reader)
    }

    /// Reads the parameters from an offer's area.
    public init(_ area: UserDefinedBytes) {
        // UserDefinedBytes always holds exactly 120 bytes, so this cannot fail; the fallback
        // only keeps the initializer total.
        self = (try? Self(area: area.bytes[...])) ?? Self(isForGuestAccept: false)
    }

    /// Appends the 120-byte area.
    public func write(to writer: inout WireWriter) {
        writer.writeUInt32(self.pipeMode)
        writer.writeUInt8(self.isForGuestAccept ? 1 : 0)
        writer.writeUInt8(self.isForGuestContainer ? 1 : 0)
        writer.writeUInt32(self.version)
        writer.writeGUID(self.siloID)
        writer.writeZeros(OfferArea.size - 26)
    }

    /// The 120 area bytes.
    public var areaBytes: [UInt8] {
        var writer = WireWriter(capacity: OfferArea.size)
        self.write(to: &writer)
        return writer.bytes
    }

    /// The area as the offer's ``UserDefinedBytes``.
    public var area: UserDefinedBytes {
        // Always exactly 120 bytes, so the fallback is never taken.
        (try? UserDefinedBytes(self.areaBytes)) ?? UserDefinedBytes()
    }
}
