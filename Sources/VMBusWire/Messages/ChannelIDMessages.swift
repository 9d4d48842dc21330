// Messages whose only field is a channel id (relid): they share one layout, `u32 @8`.

/// RESCIND_CHANNELOFFER (2), host → guest: the channel is being revoked (04 §3.2). 12 bytes.
public struct RescindChannelOffer: Hashable, Sendable {
    public static let wireSize = 12
    public var childRelID: UInt32
    public init(childRelID: UInt32) { self.childRelID = childRelID }
    public init(from reader: inout WireReader) throws(WireError) { self.childRelID = try reader.readUInt32() }
    public func write(to writer: inout WireWriter) { writer.writeUInt32(self.childRelID) }
}

/// CLOSECHANNEL (7), guest → host: stop using the rings (04 §3.6). 12 bytes; no reply exists.
public struct CloseChannel: Hashable, Sendable {
    public static let wireSize = 12
    public var childRelID: UInt32
    public init(childRelID: UInt32) { self.childRelID = childRelID }
    public init(from reader: inout WireReader) throws(WireError) { self.childRelID = try reader.readUInt32() }
    public func write(to writer: inout WireWriter) { writer.writeUInt32(self.childRelID) }
}

/// RELID_RELEASED (13), guest → host: the guest forgot a rescinded channel; the host may now
/// reuse the relid (04 §3.12). 12 bytes.
public struct RelIDReleased: Hashable, Sendable {
    public static let wireSize = 12
    public var childRelID: UInt32
    public init(childRelID: UInt32) { self.childRelID = childRelID }
    public init(from reader: inout WireReader) throws(WireError) { self.childRelID = try reader.readUInt32() }
    public func write(to writer: inout WireWriter) { writer.writeUInt32(self.childRelID) }
}

/// GPADL_TORNDOWN (12), host → guest: a GPADL is released (04 §3.11). 12 bytes; carries no relid.
public struct GpadlTorndown: Hashable, Sendable {
    public static let wireSize = 12
    public var gpadl: UInt32
    public init(gpadl: UInt32) { self.gpadl = gpadl }
    public init(from reader: inout WireReader) throws(WireError) { self.gpadl = try reader.readUInt32() }
    public func write(to writer: inout WireWriter) { writer.writeUInt32(self.gpadl) }
}

/// CLOSE_RESERVED_RESPONSE (20), host → guest (04 §3.16). 12 bytes.
public struct CloseReservedResponse: Hashable, Sendable {
    public static let wireSize = 12
    public var channelID: UInt32
    public init(channelID: UInt32) { self.channelID = channelID }
    public init(from reader: inout WireReader) throws(WireError) { self.channelID = try reader.readUInt32() }
    public func write(to writer: inout WireWriter) { writer.writeUInt32(self.channelID) }
}
