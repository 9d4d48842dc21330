import Testing
import VMBusMemory
import VMBusWire

@Suite struct GuestMemoryTests {
    @Test func allocationsAreContiguousZeroedAndNeverPageZero() throws {
        let memory = try GuestMemory(size: 64 * 4096)
        let a = try memory.allocate(pages: 4)
        #expect(a.firstPFN == 1)
        try memory.memory.write([0xAA, 0xBB][...], at: a.offset)
        let b = try memory.allocate(pages: 8)
        #expect(b.firstPFN == 5 && memory.freePages == 63 - 12)
        memory.release(a)
        let c = try memory.allocate(pages: 4)
        #expect(c.firstPFN == 1)
        var bytes = [UInt8](repeating: 1, count: 2)
        try memory.memory.read(at: c.offset, count: 2, into: &bytes)
        #expect(bytes == [0, 0])  // handed out zeroed again
        #expect(throws: MemoryError.self) { try memory.allocate(pages: 60) }
    }

    @Test func releasedRunsMergeSoLongRunsComeBack() throws {
        let memory = try GuestMemory(size: 32 * 4096)
        let runs = try (0..<6).map { _ in try memory.allocate(pages: 5) }
        for run in [runs[1], runs[3], runs[2], runs[0], runs[5], runs[4]] { memory.release(run) }
        #expect(memory.freePages == 31)
        #expect(try memory.allocate(pages: 31).firstPFN == 1)
    }

    @Test func aHostSeesTheGuestsBytesThroughAGpadlView() throws {
        let memory = try GuestMemory(size: 16 * 4096)
        let buffer = try memory.allocate(pages: 3)
        try memory.memory.write([1, 2, 3][...], at: buffer.offset + 4096 + 10)
        let view = try memory.mapGpadl([try buffer.range()])
        var bytes = [UInt8](repeating: 0, count: 3)
        try view.read(at: 4096 + 10, count: 3, into: &bytes)
        #expect(bytes == [1, 2, 3])
        // Writes through the view land in guest memory.
        try view.write([9][...], at: 0)
        try memory.memory.read(at: buffer.offset, count: 1, into: &bytes)
        #expect(bytes[0] == 9)
    }

    @Test func aGpadlNamingPagesOutsideGuestMemoryIsRefused() throws {
        let memory = try GuestMemory(size: 16 * 4096)
        let range = try GpaRange(byteCount: 4096, byteOffset: 0, pfns: [16])
        #expect(throws: MemoryError.pageOutOfRange(pfn: 16, pages: 16)) { try memory.mapGpadl([range]) }
    }

    @Test func atomicBitOperationsForMonitorPages() throws {
        let memory = try MappedMemory.anonymous(size: 4096)
        try memory.orUInt32(0b0101, at: 8)
        #expect(try memory.orUInt32(0b1000, at: 8) == 0b0101)
        #expect(try memory.exchangeUInt32(0, at: 8) == 0b1101)
        #expect(try memory.loadUInt32(at: 8) == 0)
        #expect(throws: MemoryError.self) { try memory.orUInt32(1, at: 4094) }
        #expect(throws: MemoryError.self) { try memory.exchangeUInt32(1, at: 6) }
    }
}
