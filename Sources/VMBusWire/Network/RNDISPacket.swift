/// The header of an RNDIS PACKET (11 §5.4): where the Ethernet frame and the per-packet info
/// lie inside the message. Reading it allocates nothing; every offset is checked against the
/// message, so a caller can slice the frame and the PPIs without further checks.
public struct RNDISPacketHeader: Hashable, Sendable {
    /// Header bytes: type, msg_len and the 36-byte body.
    public static let size = 44
    /// Where a frame starts when there are `ppiBytes` of PPI (offsets count from byte 8).
    public static func dataOffset(ppiBytes: Int) -> Int { 36 + ppiBytes }

    /// `msg_len`: the whole message, padding included.
    public var messageLength: Int
    /// The frame: its offset from the message start, and its length.
    public var frameOffset: Int
    /// The frame's length in bytes.
    public var frameLength: Int
    /// The PPIs: offset from the message start and length (0 when none).
    public var ppiOffset: Int
    /// The PPIs' total length in bytes.
    public var ppiLength: Int

    /// Reads and checks the header of the message at the start of `bytes`.
    /// - Throws: ``WireError`` when the message is not a PACKET, is shorter than its header or
    ///   than `msg_len`, has out-of-band data or a VC handle, or a frame or PPI area outside
    ///   the message; a zero-length frame is refused too (OpenVMM completes such a packet
    ///   with a failure).
    public init(parsing bytes: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(bytes)
        try reader.require(Self.size)
        let type = try reader.readUInt32()
        guard type == RNDISMessageType.packet.rawValue else { throw WireError.unknownType(type) }
        let length = try reader.readUInt32()
        guard length >= UInt32(Self.size), UInt64(length) <= UInt64(bytes.count) else {
            throw WireError.invalidField(name: "RNDIS PACKET msg_len", value: UInt64(length))
        }
        let dataOffset = try reader.readUInt32()
        let dataLength = try reader.readUInt32()
        let oobOffset = try reader.readUInt32()
        let oobLength = try reader.readUInt32()
        let oobCount = try reader.readUInt32()
        let ppiOffset = try reader.readUInt32()
        let ppiLength = try reader.readUInt32()
        let vcHandle = try reader.readUInt32()
        _ = oobOffset
        guard oobLength == 0, oobCount == 0 else {
            throw WireError.invalidField(name: "RNDIS out-of-band data", value: UInt64(oobLength))
        }
        guard vcHandle == 0 else { throw WireError.invalidField(name: "RNDIS VC handle", value: UInt64(vcHandle)) }
        // Offsets count from byte 8; all arithmetic in 64 bits, against msg_len.
        let end = UInt64(length)
        let frameStart = 8 + UInt64(dataOffset)
        guard dataOffset >= 36, dataLength > 0, frameStart + UInt64(dataLength) <= end else {
            throw WireError.invalidField(name: "RNDIS data offset/length", value: UInt64(dataOffset) << 32 | UInt64(dataLength))
        }
        var ppiStart = 8 + UInt64(ppiOffset)
        let ppiBytes = UInt64(ppiLength)
        if ppiBytes == 0 {
            ppiStart = 0
        } else {
            // A PPI is at least its 12-byte header.
            guard ppiOffset >= 36, ppiBytes >= 12, ppiStart + ppiBytes <= end else {
                throw WireError.invalidField(name: "RNDIS PPI offset/length", value: UInt64(ppiOffset) << 32 | UInt64(ppiLength))
            }
        }
        self.messageLength = Int(length)
        self.frameOffset = Int(frameStart)
        self.frameLength = Int(dataLength)
        self.ppiOffset = Int(ppiStart)
        self.ppiLength = Int(ppiBytes)
    }

    /// Writes a PACKET header for a frame of `frameLength` bytes that follows `ppis` directly
    /// (each 12 + 4 bytes), `padding` zero bytes counted in `msg_len` after the frame. Returns
    /// the header and PPI bytes; the caller appends the frame (and padding).
    public static func write(frameLength: Int, ppis: [PerPacketInfo] = [], padding: Int = 0, to writer: inout WireWriter) {
        let ppiBytes = ppis.count * PerPacketInfo.wireSize
        writer.writeUInt32(RNDISMessageType.packet.rawValue)
        writer.writeUInt32(UInt32(truncatingIfNeeded: Self.size + ppiBytes + frameLength + padding))
        writer.writeUInt32(UInt32(truncatingIfNeeded: Self.dataOffset(ppiBytes: ppiBytes)))
        writer.writeUInt32(UInt32(truncatingIfNeeded: frameLength))
        writer.writeZeros(12)
        // PPI offset 36 even without PPIs (Linux's habit; readers ignore it when the length is 0).
        writer.writeUInt32(36)
        writer.writeUInt32(UInt32(ppiBytes))
        writer.writeZeros(8)
        for ppi in ppis { ppi.write(to: &writer) }
    }
}

