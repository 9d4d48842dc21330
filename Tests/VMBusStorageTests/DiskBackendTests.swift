import Foundation
import Testing
import VMBusMemory
import VMBusWire

@testable import VMBusStorage

/// The disk backends: every backend answers every request the same way (parameterized over
/// memory and file, both sector sizes, with and without `O_DIRECT`), then what only a file
/// does (sparse images, hole punching, direct I/O).
@Suite struct DiskBackendTests {
    /// One kind of disk to run a test on.
    enum Kind: String, CaseIterable, CustomTestStringConvertible {
        case memory512, memory4096, file512, file4096, fileDirect512, fileDirect4096

        var sectorSize: Int { self.rawValue.hasSuffix("4096") ? 4096 : 512 }
        var testDescription: String { self.rawValue }
    }

    /// A temporary directory, removed with everything in it when the test ends.
    final class Scratch {
        let path: String

        init() throws {
            self.path = FileManager.default.temporaryDirectory
                .appendingPathComponent("vmbus-disk-\(UInt64.random(in: 0...UInt64.max))").path
            try FileManager.default.createDirectory(atPath: self.path, withIntermediateDirectories: false)
        }

        deinit { try? FileManager.default.removeItem(atPath: self.path) }

        func file(_ name: String) -> String { self.path + "/" + name }
    }

    /// A new all-zero disk of `kind` with `sectors` sectors (its image in `scratch`).
    static func makeDisk(_ kind: Kind, sectors: UInt64, in scratch: Scratch) throws -> any DiskBackend {
        let bytes = sectors * UInt64(kind.sectorSize)
        switch kind {
        case .memory512, .memory4096: return try MemoryDisk(sectorCount: sectors, sectorSize: kind.sectorSize)
        case .file512, .file4096:
            return try FileDisk.create(path: scratch.file("disk.img"), byteCount: bytes, sectorSize: kind.sectorSize)
        case .fileDirect512, .fileDirect4096:
            return try FileDisk.create(
                path: scratch.file("disk.img"), byteCount: bytes, sectorSize: kind.sectorSize, directIO: .preferred)
        }
    }

    /// The same disk opened again read-only (a memory disk: a read-only copy of its bytes).
    static func readOnlyCopy(of disk: any DiskBackend, _ kind: Kind, in scratch: Scratch) throws -> any DiskBackend {
        switch kind {
        case .memory512, .memory4096:
            let bytes = try disk.read(at: 0, count: Int(disk.byteCount))
            return try MemoryDisk(contents: bytes, sectorSize: kind.sectorSize, readOnly: true)
        case .file512, .file4096, .fileDirect512, .fileDirect4096:
            let direct: FileDisk.DirectIO = kind == .file512 || kind == .file4096 ? .off : .preferred
            return try FileDisk.open(path: scratch.file("disk.img"), sectorSize: kind.sectorSize, readOnly: true, directIO: direct)
        }
    }

