/// MODIFYCHANNEL (22), guest → host, 4.1+: move a channel's interrupts to another VP
/// (04 §3.18). 16 bytes. Only for open channels; 0xFFFFFFFF is not an allowed target.
public struct ModifyChannel: Hashable, Sendable {
    public static let wireSize = 16
    public var childRelID: UInt32
    public var targetVP: UInt32

    public init(childRelID: UInt32, targetVP: UInt32) {
        self.childRelID = childRelID
        self.targetVP = targetVP
    }

    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize - 8)
        self.childRelID = try reader.readUInt32()
        self.targetVP = try reader.readUInt32()
    }

    public func write(to writer: inout WireWriter) {
        writer.writeUInt32(self.childRelID)
        writer.writeUInt32(self.targetVP)
    }
}

/// MODIFYCHANNEL_RESPONSE (24), host → guest, 5.3+ (04 §3.20). 16 bytes.
public struct ModifyChannelResponse: Hashable, Sendable {
    public static let wireSize = 16
    public var childRelID: UInt32
    /// 0 = success; Linux maps non-zero to −EAGAIN.
    public var status: NTStatus

    public init(childRelID: UInt32, status: NTStatus) {
        self.childRelID = childRelID
        self.status = status
    }

    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize - 8)
        self.childRelID = try reader.readUInt32()
        self.status = NTStatus(rawValue: try reader.readUInt32())
    }

    public func write(to writer: inout WireWriter) {
        writer.writeUInt32(self.childRelID)
        writer.writeUInt32(self.status.rawValue)
    }
}

/// MODIFY_CONNECTION (25), guest → host, 6.0 + feature `modifyConnection`: replace the
/// monitor pages (04 §3.21). 24 bytes; both zero or both non-zero.
public struct ModifyConnection: Hashable, Sendable {
    public static let wireSize = 24
    public var parentToChildMonitorPage: UInt64
    public var childToParentMonitorPage: UInt64

    public init(parentToChildMonitorPage: UInt64, childToParentMonitorPage: UInt64) {
        self.parentToChildMonitorPage = parentToChildMonitorPage
        self.childToParentMonitorPage = childToParentMonitorPage
    }

    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize - 8)
        self.parentToChildMonitorPage = try reader.readUInt64()
        self.childToParentMonitorPage = try reader.readUInt64()
    }

    public func write(to writer: inout WireWriter) {
        writer.writeUInt64(self.parentToChildMonitorPage)
        writer.writeUInt64(self.childToParentMonitorPage)
    }
}

/// MODIFY_CONNECTION_RESPONSE (26), host → guest (04 §3.21). 9 bytes: one state byte.
public struct ModifyConnectionResponse: Hashable, Sendable {
    public static let wireSize = 9
    public var connectionState: ConnectionState

    public init(connectionState: ConnectionState) { self.connectionState = connectionState }

    public init(from reader: inout WireReader) throws(WireError) {
        self.connectionState = ConnectionState(rawValue: try reader.readUInt8())
    }

    public func write(to writer: inout WireWriter) {
        writer.writeUInt8(self.connectionState.rawValue)
    }
}
