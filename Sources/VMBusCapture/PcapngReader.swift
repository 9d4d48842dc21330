import VMBusWire

/// One option of a pcapng block.
public struct PcapngOption: Hashable, Sendable {
    public var code: UInt16
    public var value: ArraySlice<UInt8>

    /// The value as a little-endian u64, if it is 8 bytes long.
    public var uint64: UInt64? {
        guard self.value.count == 8 else { return nil }
        return self.value.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }
}

/// A block read from a pcapng file.
public enum PcapngBlock: Hashable, Sendable {
    case sectionHeader(major: UInt16, minor: UInt16, options: [PcapngOption])
    case interfaceDescription(linkType: UInt16, snapLength: UInt32, options: [PcapngOption])
    /// An Enhanced Packet Block: `data` is the captured bytes (without padding).
    case enhancedPacket(interface: UInt32, timestamp: UInt64, originalLength: UInt32, data: ArraySlice<UInt8>, options: [PcapngOption])
    case interfaceStatistics(interface: UInt32, timestamp: UInt64, options: [PcapngOption])
    /// A block of a type this reader does not interpret (skipped whole).
    case other(type: UInt32, body: ArraySlice<UInt8>)
}

/// Reads the blocks of a little-endian pcapng file strictly: every length is checked against
/// what is left before anything is sliced, both copies of a block's length must agree and be
/// a multiple of 4, and the file must start with a Section Header Block.
public struct PcapngReader {
    /// The largest block accepted, far above anything this library writes.
    public static let maximumBlockLength = 16 << 20

    var reader: WireReader
    var sawSection = false

    public init(_ bytes: [UInt8]) {
        self.reader = WireReader(bytes)
    }

    /// The next block, or `nil` at the end of the file.
    /// - Throws: ``WireError`` for a truncated or malformed block, a big-endian section, or a
    ///   file that does not start with a Section Header Block.
    public mutating func next() throws(WireError) -> PcapngBlock? {
        guard self.reader.remaining > 0 else { return nil }
        let type = try self.reader.readUInt32()
        let total = try self.reader.readUInt32()
        guard total >= 12, total % 4 == 0 else { throw WireError.invalidField(name: "block total length", value: UInt64(total)) }
        guard total <= Self.maximumBlockLength else {
            throw WireError.limitExceeded(name: "block total length", value: UInt64(total), limit: UInt64(Self.maximumBlockLength))
        }
        let body = try self.reader.readBytes(Int(total) - 12)
        let trailing = try self.reader.readUInt32()
        guard trailing == total else { throw WireError.invalidField(name: "trailing block length", value: UInt64(trailing)) }
        guard self.sawSection || type == Pcapng.sectionHeaderType else {
            throw WireError.invalidField(name: "first block type", value: UInt64(type))
        }
        var b = WireReader(body)
        switch type {
        case Pcapng.sectionHeaderType:
            let magic = try b.readUInt32()
            guard magic == Pcapng.byteOrderMagic else { throw WireError.invalidField(name: "byte-order magic", value: UInt64(magic)) }
            let major = try b.readUInt16()
            let minor = try b.readUInt16()
            _ = try b.readUInt64()
            self.sawSection = true
            return .sectionHeader(major: major, minor: minor, options: try Self.options(&b))
        case Pcapng.interfaceDescriptionType:
            let linkType = try b.readUInt16()
            _ = try b.readUInt16()
            let snapLength = try b.readUInt32()
            return .interfaceDescription(linkType: linkType, snapLength: snapLength, options: try Self.options(&b))
        case Pcapng.enhancedPacketType:
            let interface = try b.readUInt32()
            let timestamp = UInt64(try b.readUInt32()) << 32 | UInt64(try b.readUInt32())
            let captured = try b.readUInt32()
            let original = try b.readUInt32()
            guard captured <= b.remaining else {
                throw WireError.truncated(needed: Int(captured), available: b.remaining)
            }
            let data = try b.readBytes(Int(captured))
            try b.skip(Pcapng.padding(Int(captured)))
            return .enhancedPacket(
                interface: interface, timestamp: timestamp, originalLength: original, data: data, options: try Self.options(&b))
        case Pcapng.interfaceStatisticsType:
            let interface = try b.readUInt32()
            let timestamp = UInt64(try b.readUInt32()) << 32 | UInt64(try b.readUInt32())
            return .interfaceStatistics(interface: interface, timestamp: timestamp, options: try Self.options(&b))
        default:
            return .other(type: type, body: body)
        }
    }

    /// Every block to the end.
    public mutating func readAll() throws(WireError) -> [PcapngBlock] {
        var blocks: [PcapngBlock] = []
        while let block = try self.next() { blocks.append(block) }
        return blocks
    }

    /// Options up to `opt_endofopt` or the end of the body.
    static func options(_ b: inout WireReader) throws(WireError) -> [PcapngOption] {
        var options: [PcapngOption] = []
        while b.remaining >= 4 {
            let code = try b.readUInt16()
            let length = Int(try b.readUInt16())
            if code == Pcapng.Option.endOfOptions { break }
            let value = try b.readBytes(length)
            try b.skip(Pcapng.padding(length))
            options.append(PcapngOption(code: code, value: value))
        }
        return options
    }
}
