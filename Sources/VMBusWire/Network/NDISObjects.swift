/// The NDIS objects of the network protocol's OIDs (11 §5.3, §6): each starts with
/// {u8 type, u8 revision, u16 size}.
public struct NDISObjectHeader: Hashable, Sendable {
    /// Which object follows (``offloadType``, ``rssCapabilitiesType``, …).
    public var type: UInt8
    /// The object's revision: which fields it has.
    public var revision: UInt8
    /// The object's size in bytes, this header included.
    public var size: UInt16

    /// A header with these fields.
    public init(type: UInt8, revision: UInt8, size: UInt16) {
        self.type = type
        self.revision = revision
        self.size = size
    }

    /// Reads the 4 bytes.
    /// - Throws: ``WireError/truncated(needed:available:)`` below 4 bytes.
    public init(from reader: inout WireReader) throws(WireError) {
        self.type = try reader.readUInt8()
        self.revision = try reader.readUInt8()
        self.size = try reader.readUInt16()
    }

    /// Writes the 4 bytes.
    public func write(to writer: inout WireWriter) {
        writer.writeUInt8(self.type)
        writer.writeUInt8(self.revision)
        writer.writeUInt16(self.size)
    }

    /// NDIS_OBJECT_TYPE_OFFLOAD (0xA7): ``NDISOffload``.
    public static let offloadType: UInt8 = 0xA7
    /// NDIS_OBJECT_TYPE_DEFAULT (0x80), as OID_TCP_OFFLOAD_PARAMETERS carries it.
    public static let offloadParametersType: UInt8 = 0x80
    /// NDIS_OBJECT_TYPE_RSS_CAPABILITIES (0x88): ``RSSCapabilities``.
    public static let rssCapabilitiesType: UInt8 = 0x88
    /// NDIS_OBJECT_TYPE_RSS_PARAMETERS (0x89): ``RSSParameters``.
    public static let rssParametersType: UInt8 = 0x89
}

/// NDIS_OFFLOAD (type 0xA7): what the host can offload, the answer to
/// OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES. Linux refuses the device unless the answer has type
/// 0xA7, revision ≥ 1 and a size of 112…156.
public struct NDISOffload: Hashable, Sendable {
    /// Transmit checksum flags for IPv4 and IPv6 (11 §5.3: 0x010 TCP, 0x040 UDP, 0x100 IPv4
    /// header, 0x004 TCP options, 0x001 IPv4 options / IPv6 extension headers).
    public var ipv4TransmitChecksum: UInt32 = 0
    /// Transmit checksum flags for IPv6 (the bits of ``ipv4TransmitChecksum``).
    public var ipv6TransmitChecksum: UInt32 = 0
    /// Receive checksum flags for IPv4: which checksums the host verifies.
    public var ipv4ReceiveChecksum: UInt32 = 0
    /// Receive checksum flags for IPv6.
    public var ipv6ReceiveChecksum: UInt32 = 0
    /// LSOv2 maximum sizes (0: no LSO).
    public var lsoIPv4MaximumSize: UInt32 = 0
    /// The largest IPv6 LSOv2 send, in bytes (0: no LSO).
    public var lsoIPv6MaximumSize: UInt32 = 0
    /// Receive segment coalescing over IPv4 and IPv6 (revision 3, offsets 144 and 145).
    public var rscIPv4 = false
    /// Whether the host coalesces IPv6 TCP segments (revision 3, offset 145).
    public var rscIPv6 = false

    /// No offloads at all.
    public init() {}

    /// Reads what a guest needs of a host's answer (11 §5.3): the checksum flags and the LSOv2
    /// sizes (an LSO size counts only with 802.3 encapsulation and, for IPv6, options 0x005,
    /// as Linux requires).
    /// - Throws: for a header that is not NDIS_OFFLOAD or an object shorter than revision 1's.
    public init(parsing bytes: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(bytes)
        let header = try NDISObjectHeader(from: &reader)
        guard header.type == NDISObjectHeader.offloadType else { throw WireError.invalidField(name: "NDIS object type", value: UInt64(header.type)) }
        guard bytes.count >= 112, Int(header.size) >= 112, Int(header.size) <= bytes.count else {
            throw WireError.truncated(needed: 112, available: bytes.count)
        }
        func word(_ at: Int) -> UInt32 {
            let base = bytes.startIndex + at
            return UInt32(bytes[base]) | UInt32(bytes[base + 1]) << 8 | UInt32(bytes[base + 2]) << 16 | UInt32(bytes[base + 3]) << 24
        }
        self.ipv4TransmitChecksum = word(8)
        self.ipv4ReceiveChecksum = word(16)
        self.ipv6TransmitChecksum = word(24)
        self.ipv6ReceiveChecksum = word(32)
        self.lsoIPv4MaximumSize = word(80) == 2 ? word(84) : 0
        self.lsoIPv6MaximumSize = word(92) == 2 && word(104) & 0x005 == 0x005 ? word(96) : 0
        if header.size >= 146 {
            self.rscIPv4 = bytes[bytes.startIndex + 144] != 0
            self.rscIPv6 = bytes[bytes.startIndex + 145] != 0
        }
    }

