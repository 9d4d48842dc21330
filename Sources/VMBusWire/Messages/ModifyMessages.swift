/// MODIFYCHANNEL (22), guest → host, 4.1+: move a channel's interrupts to another VP
/// (04 §3.18). 16 bytes. Only for open channels; 0xFFFFFFFF is not an allowed target.
public struct ModifyChannel: Hashable, Sendable {
    /// Size on the wire, the 8-byte header included.
    public static let wireSize = 16
    /// The open channel whose interrupts move.
    public var childRelID: UInt32
    /// The VP to interrupt from now on.
    public var targetVP: UInt32

    /// A move of `childRelID`'s interrupts to `targetVP`.
    public init(childRelID: UInt32, targetVP: UInt32) {
        self.childRelID = childRelID
        self.targetVP = targetVP
    }

    /// Reads the body after the 8-byte header.
    /// - Throws: ``WireError/truncated(needed:available:)`` below 8 bytes.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize - 8)
        self.childRelID = try reader.readUInt32()
        self.targetVP = try reader.readUInt32()
    }

    /// Writes the body after the 8-byte header (8 bytes).
    public func write(to writer: inout WireWriter) {
        writer.writeUInt32(self.childRelID)
        writer.writeUInt32(self.targetVP)
    }
}

/// MODIFYCHANNEL_RESPONSE (24), host → guest, 5.3+ (04 §3.20). 16 bytes.
public struct ModifyChannelResponse: Hashable, Sendable {
    /// Size on the wire, the 8-byte header included.
    public static let wireSize = 16
    /// The channel of the ModifyChannel being answered.
    public var childRelID: UInt32
    /// 0 = success; Linux maps non-zero to −EAGAIN.
    public var status: NTStatus

    /// The answer to the ModifyChannel of `childRelID`.
    public init(childRelID: UInt32, status: NTStatus) {
        self.childRelID = childRelID
        self.status = status
    }

    /// Reads the body after the 8-byte header.
    /// - Throws: ``WireError/truncated(needed:available:)`` below 8 bytes.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize - 8)
        self.childRelID = try reader.readUInt32()
        self.status = NTStatus(rawValue: try reader.readUInt32())
    }

    /// Writes the body after the 8-byte header (8 bytes).
    public func write(to writer: inout WireWriter) {
        writer.writeUInt32(self.childRelID)
        writer.writeUInt32(self.status.rawValue)
    }
}

/// MODIFY_CONNECTION (25), guest → host, 6.0 + feature `modifyConnection`: replace the
/// monitor pages (04 §3.21). 24 bytes; both zero or both non-zero.
public struct ModifyConnection: Hashable, Sendable {
    /// Size on the wire, the 8-byte header included.
    public static let wireSize = 24
    /// GPA of the new parent → child monitor page (0 with the other: none).
    public var parentToChildMonitorPage: UInt64
    /// GPA of the new child → parent monitor page (0 with the other: none).
    public var childToParentMonitorPage: UInt64

    /// A request for these monitor pages.
    public init(parentToChildMonitorPage: UInt64, childToParentMonitorPage: UInt64) {
        self.parentToChildMonitorPage = parentToChildMonitorPage
        self.childToParentMonitorPage = childToParentMonitorPage
    }

    /// Reads the body after the 8-byte header.
    /// - Throws: ``WireError/truncated(needed:available:)`` below 16 bytes.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize - 8)
        self.parentToChildMonitorPage = try reader.readUInt64()
        self.childToParentMonitorPage = try reader.readUInt64()
    }

    /// Writes the body after the 8-byte header (16 bytes).
    public func write(to writer: inout WireWriter) {
        writer.writeUInt64(self.parentToChildMonitorPage)
        writer.writeUInt64(self.childToParentMonitorPage)
    }
}

/// MODIFY_CONNECTION_RESPONSE (26), host → guest (04 §3.21). 9 bytes: one state byte.
public struct ModifyConnectionResponse: Hashable, Sendable {
    /// Size on the wire, the 8-byte header included.
    public static let wireSize = 9
    /// Whether the host took the new pages (``ConnectionState/successful``) or not.
    public var connectionState: ConnectionState

    /// An answer with `connectionState`.
    public init(connectionState: ConnectionState) { self.connectionState = connectionState }

    /// Reads the body after the 8-byte header (its state byte).
    public init(from reader: inout WireReader) throws(WireError) {
        self.connectionState = ConnectionState(rawValue: try reader.readUInt8())
    }

    /// Writes the body after the 8-byte header (its state byte).
    public func write(to writer: inout WireWriter) {
        writer.writeUInt8(self.connectionState.rawValue)
    }
}
