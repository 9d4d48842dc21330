/// The pipe parameters at the start of a pipe offer's user-defined area (04 §3.1.2).
public struct PipeOfferParameters: Hashable, Sendable {
    /// `VMBUS_PIPE_TYPE_BYTE`: a stream (hvsock).
    public static let byteMode: UInt32 = 0
    /// `VMBUS_PIPE_TYPE_MESSAGE`: one message per packet (integration services).
    public static let messageMode: UInt32 = 4

    /// Byte 0–3 of the area (offer offset 60).
    public var pipeMode: UInt32
    /// The 116 bytes that follow (`MAX_PIPE_USER_DEFINED_BYTES`); OpenVMM splits them into 112
    /// provider bytes and a `PipeFlags` u32 (bit 0: GPA-direct capable).
    public var userDefined: [UInt8]

    public init(pipeMode: UInt32, userDefined: [UInt8] = []) {
        self.pipeMode = pipeMode
        self.userDefined = userDefined
    }

    /// Reads the parameters from an offer's 120-byte area.
    public init(_ area: UserDefinedBytes) {
        var reader = WireReader(area.bytes)
        // The area is always 120 bytes, so these reads cannot run short.
        self.pipeMode = (try? reader.readUInt32()) ?? 0
        self.userDefined = Array(reader.readRemaining())
    }

    /// The 120-byte area.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` if `userDefined` exceeds 116 bytes.
    public func area() throws(WireError) -> UserDefinedBytes {
        var writer = WireWriter(capacity: UserDefinedBytes.size)
        writer.writeUInt32(self.pipeMode)
        writer.writeBytes(self.userDefined)
        return try UserDefinedBytes(writer.bytes)
    }
}

/// The hvsock parameters of an hvsock offer's user-defined area (04 §3.1.2, 07 §3).
///
/// Layout inside the 120-byte area: pipe mode u32 @0 (0, byte mode), `is_for_guest_accept` u8
/// @4, `is_for_guest_container` u8 @5, `version` u32 @6 (unaligned; 0 pre-RS5, 1 RS5),
/// `silo_id` GUID @10 (unaligned), 2 pad bytes @26. Linux reads only byte 4.
public struct HvSockOfferParameters: Hashable, Sendable {
    /// Offer offset 64: the host is connecting to a guest listener (07 §3.2).
    public var isForGuestAccept: Bool
    /// Offer offset 65.
    public var isForGuestContainer: Bool
    /// Offer offset 66: 0 before RS5, 1 from RS5.
    public var version: UInt32
    /// Offer offset 70.
    public var siloID: GUID

    public init(isForGuestAccept: Bool, isForGuestContainer: Bool = false, version: UInt32 = 1, siloID: GUID = .zero) {
        self.isForGuestAccept = isForGuestAccept
        self.isForGuestContainer = isForGuestContainer
        self.version = version
        self.siloID = siloID
    }

    /// Reads the parameters from an offer's 120-byte area (bytes other than 0 and 1 are read as
    /// flags: any non-zero byte means true, as Linux tests it).
    public init(_ area: UserDefinedBytes) {
        var reader = WireReader(area.bytes)
        // The area is always 120 bytes: the 30 bytes read here are always present.
        _ = try? reader.readUInt32()
        self.isForGuestAccept = ((try? reader.readUInt8()) ?? 0) != 0
        self.isForGuestContainer = ((try? reader.readUInt8()) ?? 0) != 0
        self.version = (try? reader.readUInt32()) ?? 0
        self.siloID = (try? reader.readGUID()) ?? .zero
    }

    /// The 120-byte area, pipe mode 0 (byte mode).
    public var area: UserDefinedBytes {
        var writer = WireWriter(capacity: UserDefinedBytes.size)
        writer.writeUInt32(PipeOfferParameters.byteMode)
        writer.writeUInt8(self.isForGuestAccept ? 1 : 0)
        writer.writeUInt8(self.isForGuestContainer ? 1 : 0)
        writer.writeUInt32(self.version)
        writer.writeGUID(self.siloID)
        // 28 bytes written: always fits the 120-byte area.
        return (try? UserDefinedBytes(writer.bytes)) ?? UserDefinedBytes()
    }
}