    /// The object at `revision` 1, 2 or 3 (112, 144, 156 bytes).
    public func encode(revision: UInt8) -> [UInt8] {
        let size = revision >= 3 ? 156 : revision == 2 ? 144 : 112
        var writer = WireWriter(capacity: size)
        NDISObjectHeader(type: NDISObjectHeader.offloadType, revision: max(1, min(revision, 3)), size: UInt16(size)).write(to: &writer)
        let encapsulation: UInt32 = 2  // 802.3
        for (flags, enabled) in [(self.ipv4TransmitChecksum, true), (self.ipv4ReceiveChecksum, true),
                                 (self.ipv6TransmitChecksum, true), (self.ipv6ReceiveChecksum, true)] {
            writer.writeUInt32(enabled ? encapsulation : 0)
            writer.writeUInt32(flags)
        }
        writer.writeZeros(80 - writer.count)  // LSOv1, IPsec v1
        writer.writeUInt32(self.lsoIPv4MaximumSize > 0 ? encapsulation : 0)
        writer.writeUInt32(self.lsoIPv4MaximumSize)
        writer.writeUInt32(self.lsoIPv4MaximumSize > 0 ? 2 : 0)
        writer.writeUInt32(self.lsoIPv6MaximumSize > 0 ? encapsulation : 0)
        writer.writeUInt32(self.lsoIPv6MaximumSize)
        writer.writeUInt32(self.lsoIPv6MaximumSize > 0 ? 2 : 0)
        writer.writeUInt32(self.lsoIPv6MaximumSize > 0 ? 0x005 : 0)
        if size >= 156 {
            writer.writeZeros(144 - writer.count)
            writer.writeUInt8(self.rscIPv4 ? 1 : 0)
            writer.writeUInt8(self.rscIPv6 ? 1 : 0)
        }
        writer.writeZeros(size - writer.count)
        return writer.bytes
    }
}

/// NDIS_RECEIVE_SCALE_CAPABILITIES (type 0x88, 18 bytes): the answer to
/// OID_GEN_RECEIVE_SCALE_CAPABILITIES.
public struct RSSCapabilities: Hashable, Sendable {
    /// Size of the object, header included.
    public static let size = 18
    /// Toeplitz, TCP/IPv4, TCP/IPv6 (OpenVMM's 0x301).
    public var flags: UInt32 = 0x301
    /// MSI-X messages the device has for receive interrupts.
    public var interruptMessages: UInt32 = 1
    /// Receive queues the device has (the primary and its sub-channels).
    public var receiveQueues: UInt32
    /// Entries of the indirection table the device takes.
    public var indirectionTableSize: UInt16 = 128

    /// Capabilities with `receiveQueues` queues and the default flags.
    public init(receiveQueues: UInt32) { self.receiveQueues = receiveQueues }

    /// Reads the object.
    /// - Throws: ``WireError/truncated(needed:available:)`` below 18 bytes; ``WireError/invalidField(name:value:)`` for
    /// another object type.
    public init(parsing bytes: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(bytes)
        try reader.require(Self.size)
        let header = try NDISObjectHeader(from: &reader)
        guard header.type == NDISObjectHeader.rssCapabilitiesType else {
            throw WireError.invalidField(name: "RSS capabilities type", value: UInt64(header.type))
        }
        self.flags = try reader.readUInt32()
        self.interruptMessages = try reader.readUInt32()
        self.receiveQueues = try reader.readUInt32()
        self.indirectionTableSize = try reader.readUInt16()
    }

    /// The 18 bytes, header first (revision 2).
    public func encode() -> [UInt8] {
        var writer = WireWriter(capacity: Self.size)
        NDISObjectHeader(type: NDISObjectHeader.rssCapabilitiesType, revision: 2, size: UInt16(Self.size)).write(to: &writer)
        writer.writeUInt32(self.flags)
        writer.writeUInt32(self.interruptMessages)
        writer.writeUInt32(self.receiveQueues)
        writer.writeUInt16(self.indirectionTableSize)
        return writer.bytes
    }
}

