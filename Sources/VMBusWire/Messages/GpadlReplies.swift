/// GPADL_CREATED (10), host → guest (04 §3.9). 20 bytes. Matched by (relid, gpadl).
public struct GpadlCreated: Hashable, Sendable {
    public static let wireSize = 20
    public var childRelID: UInt32
    public var gpadl: UInt32
    /// 0 = success; OpenVMM fails with 0x8000FFFF.
    public var status: NTStatus

    public init(childRelID: UInt32, gpadl: UInt32, status: NTStatus) {
        self.childRelID = childRelID
        self.gpadl = gpadl
        self.status = status
    }

    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize - 8)
        self.childRelID = try reader.readUInt32()
        self.gpadl = try reader.readUInt32()
        self.status = NTStatus(rawValue: try reader.readUInt32())
    }

    public func write(to writer: inout WireWriter) {
        writer.writeUInt32(self.childRelID)
        writer.writeUInt32(self.gpadl)
        writer.writeUInt32(self.status.rawValue)
    }
}

/// GPADL_TEARDOWN (11), guest → host (04 §3.10). 16 bytes.
public struct GpadlTeardown: Hashable, Sendable {
    public static let wireSize = 16
    public var childRelID: UInt32
    public var gpadl: UInt32

    public init(childRelID: UInt32, gpadl: UInt32) {
        self.childRelID = childRelID
        self.gpadl = gpadl
    }

    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize - 8)
        self.childRelID = try reader.readUInt32()
        self.gpadl = try reader.readUInt32()
    }

    public func write(to writer: inout WireWriter) {
        writer.writeUInt32(self.childRelID)
        writer.writeUInt32(self.gpadl)
    }
}
