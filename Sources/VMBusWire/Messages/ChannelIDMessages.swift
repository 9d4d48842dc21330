// Messages whose only field is a channel id (relid): they share one layout, `u32 @8`.

/// RESCIND_CHANNELOFFER (2), host → guest: the channel is being revoked (04 §3.2). 12 bytes.
public struct RescindChannelOffer: Hashable, Sendable {
    /// Size on the wire, the 8-byte header included.
    public static let wireSize = 12
    /// The channel being rescinded.
    public var childRelID: UInt32
    /// A rescind of `childRelID`.
    public init(childRelID: UInt32) { self.childRelID = childRelID }
    /// Reads the body after the 8-byte header (its 4-byte relid).
    public init(from reader: inout WireReader) throws(WireError) { self.childRelID = try reader.readUInt32() }
    /// Writes the body after the 8-byte header (its 4-byte relid).
    public func write(to writer: inout WireWriter) { writer.writeUInt32(self.childRelID) }
}

/// CLOSECHANNEL (7), guest → host: stop using the rings (04 §3.6). 12 bytes; no reply exists.
public struct CloseChannel: Hashable, Sendable {
    /// Size on the wire, the 8-byte header included.
    public static let wireSize = 12
    /// The channel to close.
    public var childRelID: UInt32
    /// A close of `childRelID`.
    public init(childRelID: UInt32) { self.childRelID = childRelID }
    /// Reads the body after the 8-byte header (its 4-byte relid).
    public init(from reader: inout WireReader) throws(WireError) { self.childRelID = try reader.readUInt32() }
    /// Writes the body after the 8-byte header (its 4-byte relid).
    public func write(to writer: inout WireWriter) { writer.writeUInt32(self.childRelID) }
}

/// RELID_RELEASED (13), guest → host: the guest forgot a rescinded channel; the host may now
/// reuse the relid (04 §3.12). 12 bytes.
public struct RelIDReleased: Hashable, Sendable {
    /// Size on the wire, the 8-byte header included.
    public static let wireSize = 12
    /// The rescinded channel the guest has let go of.
    public var childRelID: UInt32
    /// A release of `childRelID`.
    public init(childRelID: UInt32) { self.childRelID = childRelID }
    /// Reads the body after the 8-byte header (its 4-byte relid).
    public init(from reader: inout WireReader) throws(WireError) { self.childRelID = try reader.readUInt32() }
    /// Writes the body after the 8-byte header (its 4-byte relid).
    public func write(to writer: inout WireWriter) { writer.writeUInt32(self.childRelID) }
}

/// GPADL_TORNDOWN (12), host → guest: a GPADL is released (04 §3.11). 12 bytes; carries no relid.
public struct GpadlTorndown: Hashable, Sendable {
    /// Size on the wire, the 8-byte header included.
    public static let wireSize = 12
    /// The handle of the GPADL released (the guest's, from its GpadlHeader).
    public var gpadl: UInt32
    /// The answer to a teardown of `gpadl`.
    public init(gpadl: UInt32) { self.gpadl = gpadl }
    /// Reads the body after the 8-byte header (its 4-byte handle).
    public init(from reader: inout WireReader) throws(WireError) { self.gpadl = try reader.readUInt32() }
    /// Writes the body after the 8-byte header (its 4-byte handle).
    public func write(to writer: inout WireWriter) { writer.writeUInt32(self.gpadl) }
}

/// CLOSE_RESERVED_RESPONSE (20), host → guest (04 §3.16). 12 bytes.
public struct CloseReservedResponse: Hashable, Sendable {
    /// Size on the wire, the 8-byte header included.
    public static let wireSize = 12
    /// The reserved channel that was closed.
    public var channelID: UInt32
    /// The answer to the close of `channelID`.
    public init(channelID: UInt32) { self.channelID = channelID }
    /// Reads the body after the 8-byte header (its 4-byte channel id).
    public init(from reader: inout WireReader) throws(WireError) { self.channelID = try reader.readUInt32() }
    /// Writes the body after the 8-byte header (its 4-byte channel id).
    public func write(to writer: inout WireWriter) { writer.writeUInt32(self.channelID) }
}