/// NDIS_RECEIVE_SCALE_PARAMETERS (type 0x89, 40-byte header, then the table and key at their
/// offsets): the guest's OID_GEN_RECEIVE_SCALE_PARAMETERS.
public struct RSSParameters: Hashable, Sendable {
    /// Bytes before the table and key: the header and the parameters.
    public static let headerSize = 40
    /// NDIS_RSS_PARAM_FLAG_DISABLE_RSS: RSS is off.
    public static let disableFlag: UInt16 = 0x10
    /// The parameter flags (``disableFlag`` among them).
    public var flags: UInt16
    /// The hash type and function (bits 0–7: the function; 0 means no hashing).
    public var hashInformation: UInt32
    /// Queue numbers (u32 each).
    public var indirectionTable: [UInt32]
    /// The Toeplitz hash key (40 bytes from Linux).
    public var key: [UInt8]

    /// Whether RSS is off: the disable flag is set, or no hash function is given.
    public var isDisabled: Bool { self.flags & Self.disableFlag != 0 || self.hashInformation & 0xFF == 0 }

    /// Parameters with these fields.
    public init(flags: UInt16, hashInformation: UInt32, indirectionTable: [UInt32], key: [UInt8]) {
        self.flags = flags
        self.hashInformation = hashInformation
        self.indirectionTable = indirectionTable
        self.key = key
    }

    /// - Throws: a header that is not type 0x89, a table or key outside the object, a table
    ///   that is not a whole number of u32 entries (at most 256), a key above 40 bytes.
    public init(parsing bytes: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(bytes)
        try reader.require(Self.headerSize)
        let header = try NDISObjectHeader(from: &reader)
        guard header.type == NDISObjectHeader.rssParametersType else {
            throw WireError.invalidField(name: "RSS parameters type", value: UInt64(header.type))
        }
        self.flags = try reader.readUInt16()
        _ = try reader.readUInt16()  // base CPU
        self.hashInformation = try reader.readUInt32()
        let tableBytes = try reader.readUInt16()
        _ = try reader.readUInt16()
        let tableOffset = try reader.readUInt32()
        let keyBytes = try reader.readUInt16()
        _ = try reader.readUInt16()
        let keyOffset = try reader.readUInt32()
        guard tableBytes % 4 == 0, tableBytes <= 1024, UInt64(tableOffset) + UInt64(tableBytes) <= UInt64(bytes.count) else {
            throw WireError.invalidField(name: "RSS table", value: UInt64(tableBytes))
        }
        guard keyBytes <= 40, UInt64(keyOffset) + UInt64(keyBytes) <= UInt64(bytes.count) else {
            throw WireError.invalidField(name: "RSS key", value: UInt64(keyBytes))
        }
        var table = WireReader(bytes.dropFirst(Int(tableOffset)))
        var entries: [UInt32] = []
        for _ in 0..<(Int(tableBytes) / 4) { entries.append(try table.readUInt32()) }
        self.indirectionTable = entries
        let keyStart = bytes.startIndex + Int(keyOffset)
        self.key = Array(bytes[keyStart..<(keyStart + Int(keyBytes))])
    }

    /// The object as Linux lays it out: header, table at 40, key after it.
    public func encode() -> [UInt8] {
        var writer = WireWriter(capacity: Self.headerSize + self.indirectionTable.count * 4 + self.key.count)
        let tableBytes = self.indirectionTable.count * 4
        let size = Self.headerSize + tableBytes + self.key.count
        NDISObjectHeader(type: NDISObjectHeader.rssParametersType, revision: 2, size: UInt16(truncatingIfNeeded: size)).write(to: &writer)
        writer.writeUInt16(self.flags)
        writer.writeUInt16(0)
        writer.writeUInt32(self.hashInformation)
        writer.writeUInt16(UInt16(truncatingIfNeeded: tableBytes))
        writer.writeUInt16(0)
        writer.writeUInt32(UInt32(Self.headerSize))
        writer.writeUInt16(UInt16(truncatingIfNeeded: self.key.count))
        writer.writeUInt16(0)
        writer.writeUInt32(UInt32(Self.headerSize + tableBytes))
        writer.writeZeros(12)
        for entry in self.indirectionTable { writer.writeUInt32(entry) }
        writer.writeBytes(self.key)
        return writer.bytes
    }
}
