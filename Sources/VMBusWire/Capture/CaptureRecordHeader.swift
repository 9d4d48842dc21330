/// What a capture record holds (docs/CAPTURE.md). An open set: a reader shows a kind it does
/// not know by number.
public struct CaptureRecordKind: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// A spec 09 substrate frame (header and body) other than MESSAGE.
    public static let substrateFrame = Self(rawValue: 1)
    /// A VMBus channel message (spec 04), its 8-byte header included.
    public static let channelMessage = Self(rawValue: 2)
    /// A ring packet (spec 03), descriptor first, without the ring's 8-byte trailer.
    public static let ringPacket = Self(rawValue: 3)
    /// A doorbell: one side signalled the other for a channel. No data.
    public static let doorbell = Self(rawValue: 4)
    /// A channel's rings were attached: u32 outgoing ring bytes, u32 incoming ring bytes.
    public static let channelOpen = Self(rawValue: 5)
    /// A channel stopped: u32 close reason (``CaptureCloseReason``).
    public static let channelClose = Self(rawValue: 6)
    /// Records the capture lost because its queue was full: u64 lost since the previous
    /// drops record of this connection, u64 lost on this connection in all.
    public static let drops = Self(rawValue: 7)
    /// Bytes a device placed in, or took from, guest memory that a packet only points at (a
    /// NIC's RNDIS message in a send section or a receive slot): u32 GPADL handle, u32 zero,
    /// u64 byte offset into that GPADL (or, with handle 0, the guest physical address), then
    /// the bytes. Recorded just before the packet that names them is sent, or when the
    /// receiver reads them.
    public static let bufferData = Self(rawValue: 8)
    /// An operator's request to the host that starts traffic no guest asked for (a KVP set,
    /// a file copy, a backup, a shutdown: `vmbus ctl`): u16 count, then count strings (u16
    /// length, UTF-8) — the command and its parameters — then the bytes of the host file the
    /// request reads, if any. A replay makes the same request at the same point.
    public static let operatorRequest = Self(rawValue: 9)

    public var description: String {
        switch self {
        case .substrateFrame: return "frame"
        case .channelMessage: return "message"
        case .ringPacket: return "packet"
        case .doorbell: return "doorbell"
        case .channelOpen: return "open"
        case .channelClose: return "close"
        case .drops: return "drops"
        case .bufferData: return "buffer"
        case .operatorRequest: return "operator"
        default: return "kind \(self.rawValue)"
        }
    }
}

/// Which way a captured record travelled.
public struct CaptureDirection: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Sent by the host, received by the guest.
    public static let hostToGuest = Self(rawValue: 0)
    /// Sent by the guest, received by the host.
    public static let guestToHost = Self(rawValue: 1)

    public var description: String {
        switch self {
        case .hostToGuest: return "host→guest"
        case .guestToHost: return "guest→host"
        default: return "direction \(self.rawValue)"
        }
    }
}

/// Which side saw (and recorded) a record: a capture may hold both views of one bus.
public struct CaptureObserver: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Recorded by the host.
    public static let host = Self(rawValue: 0)
    /// Recorded by the guest.
    public static let guest = Self(rawValue: 1)

    public var description: String {
        switch self {
        case .host: return "host"
        case .guest: return "guest"
        default: return "observer \(self.rawValue)"
        }
    }
}

/// Flags of a capture record.
public struct CaptureRecordFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// The data was cut to the capture's snap length: ``CaptureRecordHeader/originalLength``
    /// is more than what follows the header.
    public static let truncated = Self(rawValue: 1 << 0)
}

/// Why a channel stopped, as a ``CaptureRecordKind/channelClose`` record names it.
public struct CaptureCloseReason: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// This side closed it.
    public static let closedLocally = Self(rawValue: 0)
    /// The peer closed it (CloseChannel, or the peer ended its side).
    public static let closedByPeer = Self(rawValue: 1)
    /// The host rescinded it.
    public static let rescinded = Self(rawValue: 2)
    /// The peer wrote an impossible ring index or descriptor.
    public static let ringCorrupted = Self(rawValue: 3)
    /// The connection to the peer went away.
    public static let connectionLost = Self(rawValue: 4)

    public var description: String {
        switch self {
        case .closedLocally: return "closed locally"
        case .closedByPeer: return "closed by peer"
        case .rescinded: return "rescinded"
        case .ringCorrupted: return "ring corrupted"
        case .connectionLost: return "connection lost"
        default: return "reason \(self.rawValue)"
        }
    }
}