/// Per-packet info types (11 §5.4). An open set.
public struct PerPacketInfoType: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// 0 TCPIP_CHKSUM_PKTINFO: ``ChecksumInfo`` — what to compute on send, what was verified on receive.
    public static let checksum = Self(rawValue: 0)
    /// 2 TCP_LARGESEND_PKTINFO: ``LSOInfo`` — segment this send.
    public static let lso = Self(rawValue: 2)
    /// 6 IEEE_8021Q_INFO: the frame's VLAN tag.
    public static let vlan = Self(rawValue: 6)
    /// 8 NBL_HASH_VALUE: the RSS hash of a received frame.
    public static let hashValue = Self(rawValue: 8)
    /// 9 NBL_HASH_INFO: which hash ``hashValue`` is.
    public static let hashInfo = Self(rawValue: 9)
    /// 0x80000001: Linux's internal packet-id PPI (`RNDIS_PKTINFO_ID` with the internal bit).
    public static let packetID = Self(rawValue: 0x8000_0001)
}

/// One per-packet info with a 4-byte value — every PPI Linux and OpenVMM exchange.
public struct PerPacketInfo: Hashable, Sendable {
    /// A 12-byte header and a u32.
    public static let wireSize = 16
    /// What the value means.
    public var type: PerPacketInfoType
    /// The 4-byte value.
    public var value: UInt32

    /// A PPI of `type` holding `value`.
    public init(type: PerPacketInfoType, value: UInt32) {
        self.type = type
        self.value = value
    }

    /// Writes the 16 bytes: size, type, offset of the value (12), value.
    public func write(to writer: inout WireWriter) {
        writer.writeUInt32(UInt32(Self.wireSize))
        writer.writeUInt32(self.type.rawValue)
        writer.writeUInt32(12)
        writer.writeUInt32(self.value)
    }

    /// Walks the PPIs in `bytes`, calling `body` with each type and its data. Every PPI must
    /// fit what is left and put its data inside itself; a broken one ends the walk with an
    /// error (Linux's walk spins on such input: never copy that).
    public static func walk(_ bytes: ArraySlice<UInt8>, _ body: (PerPacketInfoType, ArraySlice<UInt8>) -> Void) throws(WireError) {
        var rest = bytes
        while !rest.isEmpty {
            var reader = WireReader(rest)
            try reader.require(12)
            let size = try reader.readUInt32()
            let type = PerPacketInfoType(rawValue: try reader.readUInt32())
            let offset = try reader.readUInt32()
            guard size >= 12, UInt64(size) <= UInt64(rest.count), offset >= 12, offset <= size else {
                throw WireError.invalidField(name: "PPI size/offset", value: UInt64(size) << 32 | UInt64(offset))
            }
            let start = rest.startIndex
            body(type, rest[(start + Int(offset))..<(start + Int(size))])
            rest = rest[(start + Int(size))...]
        }
    }

    /// The u32 value of a PPI's data (`nil` if shorter than 4 bytes).
    public static func value(of data: ArraySlice<UInt8>) -> UInt32? {
        var reader = WireReader(data)
        return try? reader.readUInt32()
    }
}

/// Checksum PPI bits (11 §5.4).
public struct ChecksumInfo: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    // Transmit (guest → host).
    /// The packet is IPv4.
    public static let txIPv4 = Self(rawValue: 1 << 0)
    /// The packet is IPv6.
    public static let txIPv6 = Self(rawValue: 1 << 1)
    /// Compute the TCP checksum.
    public static let txTCP = Self(rawValue: 1 << 2)
    /// Compute the UDP checksum.
    public static let txUDP = Self(rawValue: 1 << 3)
    /// Compute the IPv4 header checksum.
    public static let txIPHeader = Self(rawValue: 1 << 4)
    /// The transport header's offset in a transmit checksum request (bits 16–25).
    public var transportOffset: Int { Int((self.rawValue >> 16) & 0x3FF) }

    // Receive (host → guest).
    /// The host checked the TCP checksum and it was wrong.
    public static let rxTCPFailed = Self(rawValue: 1 << 0)
    /// The host checked the UDP checksum and it was wrong.
    public static let rxUDPFailed = Self(rawValue: 1 << 1)
    /// The host checked the IPv4 header checksum and it was wrong.
    public static let rxIPFailed = Self(rawValue: 1 << 2)
    /// The host checked the TCP checksum and it was right.
    public static let rxTCPSucceeded = Self(rawValue: 1 << 3)
    /// The host checked the UDP checksum and it was right.
    public static let rxUDPSucceeded = Self(rawValue: 1 << 4)
    /// The host checked the IPv4 header checksum and it was right.
    public static let rxIPSucceeded = Self(rawValue: 1 << 5)
}

/// The LSOv2 PPI (11 §5.4): MSS, TCP header offset, IPv6.
public struct LSOInfo: Hashable, Sendable {
    /// The PPI's 4-byte value.
    public var rawValue: UInt32
    /// The value as sent.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// The maximum segment size (bits 0–19).
    public var mss: Int { Int(self.rawValue & 0xF_FFFF) }
    /// Where the TCP header starts in the frame (bits 20–29).
    public var tcpHeaderOffset: Int { Int((self.rawValue >> 20) & 0x3FF) }
    /// Whether the packet is IPv6 (bit 31).
    public var isIPv6: Bool { self.rawValue & (1 << 31) != 0 }
}