    /// `count` bytes that differ with `seed` and along their length (no two sectors alike).
    static func pattern(_ seed: Int, _ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: ($0 &* 31) ^ ($0 >> 9) &+ seed &* 97 &+ 1) }
    }

    /// Guest memory of 64 pages and a scattered buffer of `count` bytes in it: the pages of a
    /// GPA-direct range in a shuffled order, starting `byteOffset` into the first.
    static func scattered(_ count: Int, byteOffset: Int = 0, in memory: MappedMemory) throws -> MemoryExtents {
        let pages = (byteOffset + count + 4095) / 4096
        let pfns = (0..<UInt64(pages)).map { ($0 * 7 + 3) % 61 + 1 }
        let range = try GpaRange(byteCount: UInt32(count), byteOffset: UInt32(byteOffset), pfns: pfns)
        return try MemoryExtents(memory: memory, range: range)
    }

    /// The bytes a scattered buffer holds, in transfer order.
    static func contents(of buffer: MemoryExtents) throws -> [UInt8] {
        var bytes: [UInt8] = []
        for extent in buffer.extents {
            var piece = [UInt8](repeating: 0, count: extent.count)
            try buffer.memory.read(at: extent.offset, count: extent.count, into: &piece)
            bytes += piece
        }
        return bytes
    }

    // MARK: Every backend

    @Test(arguments: Kind.allCases)
    func roundTripsAtManyOffsets(_ kind: Kind) throws {
        let scratch = try Scratch()
        let disk = try Self.makeDisk(kind, sectors: 64, in: scratch)
        let sector = disk.sectorSize
        #expect(disk.byteCount == UInt64(64 * sector))
        #expect(try disk.read(at: 0, count: 64 * sector) == [UInt8](repeating: 0, count: 64 * sector))
        var expected = [UInt8](repeating: 0, count: 64 * sector)
        for (n, (first, count)) in [(0, 1), (1, 1), (5, 3), (17, 8), (40, 16), (63, 1), (0, 0), (64, 0)].enumerated() {
            let bytes = Self.pattern(n, count * sector)
            try disk.write(at: UInt64(first * sector), from: bytes)
            expected.replaceSubrange(first * sector..<(first + count) * sector, with: bytes)
            #expect(try disk.read(at: UInt64(first * sector), count: count * sector) == bytes, "sectors \(first)+\(count)")
        }
        #expect(try disk.read(at: 0, count: 64 * sector) == expected)
    }

    @Test(arguments: Kind.allCases)
    func scatteredGuestBuffersGoInPlace(_ kind: Kind) throws {
        let scratch = try Scratch()
        let disk = try Self.makeDisk(kind, sectors: 64, in: scratch)
        let sector = disk.sectorSize
        let guest = try MappedMemory.anonymous(size: 64 * 4096)
        // Aligned pieces (used in place even with O_DIRECT) and pieces that start mid-sector
        // (bounced with O_DIRECT).
        for (n, byteOffset) in [0, 512, 100].enumerated() {
            let count = 3 * 4096
            let source = try Self.scattered(count, byteOffset: byteOffset, in: guest)
            #expect(source.extents.count > 1)
            let bytes = Self.pattern(n, count)
            var position = 0
            for extent in source.extents {
                try guest.write(bytes[position..<position + extent.count], at: extent.offset)
                position += extent.count
            }
            let at = UInt64(n * 4 * sector)
            try disk.write(at: at, from: source)
            #expect(try disk.read(at: at, count: count) == bytes, "byte offset \(byteOffset)")
            try guest.zero(at: 0, count: guest.size)
            try disk.read(at: at, into: source)
            #expect(try Self.contents(of: source) == bytes, "byte offset \(byteOffset)")
        }
    }

    /// The non-blocking transfers (RWF_NOWAIT on a file): a memory disk always does them; a
    /// file serves data it just wrote from the page cache. Whatever they report done is done,
    /// byte for byte; a write they decline is simply not claimed.
    @Test(arguments: Kind.allCases)
    func transfersIfReadyAreExactWhenTheyHappen(_ kind: Kind) throws {
        let scratch = try Scratch()
        let disk = try Self.makeDisk(kind, sectors: 64, in: scratch)
        let guest = try MappedMemory.anonymous(size: 16 * 4096)
        let bytes = Self.pattern(9, 4 * 4096)
        try guest.write(bytes[...], at: 0)
        let buffer = try MemoryExtents(memory: guest, offset: 0, count: bytes.count)
        if try disk.writeIfReady(at: 0, from: buffer) {
            #expect(try disk.read(at: 0, count: bytes.count) == bytes)
        } else {
            #expect(!disk.completesInline, "a memory disk never declines")
            try disk.write(at: 0, from: buffer)
        }
        try guest.zero(at: 0, count: guest.size)
        let read = try disk.readIfReady(at: 0, into: buffer)
        // Just written through the page cache (or memory): it is there. With O_DIRECT the file
        // system may decline; that is allowed, a wrong byte is not.
        if kind == .file512 || kind == .file4096 || disk.completesInline { #expect(read) }
        if read { #expect(try Self.contents(of: buffer) == bytes) }
        #expect(throws: DiskError.self) { _ = try disk.readIfReady(at: 64 * UInt64(disk.sectorSize), into: buffer) }
    }

    /// More pieces than one `preadv`/`pwritev` takes (1024): the transfer goes on where the
    /// first call stopped.
    @Test(arguments: Kind.allCases)
    func buffersOfManyPiecesMoveWhole(_ kind: Kind) throws {
        let scratch = try Scratch()
        let pieces = 1600
        let count = pieces * 512
        let disk = try Self.makeDisk(kind, sectors: UInt64(count / kind.sectorSize + 8), in: scratch)
        let guest = try MappedMemory.anonymous(size: 2 * count)
        // Every other 512 bytes, so no two pieces merge.
        var buffer = MemoryExtents(memory: guest)
        for piece in 0..<pieces { try buffer.append(offset: piece * 1024, count: 512) }
        #expect(buffer.extents.count == pieces && buffer.byteCount == count)
        let bytes = Self.pattern(11, count)
        for piece in 0..<pieces { try guest.write(bytes[piece * 512..<(piece + 1) * 512], at: piece * 1024) }
        try disk.write(at: UInt64(kind.sectorSize), from: buffer)
        #expect(try disk.read(at: UInt64(kind.sectorSize), count: count) == bytes)
        try guest.zero(at: 0, count: guest.size)
        try disk.read(at: UInt64(kind.sectorSize), into: buffer)
        #expect(try Self.contents(of: buffer) == bytes)
    }

    @Test(arguments: Kind.allCases)
    func requestsOutsideTheDiskOrOffSectorsAreRefused(_ kind: Kind) throws {
        let scratch = try Scratch()
        let disk = try Self.makeDisk(kind, sectors: 16, in: scratch)
        let sector = disk.sectorSize
        let end = disk.byteCount
        let guest = try MappedMemory.anonymous(size: 4 * 4096)
        let one = try MemoryExtents(memory: guest, offset: 0, count: sector)
        let outside = DiskError.outOfRange(byteOffset: end, count: UInt64(sector), diskBytes: end)
        #expect(throws: outside) { try disk.read(at: end, count: sector) }
        #expect(throws: outside) { try disk.write(at: end, from: [UInt8](repeating: 1, count: sector)) }
        #expect(throws: outside) { try disk.read(at: end, into: one) }
        #expect(throws: outside) { try disk.write(at: end, from: one) }
        #expect(throws: outside) { try disk.discard(at: end, count: UInt64(sector)) }
        // A range whose end overflows is outside, not a wrap to the start.
        let high = UInt64.max - UInt64(sector) + 1
        #expect(throws: DiskError.outOfRange(byteOffset: high, count: UInt64(2 * sector), diskBytes: end)) {
            try disk.discard(at: high, count: UInt64(2 * sector))
        }
        #expect(throws: DiskError.misaligned(byteOffset: 1, count: UInt64(sector), sectorSize: sector)) {
            try disk.read(at: 1, count: sector)
        }
        #expect(throws: DiskError.misaligned(byteOffset: 0, count: 100, sectorSize: sector)) {
            try disk.write(at: 0, from: [UInt8](repeating: 1, count: 100))
        }
        #expect(throws: DiskError.misaligned(byteOffset: UInt64(sector), count: 7, sectorSize: sector)) {
            try disk.discard(at: UInt64(sector), count: 7)
        }
        // The last sector and an empty request at the very end are inside.
        try disk.write(at: end - UInt64(sector), from: one)
        #expect(try disk.read(at: end, count: 0) == [])
    }

    @Test(arguments: Kind.allCases)
    func aReadOnlyDiskReadsButRefusesChanges(_ kind: Kind) throws {
        let scratch = try Scratch()
        let sector = kind.sectorSize
        let bytes = Self.pattern(7, 8 * sector)
        let readOnly: any DiskBackend
        do {
            let disk = try Self.makeDisk(kind, sectors: 8, in: scratch)
            try disk.write(at: 0, from: bytes)
            try disk.flush()
            readOnly = try Self.readOnlyCopy(of: disk, kind, in: scratch)
        }
        #expect(readOnly.isReadOnly)
        #expect(try readOnly.read(at: 0, count: 8 * sector) == bytes)
        let guest = try MappedMemory.anonymous(size: 4096)
        let one = try MemoryExtents(memory: guest, offset: 0, count: sector)
        #expect(throws: DiskError.readOnly) { try readOnly.write(at: 0, from: [UInt8](repeating: 0, count: sector)) }
        #expect(throws: DiskError.readOnly) { try readOnly.write(at: 0, from: one) }
        #expect(throws: DiskError.readOnly) { try readOnly.discard(at: 0, count: UInt64(sector)) }
        // Read-only is reported before the range: nothing about a write is checked further.
        #expect(throws: DiskError.readOnly) { try readOnly.discard(at: 1, count: 1) }
        try readOnly.flush()
        #expect(try readOnly.read(at: 0, count: 8 * sector) == bytes)
    }

    @Test(arguments: Kind.allCases)
    func discardedSectorsReadAsZerosAndTheRestStays(_ kind: Kind) throws {
        let scratch = try Scratch()
        let disk = try Self.makeDisk(kind, sectors: 64, in: scratch)
        let sector = disk.sectorSize
        let bytes = Self.pattern(3, 64 * sector)
        try disk.write(at: 0, from: bytes)
        try disk.flush()
        try disk.discard(at: UInt64(8 * sector), count: UInt64(40 * sector))
        try disk.discard(at: UInt64(63 * sector), count: UInt64(sector))
        try disk.discard(at: 0, count: 0)
        var expected = bytes
        expected.replaceSubrange(8 * sector..<48 * sector, with: repeatElement(0, count: 40 * sector))
        expected.replaceSubrange(63 * sector..<64 * sector, with: repeatElement(0, count: sector))
        #expect(try disk.read(at: 0, count: 64 * sector) == expected)
        #expect(disk.byteCount == UInt64(64 * sector))
    }

    @Test(arguments: Kind.allCases)
    func concurrentWritersToDifferentSectorsAllLand(_ kind: Kind) throws {
        let scratch = try Scratch()
        let writers = 8
        let sectorsEach = 16
        let disk = try Self.makeDisk(kind, sectors: UInt64(writers * sectorsEach), in: scratch)
        let sector = disk.sectorSize
        let stride = sectorsEach * sector
        let guest = try MappedMemory.anonymous(size: writers * ((stride + 4095) / 4096) * 4096)
        let errors = Locked<[DiskError]>([])
        // Each writer writes its sectors one at a time, interleaved with the others: even ones
        // from guest memory, odd ones from arrays; then reads all of them back.
        DispatchQueue.concurrentPerform(iterations: writers) { writer in
            let base = writer * stride
            let bytes = Self.pattern(writer, stride)
            do {
                for s in 0..<sectorsEach {
                    let piece = Array(bytes[s * sector..<(s + 1) * sector])
                    let at = UInt64(base + s * sector)
                    if s % 2 == 0 {
                        let buffer = try MemoryExtents(memory: guest, offset: base + s * sector, count: sector)
                        try guest.write(piece[...], at: base + s * sector)
                        try disk.write(at: at, from: buffer)
                    } else {
                        try disk.write(at: at, from: piece)
                    }
                }
                if try disk.read(at: UInt64(base), count: stride) != bytes {
                    errors.withLock { $0.append(.io(operation: "writer \(writer) read back other bytes", errno: 0)) }
                }
            } catch let error as DiskError {
                errors.withLock { $0.append(error) }
            } catch {
                errors.withLock { $0.append(.io(operation: "\(error)", errno: 0)) }
            }
        }
        #expect(errors.load() == [])
        try disk.flush()
        for writer in 0..<writers {
            #expect(try disk.read(at: UInt64(writer * stride), count: stride) == Self.pattern(writer, stride))
        }
    }

    @Test(arguments: Kind.allCases)
    func concurrentTasksReadAndWriteTheirOwnSectors(_ kind: Kind) async throws {
        let scratch = try Scratch()
        let disk = try Self.makeDisk(kind, sectors: 64, in: scratch)
        let sector = disk.sectorSize
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<64 {
                group.addTask {
                    try disk.write(at: UInt64(task * sector), from: Self.pattern(task, sector))
                    try disk.flush()
                }
            }
            try await group.waitForAll()
        }
        for task in 0..<64 {
            #expect(try disk.read(at: UInt64(task * sector), count: sector) == Self.pattern(task, sector))
        }
    }

    @Test func sectorSizesAndEmptyDisksAreRefused() throws {
        let scratch = try Scratch()
        #expect(throws: DiskError.invalidSectorSize(1024)) { try MemoryDisk(sectorCount: 8, sectorSize: 1024) }
        #expect(throws: DiskError.invalidSize(bytes: 0, sectorSize: 512)) { try MemoryDisk(sectorCount: 0) }
        #expect(throws: DiskError.invalidSize(bytes: 1000, sectorSize: 512)) {
            try MemoryDisk(contents: [UInt8](repeating: 0, count: 1000))
        }
        #expect(throws: DiskError.invalidSectorSize(520)) {
            try FileDisk.create(path: scratch.file("a.img"), byteCount: 520 * 8, sectorSize: 520)
        }
        #expect(throws: DiskError.invalidSize(bytes: 6144, sectorSize: 4096)) {
            try FileDisk.create(path: scratch.file("b.img"), byteCount: 6144, sectorSize: 4096)
        }
        // A memory disk that ends inside a page.
        let small = try MemoryDisk(sectorCount: 3)
        try small.write(at: 1024, from: Self.pattern(1, 512))
        #expect(try small.read(at: 1024, count: 512) == Self.pattern(1, 512))
        #expect(throws: DiskError.outOfRange(byteOffset: 1536, count: 512, diskBytes: 1536)) {
            try small.read(at: 1536, count: 512)
        }
    }

    // MARK: Files only

    @Test func aNewImageIsSparseAndAGigabyteCostsAlmostNothing() throws {
        let scratch = try Scratch()
        let path = scratch.file("big.img")
        let disk = try FileDisk.create(path: path, byteCount: 1 << 30)
        #expect(disk.sectorCount == (1 << 30) / 512)
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? UInt64 == 1 << 30)
        #expect(try disk.allocatedBytes() < 1 << 20)
        // Writing one sector near the end costs about a block, not the gigabyte before it.
        try disk.write(at: (1 << 30) - 512, from: Self.pattern(1, 512))
        try disk.flush()
        #expect(try disk.allocatedBytes() < 1 << 20)
        #expect(try disk.read(at: 1 << 29, count: 4096) == [UInt8](repeating: 0, count: 4096))
    }

    @Test func discardPunchesHolesThatFreeBlocks() throws {
        let scratch = try Scratch()
        let disk = try FileDisk.create(path: scratch.file("holes.img"), byteCount: 8 << 20)
        try disk.write(at: 0, from: Self.pattern(5, 8 << 20))
        try disk.flush()
        let full = try disk.allocatedBytes()
        #expect(full >= 8 << 20)
        try disk.discard(at: 1 << 20, count: 4 << 20)
        let after = try disk.allocatedBytes()
        #expect(after <= full - (4 << 20), "\(full) → \(after) bytes allocated")
        #expect(disk.punchesHoles.load())
        #expect(try disk.read(at: 1 << 20, count: 4 << 20) == [UInt8](repeating: 0, count: 4 << 20))
        #expect(try disk.read(at: 5 << 20, count: 4096) == Array(Self.pattern(5, 8 << 20)[(5 << 20)..<(5 << 20) + 4096]))
    }

    @Test(arguments: [FileDisk.DirectIO.off, .preferred])
    func discardWritesZerosWhereHolesCannotBePunched(_ direct: FileDisk.DirectIO) throws {
        let scratch = try Scratch()
        let disk = try FileDisk.create(path: scratch.file("zeros.img"), byteCount: 3 << 20, directIO: direct)
        try disk.write(at: 0, from: Self.pattern(9, 3 << 20))
        // As after the file system answered EOPNOTSUPP once.
        disk.punchesHoles.store(false)
        // More than one chunk of zeros, ending off a chunk boundary.
        try disk.discard(at: 512, count: (2 << 20) + 1024)
        let bytes = try disk.read(at: 0, count: 3 << 20)
        #expect(bytes[0..<512] == Self.pattern(9, 3 << 20)[0..<512])
        #expect(bytes[512..<(2 << 20) + 1536].allSatisfy { $0 == 0 })
        #expect(bytes[((2 << 20) + 1536)...] == Self.pattern(9, 3 << 20)[((2 << 20) + 1536)...])
        #expect(disk.byteCount == 3 << 20)
    }

    @Test func existingImagesOpenAtTheirSizeAndOddSizesAreRefused() throws {
        let scratch = try Scratch()
        let path = scratch.file("old.img")
        do {
            let disk = try FileDisk.create(path: path, byteCount: 1 << 20, sectorSize: 4096)
            try disk.write(at: 4096, from: Self.pattern(2, 4096))
        }
        #expect(throws: DiskError.io(operation: "open", errno: EEXIST)) { try FileDisk.create(path: path, byteCount: 4096) }
        let reopened = try FileDisk.open(path: path, sectorSize: 4096)
        #expect(reopened.sectorCount == 256 && !reopened.isReadOnly && reopened.path == path)
        #expect(try reopened.read(at: 4096, count: 4096) == Self.pattern(2, 4096))
        // 1 MiB is whole 512-byte sectors too: the same bytes, seen with another sector size.
        #expect(try FileDisk.open(path: path).sectorCount == 2048)
        let odd = scratch.file("odd.img")
        #expect(FileManager.default.createFile(atPath: odd, contents: Data(count: 1000)))
        #expect(throws: DiskError.invalidSize(bytes: 1000, sectorSize: 512)) { try FileDisk.open(path: odd) }
        let empty = scratch.file("empty.img")
        #expect(FileManager.default.createFile(atPath: empty, contents: Data()))
        #expect(throws: DiskError.invalidSize(bytes: 0, sectorSize: 512)) { try FileDisk.open(path: empty) }
        #expect(throws: DiskError.io(operation: "open", errno: ENOENT)) { try FileDisk.open(path: scratch.file("none")) }
    }

    @Test func aFileShrunkBehindTheDisksBackIsAnIOError() throws {
        let scratch = try Scratch()
        let path = scratch.file("shrunk.img")
        let disk = try FileDisk.create(path: path, byteCount: 64 << 10)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.truncate(atOffset: 32 << 10)
        try handle.close()
        let guest = try MappedMemory.anonymous(size: 4096)
        let buffer = try MemoryExtents(memory: guest, offset: 0, count: 4096)
        let errors = [
            #expect(throws: DiskError.self) { try disk.read(at: 48 << 10, count: 4096) },
            #expect(throws: DiskError.self) { try disk.read(at: 48 << 10, into: buffer) },
        ]
        for error in errors {
            guard case .io(_, EIO) = try #require(error) else {
                Issue.record("\(String(describing: error)) is not an I/O error")
                continue
            }
        }
    }

    /// Where each file system stands on `O_DIRECT`: ext4 and xfs take it; tmpfs does from
    /// Linux 6.6; others refuse it at `open` with EINVAL.
    @Test(arguments: ["temporary directory", "/dev/shm"])
    func directIOWorksOrSaysWhyNot(_ place: String) throws {
        let directory: String
        let scratch = try Scratch()
        if place == "/dev/shm" {
            guard FileManager.default.fileExists(atPath: "/dev/shm") else { return }
            directory = "/dev/shm/vmbus-disk-\(UInt64.random(in: 0...UInt64.max))"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        } else {
            directory = scratch.path
        }
        defer { if place == "/dev/shm" { try? FileManager.default.removeItem(atPath: directory) } }
        let path = directory + "/direct.img"
        let disk: FileDisk
        do {
            disk = try FileDisk.create(path: path, byteCount: 1 << 20, directIO: .required)
        } catch DiskError.directIOUnsupported(let refused, let reason) {
            #expect(refused == path && !reason.isEmpty)
            // Preferred falls back to the page cache on the same file.
            let fallback = try FileDisk.open(path: path, directIO: .preferred)
            #expect(!fallback.isDirect)
            return
        }
        #expect(disk.isDirect)
        let guest = try MappedMemory.anonymous(size: 64 * 4096)
        let aligned = try Self.scattered(8192, in: guest)
        for (n, extent) in aligned.extents.enumerated() {
            try guest.write(Self.pattern(n, extent.count)[...], at: extent.offset)
        }
        let written = try Self.contents(of: aligned)
        try disk.write(at: 4096, from: aligned)
        try disk.flush()
        #expect(try disk.read(at: 4096, count: 8192) == written)
        // Memory off the alignment O_DIRECT needs still works (through an aligned copy).
        let skewed = try MemoryExtents(memory: guest, offset: 3, count: 512)
        try disk.read(at: 4096, into: skewed)
        #expect(try Self.contents(of: skewed) == Array(written[0..<512]))
        try disk.write(at: 0, from: skewed)
        #expect(try disk.read(at: 0, count: 512) == Array(written[0..<512]))
        // A buffered reader of the same file sees what the direct writer wrote.
        #expect(try FileDisk.open(path: path, readOnly: true).read(at: 4096, count: 8192) == written)
    }

    @Test func gpaRangesBecomeCheckedMergedPieces() throws {
        let guest = try MappedMemory.anonymous(size: 8 * 4096)
        let range = try GpaRange(byteCount: 3 * 4096, byteOffset: 256, pfns: [2, 3, 6, 7])
        let buffer = try MemoryExtents(memory: guest, range: range)
        #expect(buffer.byteCount == 3 * 4096)
        #expect(
            buffer.extents == [.init(offset: 2 * 4096 + 256, count: 2 * 4096 - 256), .init(offset: 6 * 4096, count: 4096 + 256)])
        #expect(buffer.isAligned(memory: 256, length: 256) && !buffer.isAligned(memory: 512, length: 512))
        let outside = try GpaRange(byteCount: 4096, byteOffset: 0, pfns: [8])
        #expect(throws: MemoryError.pageOutOfRange(pfn: 8, pages: 8)) { try MemoryExtents(memory: guest, range: outside) }
        #expect(throws: MemoryError.outOfBounds(offset: 8 * 4096 - 1, count: 2, size: 8 * 4096)) {
            try MemoryExtents(memory: guest, offset: 8 * 4096 - 1, count: 2)
        }
    }
}