/// The fixed header at the start of every capture record's data (docs/CAPTURE.md), followed
/// by the record's captured bytes. Little-endian, 24 bytes:
///
/// | Offset | Size | Field |
/// |---|---|---|
/// | 0 | 1 | version (1) |
/// | 1 | 1 | kind |
/// | 2 | 1 | direction |
/// | 3 | 1 | observer |
/// | 4 | 2 | flags |
/// | 6 | 2 | reserved (0) |
/// | 8 | 4 | connection |
/// | 12 | 4 | relid |
/// | 16 | 4 | port |
/// | 20 | 4 | original length |
public struct CaptureRecordHeader: Hashable, Sendable {
    /// The only version this library writes and reads.
    public static let version: UInt8 = 1
    /// Size of the header on the wire.
    public static let wireSize = 24

    /// What the record holds.
    public var kind: CaptureRecordKind
    /// Which way it travelled.
    public var direction: CaptureDirection
    /// Which side recorded it.
    public var observer: CaptureObserver
    /// Record flags: whether the data was cut to the snap length.
    public var flags: CaptureRecordFlags
    /// The capture's number for the guest connection (one pcapng interface each).
    public var connection: UInt32
    /// The channel, or 0 for records that belong to no channel.
    public var relid: UInt32
    /// Channel messages: the connection id the guest posted to, or the SINT the host posted
    /// to (0 when the recording side does not know it). Substrate frames: the frame kind.
    /// Otherwise 0.
    public var port: UInt32
    /// Bytes of the data before the snap length cut it.
    public var originalLength: UInt32

    /// A header; the fields are as described on the properties.
    public init(
        kind: CaptureRecordKind, direction: CaptureDirection, observer: CaptureObserver, flags: CaptureRecordFlags = [],
        connection: UInt32, relid: UInt32 = 0, port: UInt32 = 0, originalLength: UInt32
    ) {
        self.kind = kind
        self.direction = direction
        self.observer = observer
        self.flags = flags
        self.connection = connection
        self.relid = relid
        self.port = port
        self.originalLength = originalLength
    }

    /// Reads a header; any version but 1 and any non-zero reserved field are refused.
    /// - Throws: ``WireError/truncated(needed:available:)``, ``WireError/invalidField(name:value:)``.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize)
        let version = try reader.readUInt8()
        guard version == Self.version else { throw WireError.invalidField(name: "capture version", value: UInt64(version)) }
        self.kind = CaptureRecordKind(rawValue: try reader.readUInt8())
        self.direction = CaptureDirection(rawValue: try reader.readUInt8())
        self.observer = CaptureObserver(rawValue: try reader.readUInt8())
        self.flags = CaptureRecordFlags(rawValue: try reader.readUInt16())
        let reserved = try reader.readUInt16()
        guard reserved == 0 else { throw WireError.invalidField(name: "capture reserved", value: UInt64(reserved)) }
        self.connection = try reader.readUInt32()
        self.relid = try reader.readUInt32()
        self.port = try reader.readUInt32()
        self.originalLength = try reader.readUInt32()
    }

    /// Writes the 24 bytes, version 1 and a zero reserved field included.
    public func write(to writer: inout WireWriter) {
        writer.writeUInt8(Self.version)
        writer.writeUInt8(self.kind.rawValue)
        writer.writeUInt8(self.direction.rawValue)
        writer.writeUInt8(self.observer.rawValue)
        writer.writeUInt16(self.flags.rawValue)
        writer.writeUInt16(0)
        writer.writeUInt32(self.connection)
        writer.writeUInt32(self.relid)
        writer.writeUInt32(self.port)
        writer.writeUInt32(self.originalLength)
    }
}
