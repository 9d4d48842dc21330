/// GPADL_CREATED (10), host → guest (04 §3.9). 20 bytes. Matched by (relid, gpadl).
public struct GpadlCreated: Hashable, Sendable {
    /// Size on the wire, the 8-byte header included.
    public static let wireSize = 20
    /// The channel the GPADL was created for.
    public var childRelID: UInt32
    /// The GPADL's handle, as the guest chose it in GpadlHeader.
    public var gpadl: UInt32
    /// 0 = success; OpenVMM fails with 0x8000FFFF.
    public var status: NTStatus

    /// The answer to the GpadlHeader of `gpadl` on `childRelID`.
    public init(childRelID: UInt32, gpadl: UInt32, status: NTStatus) {
        self.childRelID = childRelID
        self.gpadl = gpadl
        self.status = status
    }

    /// Reads the body after the 8-byte header.
    /// - Throws: ``WireError/truncated(needed:available:)`` below 12 bytes.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize - 8)
        self.childRelID = try reader.readUInt32()
        self.gpadl = try reader.readUInt32()
        self.status = NTStatus(rawValue: try reader.readUInt32())
    }

    /// Writes the body after the 8-byte header (12 bytes).
    public func write(to writer: inout WireWriter) {
        writer.writeUInt32(self.childRelID)
        writer.writeUInt32(self.gpadl)
        writer.writeUInt32(self.status.rawValue)
    }
}

/// GPADL_TEARDOWN (11), guest → host (04 §3.10). 16 bytes.
public struct GpadlTeardown: Hashable, Sendable {
    /// Size on the wire, the 8-byte header included.
    public static let wireSize = 16
    /// The channel the GPADL belongs to.
    public var childRelID: UInt32
    /// The handle of the GPADL to release.
    public var gpadl: UInt32

    /// A teardown of `gpadl`, created for `childRelID`.
    public init(childRelID: UInt32, gpadl: UInt32) {
        self.childRelID = childRelID
        self.gpadl = gpadl
    }

    /// Reads the body after the 8-byte header.
    /// - Throws: ``WireError/truncated(needed:available:)`` below 8 bytes.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize - 8)
        self.childRelID = try reader.readUInt32()
        self.gpadl = try reader.readUInt32()
    }

    /// Writes the body after the 8-byte header (8 bytes).
    public func write(to writer: inout WireWriter) {
        writer.writeUInt32(self.childRelID)
        writer.writeUInt32(self.gpadl)
    }
}
