import VMBusWire

/// The pcapng blocks a capture is made of (IETF draft-ietf-opsawg-pcapng: Section Header,
/// Interface Description, Enhanced Packet, Interface Statistics), written little-endian.
///
/// Every block is `u32 type, u32 total length, body, u32 total length`, the total a multiple
/// of 4; variable fields and option values are padded with zeros to 32 bits. Options are
/// `u16 code, u16 length, value, padding`, ended by `opt_endofopt` (code 0, length 0).
public enum Pcapng {
    /// Block types.
    public static let sectionHeaderType: UInt32 = 0x0A0D_0D0A
    public static let interfaceDescriptionType: UInt32 = 0x0000_0001
    public static let interfaceStatisticsType: UInt32 = 0x0000_0005
    public static let enhancedPacketType: UInt32 = 0x0000_0006

    /// The Section Header's byte-order magic, as written by a little-endian writer.
    public static let byteOrderMagic: UInt32 = 0x1A2B_3C4D

    /// `LINKTYPE_USER0`: a link type reserved for private use, so tools show our records as
    /// raw data unless told how to dissect them (Tools/wireshark/vmbus.lua).
    public static let linkTypeUser0: UInt16 = 147

    /// Option codes used here.
    public enum Option {
        public static let endOfOptions: UInt16 = 0
        public static let comment: UInt16 = 1
        /// Section Header: the application that wrote the file.
        public static let userApplication: UInt16 = 4
        /// Interface Description: name, description, timestamp resolution.
        public static let interfaceName: UInt16 = 2
        public static let interfaceDescription: UInt16 = 3
        public static let timestampResolution: UInt16 = 9
        /// Interface Statistics: packets received and dropped by the capture.
        public static let statisticsReceived: UInt16 = 4
        public static let statisticsDropped: UInt16 = 5
    }

    /// `if_tsresol` 9: timestamps count nanoseconds (10⁻⁹ s).
    public static let nanosecondResolution: UInt8 = 9

    /// Bytes a block adds around its body: type, and the total length twice.
    public static let blockOverhead = 12

    /// Bytes of padding that bring `count` to a multiple of 4.
    public static func padding(_ count: Int) -> Int { (4 - count % 4) % 4 }

    // MARK: Blocks

    /// A Section Header Block: version 1.0, section length unknown (−1).
    public static func sectionHeader(application: String? = nil) -> [UInt8] {
        self.block(self.sectionHeaderType) { w in
            w.writeUInt32(self.byteOrderMagic)
            w.writeUInt16(1)
            w.writeUInt16(0)
            w.writeUInt64(UInt64.max)
            var options: [(UInt16, [UInt8])] = []
            if let application { options.append((Option.userApplication, Array(application.utf8))) }
            self.writeOptions(options, to: &w)
        }
    }

    /// An Interface Description Block with nanosecond timestamps (`if_tsresol` 9).
    public static func interfaceDescription(
        linkType: UInt16, snapLength: UInt32, name: String? = nil, description: String? = nil
    ) -> [UInt8] {
        self.block(self.interfaceDescriptionType) { w in
            w.writeUInt16(linkType)
            w.writeUInt16(0)
            w.writeUInt32(snapLength)
            var options: [(UInt16, [UInt8])] = []
            if let name { options.append((Option.interfaceName, Array(name.utf8))) }
            if let description { options.append((Option.interfaceDescription, Array(description.utf8))) }
            options.append((Option.timestampResolution, [self.nanosecondResolution]))
            self.writeOptions(options, to: &w)
        }
    }

    /// An Enhanced Packet Block whose data is `capturedLength` bytes written by `data`.
    /// - Parameters:
    ///   - timestamp: in the interface's units (nanoseconds here).
    ///   - originalLength: the length before the snap length cut it.
    public static func enhancedPacket(
        interface: UInt32, timestamp: UInt64, capturedLength: Int, originalLength: UInt32, to w: inout WireWriter,
        data: (inout WireWriter) -> Void
    ) {
        let total = self.blockOverhead + 20 + capturedLength + self.padding(capturedLength)
        w.writeUInt32(self.enhancedPacketType)
        w.writeUInt32(UInt32(total))
        w.writeUInt32(interface)
        w.writeUInt32(UInt32(truncatingIfNeeded: timestamp >> 32))
        w.writeUInt32(UInt32(truncatingIfNeeded: timestamp))
        w.writeUInt32(UInt32(capturedLength))
        w.writeUInt32(originalLength)
        let before = w.count
        data(&w)
        precondition(w.count - before == capturedLength, "the data writer wrote what it announced")
        w.writeZeros(self.padding(capturedLength))
        // No options: the block ends after the padded data.
        w.writeUInt32(UInt32(total))
    }

    /// An Enhanced Packet Block holding `data`, as a byte array.
    public static func enhancedPacket(
        interface: UInt32, timestamp: UInt64, data: ArraySlice<UInt8>, originalLength: UInt32
    ) -> [UInt8] {
        var w = WireWriter(capacity: 36 + data.count)
        self.enhancedPacket(
            interface: interface, timestamp: timestamp, capturedLength: data.count, originalLength: originalLength, to: &w
        ) { $0.writeBytes(data) }
        return w.bytes
    }

    /// An Interface Statistics Block: records written (`isb_ifrecv`) and records the capture
    /// lost (`isb_ifdrop`) on one interface.
    public static func interfaceStatistics(interface: UInt32, timestamp: UInt64, received: UInt64, dropped: UInt64) -> [UInt8] {
        self.block(self.interfaceStatisticsType) { w in
            w.writeUInt32(interface)
            w.writeUInt32(UInt32(truncatingIfNeeded: timestamp >> 32))
            w.writeUInt32(UInt32(truncatingIfNeeded: timestamp))
            self.writeOptions(
                [(Option.statisticsReceived, self.littleEndian(received)), (Option.statisticsDropped, self.littleEndian(dropped))],
                to: &w)
        }
    }

    // MARK: Helpers

    /// A whole block: type, length, the body `body` writes (padded to 32 bits), length.
    static func block(_ type: UInt32, _ body: (inout WireWriter) -> Void) -> [UInt8] {
        var inner = WireWriter(capacity: 64)
        body(&inner)
        inner.writeZeros(self.padding(inner.count))
        var w = WireWriter(capacity: inner.count + self.blockOverhead)
        let total = UInt32(inner.count + self.blockOverhead)
        w.writeUInt32(type)
        w.writeUInt32(total)
        w.writeBytes(inner.bytes)
        w.writeUInt32(total)
        return w.bytes
    }

    /// Options, each padded to 32 bits, then `opt_endofopt`; nothing at all when there are
    /// none (options are optional in every block).
    static func writeOptions(_ options: [(UInt16, [UInt8])], to w: inout WireWriter) {
        guard !options.isEmpty else { return }
        for (code, value) in options {
            w.writeUInt16(code)
            w.writeUInt16(UInt16(value.count))
            w.writeBytes(value)
            w.writeZeros(self.padding(value.count))
        }
        w.writeUInt16(Option.endOfOptions)
        w.writeUInt16(0)
    }

    static func littleEndian(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
    }
}
