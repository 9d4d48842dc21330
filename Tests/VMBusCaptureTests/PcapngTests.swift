import Testing
import VMBusCapture
import VMBusWire

/// The pcapng blocks byte for byte against the format: block type, total length at both ends,
/// 32-bit padding of data and option values, `opt_endofopt`.
@Suite struct PcapngTests {
    /// Little-endian u32s, for writing expected bytes compactly.
    static func words(_ values: UInt32...) -> [UInt8] {
        values.flatMap { value in (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * UInt32($0))) } }
    }

    @Test func sectionHeaderWithoutOptions() {
        let block = Pcapng.sectionHeader()
        #expect(block == Self.words(0x0A0D_0D0A, 28, 0x1A2B_3C4D, 0x0000_0001, 0xFFFF_FFFF, 0xFFFF_FFFF, 28))
    }

    @Test func sectionHeaderApplicationIsPadded() {
        let block = Pcapng.sectionHeader(application: "swift-vmbus")
        // 16 fixed body bytes + option (4 + 11 + 1 padding) + opt_endofopt (4) + 12.
        #expect(block.count == 48)
        #expect(Array(block[4..<8]) == Self.words(48))
        #expect(Array(block[44..<48]) == Self.words(48))
        #expect(Array(block[24..<28]) == [4, 0, 11, 0])
        #expect(Array(block[28..<39]) == Array("swift-vmbus".utf8))
        #expect(block[39] == 0)
        #expect(Array(block[40..<44]) == [0, 0, 0, 0])
    }

    @Test func interfaceDescriptionHasNanosecondResolution() {
        let block = Pcapng.interfaceDescription(linkType: Pcapng.linkTypeUser0, snapLength: 280)
        #expect(block == Self.words(1, 32, 147, 280, 0x0001_0009, 9, 0, 32))
    }

    @Test func enhancedPacketPadsDataToFourBytes() {
        let block = Pcapng.enhancedPacket(
            interface: 2, timestamp: 0x0000_0001_0000_0002, data: [1, 2, 3, 4, 5], originalLength: 9)
        #expect(block == Self.words(6, 40, 2, 1, 2, 5, 9, 0x0403_0201, 0x0000_0005, 40))
    }

    @Test func emptyEnhancedPacketIsTheMinimum() {
        let block = Pcapng.enhancedPacket(interface: 0, timestamp: 0, data: [], originalLength: 0)
        #expect(block == Self.words(6, 32, 0, 0, 0, 0, 0, 32))
    }

    @Test func interfaceStatisticsCarryReceivedAndDropped() {
        let block = Pcapng.interfaceStatistics(interface: 1, timestamp: 7, received: 3, dropped: 0x1_0000_0002)
        #expect(block == Self.words(5, 52, 1, 0, 7, 0x0008_0004, 3, 0, 0x0008_0005, 2, 1, 0, 52))
    }

    @Test func readerReadsWhatWasWritten() throws {
        let bytes = Pcapng.sectionHeader(application: "x")
            + Pcapng.interfaceDescription(linkType: 147, snapLength: 64, name: "vmbus connection 1")
            + Pcapng.enhancedPacket(interface: 0, timestamp: 1234, data: [9, 8, 7], originalLength: 100)
            + Pcapng.interfaceStatistics(interface: 0, timestamp: 5, received: 1, dropped: 2)
        var reader = PcapngReader(bytes)
        let blocks = try reader.readAll()
        #expect(blocks.count == 4)
        guard case .sectionHeader(1, 0, let shbOptions) = blocks[0] else { Issue.record("\(blocks[0])"); return }
        #expect(shbOptions.map(\.code) == [Pcapng.Option.userApplication])
        guard case .interfaceDescription(147, 64, let options) = blocks[1] else { Issue.record("\(blocks[1])"); return }
        #expect(options.map(\.code) == [Pcapng.Option.interfaceName, Pcapng.Option.timestampResolution])
        #expect(Array(options[0].value) == Array("vmbus connection 1".utf8))
        guard case .enhancedPacket(0, 1234, 100, let data, []) = blocks[2] else { Issue.record("\(blocks[2])"); return }
        #expect(Array(data) == [9, 8, 7])
        guard case .interfaceStatistics(0, 5, let stats) = blocks[3] else { Issue.record("\(blocks[3])"); return }
        #expect(stats.map(\.uint64) == [1, 2])
    }

    @Test func readerRejectsMalformedBlocks() {
        let good = Pcapng.sectionHeader() + Pcapng.enhancedPacket(interface: 0, timestamp: 0, data: [1], originalLength: 1)
        func fails(_ bytes: [UInt8]) -> Bool {
            var reader = PcapngReader(bytes)
            return (try? reader.readAll()) == nil
        }
        #expect(!fails(good))
        // The trailing length disagrees with the leading one.
        var trailing = good
        trailing[good.count - 4] = 0x20
        #expect(fails(trailing))
        // A total length that is not a multiple of 4.
        var odd = good
        odd[32] = 33
        #expect(fails(odd))
        // Every truncation.
        for cut in 1..<good.count where cut != 28 { #expect(fails(Array(good[..<cut])), "cut at \(cut)") }
        // The first block must be a Section Header Block.
        #expect(fails(Array(good[28...])))
        // A big-endian (or garbled) byte-order magic.
        var magic = good
        magic[8] = 0x1A
        #expect(fails(magic))
    }

    @Test func recordHeaderIsTwentyFourBytes() throws {
        let header = CaptureRecordHeader(
            kind: .ringPacket, direction: .guestToHost, observer: .guest, flags: .truncated, connection: 0x0102_0304,
            relid: 5, port: 6, originalLength: 0x1000)
        var w = WireWriter()
        header.write(to: &w)
        #expect(CaptureRecordHeader.wireSize == 24)
        #expect(w.bytes == [1, 3, 1, 1, 1, 0, 0, 0] + Self.words(0x0102_0304, 5, 6, 0x1000))
        var r = WireReader(w.bytes)
        #expect(try CaptureRecordHeader(from: &r) == header)
        for cut in 0..<24 {
            var short = WireReader(Array(w.bytes[..<cut]))
            #expect(throws: WireError.self) { try CaptureRecordHeader(from: &short) }
        }
        var wrongVersion = w.bytes
        wrongVersion[0] = 2
        var v = WireReader(wrongVersion)
        #expect(throws: WireError.self) { try CaptureRecordHeader(from: &v) }
    }
}
