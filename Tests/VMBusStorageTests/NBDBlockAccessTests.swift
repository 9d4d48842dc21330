import Testing
import VMBusMemory

@testable import VMBusStorage

/// Byte-addressed access over a sector device, checked against a plain byte array: unaligned
/// reads and writes, splitting at the device's transfer size, read-modify-write under
/// concurrency, write-zeroes and trim rounding.
@Suite struct NBDBlockAccessTests {
    /// Random reads and writes at any offset and length, on both sector sizes, with a transfer
    /// size of two sectors so most requests split: the disk always equals the model.
    @Test(arguments: [512, 4096])
    func unalignedReadsAndWritesMatchAByteModel(sectorSize: Int) async throws {
        let sectors: UInt64 = 64
        let disk = try MemoryDisk(sectorCount: sectors, sectorSize: sectorSize)
        let device = TestBlockDevice(disk, maximumTransferSectors: 2)
        let access = NBDBlockAccess(device)
        let size = Int(sectors) * sectorSize
        var model = [UInt8](repeating: 0, count: size)
        var random = patternBytes(4 * 400, seed: UInt64(sectorSize))
        func next(_ bound: Int) -> Int {
            let value = Int(random.removeLast()) << 24 | Int(random.removeLast()) << 16 | Int(random.removeLast()) << 8 | Int(random.removeLast())
            return value % bound
        }
        for round in 0..<100 {
            let offset = next(size)
            let length = 1 + next(min(size - offset, 7 * sectorSize))
            let data = patternBytes(length, seed: UInt64(round))
            try await access.write(offset: UInt64(offset), data, fua: round % 3 == 0)
            model.replaceSubrange(offset..<offset + length, with: data)
            let readOffset = next(size)
            let readLength = 1 + next(size - readOffset)
            let read = try await access.read(offset: UInt64(readOffset), length: readLength)
            #expect(read == Array(model[readOffset..<readOffset + readLength]), "round \(round)")
        }
        #expect(try disk.read(at: 0, count: size) == model)
        // Nothing above two sectors ever reached the device: every long request was split.
        #expect(device.count("write") > 100)
    }

    /// Unaligned writes to disjoint bytes of the same two sectors, all at once: every byte
    /// lands. Without the read-modify-write lock, one write's read of a sector would race
    /// another's write and put old bytes back (the device yields inside every read to make that
    /// interleaving likely).
    @Test func concurrentUnalignedWritesToOneSectorDoNotUndoEachOther() async throws {
        let disk = try MemoryDisk(sectorCount: 8)
        let access = NBDBlockAccess(TestBlockDevice(disk, yieldInReads: true))
        let pieces = 64
        let width = 1024 / pieces
        await withTaskGroup(of: Void.self) { group in
            for piece in 0..<pieces {
                group.addTask {
                    let bytes = [UInt8](repeating: UInt8(piece + 1), count: width)
                    try? await access.write(offset: UInt64(piece * width), bytes, fua: false)
                }
            }
        }
        let expected = (0..<pieces).flatMap { [UInt8](repeating: UInt8($0 + 1), count: width) }
        #expect(try disk.read(at: 0, count: 1024) == expected)
    }

    @Test func writeZeroesClearsExactlyItsBytesByDiscardOrByWriting() async throws {
        for mayTrim in [true, false] {
            let disk = try MemoryDisk(contents: [UInt8](repeating: 0xee, count: 16 * 512))
            let device = TestBlockDevice(disk, maximumTransferSectors: 2)
            let access = NBDBlockAccess(device)
            try await access.writeZeroes(offset: 100, length: 5000, fua: true, mayTrim: mayTrim)
            let bytes = try disk.read(at: 0, count: 16 * 512)
            #expect(bytes[..<100].allSatisfy { $0 == 0xee })
            #expect(bytes[100..<5100].allSatisfy { $0 == 0 })
            #expect(bytes[5100...].allSatisfy { $0 == 0xee })
            // Sectors 1…8 are whole: one discard, or five writes of at most two sectors.
            #expect(device.count("discard") == (mayTrim ? 1 : 0), "mayTrim \(mayTrim)")
        }
        // Inside one sector, and across one boundary with no whole sector between.
        let disk = try MemoryDisk(contents: [UInt8](repeating: 0xee, count: 4 * 512))
        let access = NBDBlockAccess(TestBlockDevice(disk))
        try await access.writeZeroes(offset: 10, length: 20, fua: false, mayTrim: true)
        try await access.writeZeroes(offset: 1000, length: 100, fua: false, mayTrim: true)
        let bytes = try disk.read(at: 0, count: 4 * 512)
        #expect(bytes.indices.filter { bytes[$0] == 0 } == Array(10..<30) + Array(1000..<1100))
    }

    @Test func trimDiscardsOnlyTheWholeSectorsInside() async throws {
        let disk = try MemoryDisk(contents: [UInt8](repeating: 0xee, count: 8 * 512))
        let device = TestBlockDevice(disk)
        let access = NBDBlockAccess(device)
        try await access.trim(offset: 100, length: 1000, fua: false)
        let bytes = try disk.read(at: 0, count: 8 * 512)
        #expect(bytes.indices.filter { bytes[$0] == 0 } == Array(512..<1024))
        try await access.trim(offset: 1030, length: 500, fua: true)
        #expect(device.count("discard") == 1, "a trim covering no whole sector does nothing")
    }

    @Test func deviceErrorsReachTheCaller() async throws {
        let disk = try MemoryDisk(sectorCount: 8, readOnly: true)
        let access = NBDBlockAccess(TestBlockDevice(disk))
        await #expect(throws: BlockDeviceError.readOnly) { try await access.write(offset: 0, [1], fua: false) }
        await #expect(throws: BlockDeviceError.readOnly) { try await access.write(offset: 0, [UInt8](repeating: 1, count: 512), fua: false) }
    }
}
