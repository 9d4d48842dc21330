import Dispatch
import Glibc
import Testing
import VMBusMemory
import VMBusRing
import VMBusWire

@Suite struct MappedMemoryTests {
    @Test func accessesOutsideTheMappingAreErrors() throws {
        let memory = try MappedMemory.anonymous(size: 8192)
        var buffer = [UInt8](repeating: 0, count: 16)
        #expect(throws: MemoryError.outOfBounds(offset: 8190, count: 16, size: 8192)) {
            try memory.read(at: 8190, count: 16, into: &buffer)
        }
        #expect(throws: MemoryError.outOfBounds(offset: -1, count: 1, size: 8192)) { try memory.write([1][...], at: -1) }
        #expect(throws: MemoryError.outOfBounds(offset: Int.max, count: 4, size: 8192)) {
            try memory.loadUInt32(at: Int.max)
        }
        #expect(throws: MemoryError.invalidSize(100)) { try MappedMemory.anonymous(size: 100) }
        #expect(throws: MemoryError.invalidSize(0)) { try MappedMemory.memfd(name: "x", size: 0) }
        try memory.write([1, 2, 3][...], at: 8189)
        try memory.read(at: 8189, count: 3, into: &buffer)
        #expect(Array(buffer[0..<3]) == [1, 2, 3])
    }

    @Test func aFileMappedTwiceSharesItsBytes() throws {
        let path = "/tmp/swift-vmbus-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(path) }
        let a = try MappedMemory.file(path: path, size: 8192, create: true)
        let b = try MappedMemory.file(path: path)
        #expect(b.size == 8192)
        try a.storeUInt32(0xDEAD_BEEF, at: 4096)
        #expect(try b.loadUInt32(at: 4096) == 0xDEAD_BEEF)
    }

    @Test func ringOutsideItsMappingIsRefused() throws {
        let memory = try MappedMemory.anonymous(size: 16384)
        #expect(throws: MemoryError.outOfBounds(offset: 8192, count: 16384, size: 16384)) {
            try SharedRingMemory(memory: memory, offset: 8192, ringSize: 16384)
        }
        #expect(throws: MemoryError.invalidSize(4096)) { try SharedRingMemory(memory: memory, offset: 0, ringSize: 4096) }
    }
}

@Suite struct SharedRingTests {
    /// A wrapped packet written through a double mapping reads back through a single mapping of
    /// the same memfd: the two views agree byte for byte.
    @Test func doubleAndSingleMappingsAgreeAcrossTheWrap() throws {
        let memfd = try MappedMemory.memfd(name: "ring", size: 16384)
        let fd = try #require(memfd.fileDescriptor)
        let double = try SharedRingMemory.doubleMapped(fileDescriptor: fd, offset: 0, ringSize: 16384)
        let single = try SharedRingMemory(memory: memfd, offset: 0, ringSize: 16384)
        #expect(double.isDoubleMapped && !single.isDoubleMapped)
        double.initializeControlPage()
        double.store(.writeIndex, 12224, ordering: .relaxed)
        double.store(.readIndex, 12224, ordering: .relaxed)
        var writer = try OutgoingRing(memory: double)
        var reader = try IncomingRing(memory: single)
        let payload = [UInt8](1...200)
        #expect(try writer.write(payload: payload[...]))
        #expect(try writer.commit())
        let packet = try #require(try reader.next())
        var buffer: [UInt8] = []
        reader.copyPayload(of: packet, into: &buffer)
        #expect(buffer == payload)
        #expect(single.load(.writeIndex, ordering: .acquiring) == (12224 + 224) % 12288)
    }

    /// Writes from the streaming threshold up take plain or non-temporal stores: with each kind
    /// fixed and with the adaptive choice, sizes either side of the threshold and odd tails, at
    /// 8-byte aligned starts that are and are not 16-byte aligned, wrapped and not, through a
    /// double and a single mapping of one memfd, read back exactly.
    @Test(arguments: LargeWriteStores.allCases)
    func largeWritesAcrossTheWrapReadBackExactly(stores: LargeWriteStores) throws {
        let ringSize = 4096 + 65536
        let memfd = try MappedMemory.memfd(name: "ring", size: ringSize)
        let fd = try #require(memfd.fileDescriptor)
        let double = try SharedRingMemory.doubleMapped(fileDescriptor: fd, offset: 0, ringSize: ringSize)
        let single = try SharedRingMemory(memory: memfd, offset: 0, ringSize: ringSize)
        double.largeWriteStores = stores
        single.largeWriteStores = stores
        let threshold = SharedRingMemory.streamingThreshold
        let pattern = (0..<(65536 + 256)).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ $0 >> 8) }
        var buffer: [UInt8] = []
        var cases = 0
        for size in [threshold - 1, threshold, threshold + 8, threshold + 61, 16384, 16384 + 40, 60000] {
            for start in [0, 8, 16, 24, 65536 - 8, 65536 - 16, 65536 - 4096 - 8, 65536 - size / 2] where start % 8 == 0 {
                for (writer, reader) in [(double, single), (single, double), (single, single)] {
                    let bytes = pattern[(cases % 256)..<(cases % 256 + size)]
                    writer.copyIn(to: start, from: bytes)
                    if buffer.count != size { buffer = [UInt8](repeating: 0, count: size) }
                    reader.copyOut(from: start, count: size, into: &buffer, at: 0)
                    #expect(buffer[...] == bytes, "size \(size) at \(start)")
                    cases += 1
                }
            }
        }
        #expect(cases > 100)
    }

    /// The memfd ring benchmarks use: packets of every size class cross the wrap many times,
    /// each read back whole both in place (one span, even across the wrap) and copied out.
    @Test func anAnonymousDoubleMappedRingIsContiguousAcrossItsWrap() throws {
        let ring = try SharedRingMemory.doubleMappedAnonymous(ringSize: 4096 + 8192)
        #expect(ring.isDoubleMapped && ring.dataSize == 8192)
        ring.initializeControlPage()
        var writer = try OutgoingRing(memory: ring)
        var reader = try IncomingRing(memory: ring)
        var wrapped = 0
        var copy: [UInt8] = []
        for round in 0..<400 {
            let payload = (0..<(round * 37 % 3000 + 1)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ round) }
            #expect(try writer.write(transactionID: UInt64(round), payload: payload[...]))
            #expect(writer.uncommittedBytes > 0)
            _ = try writer.commit()
            let packet = try #require(try reader.next())
            if packet.offset + packet.length > ring.dataSize { wrapped += 1 }
            #expect(packet.descriptor.transactionID == UInt64(round))
            // `nil` would mean the wrapping packet was not contiguous.
            let inPlace: Bool? = reader.withPayload(of: packet) { span in (0..<payload.count).allSatisfy { span[$0] == payload[$0] } }
            reader.copyPayload(of: packet, into: &copy)
            #expect(inPlace == true && Array(copy.prefix(payload.count)) == payload)
            #expect(reader.uncommittedBytes == packet.length + 8)
            _ = try reader.commit()
        }
        #expect(wrapped > 10)
    }

    /// Producer and consumer threads stream sequence-numbered, checksummed packets of varying
    /// sizes through one shared ring. Waiting is by spinning with sched_yield, never sleeping.
    @Test func twoThreadsStreamEveryPacketIntact() async throws {
        let long = getenv("LONG_TESTS") != nil
        let count = long ? 5_000_000 : 50_000
        let memory = try MappedMemory.anonymous(size: 4096 + 65536)
        let ring = try SharedRingMemory(memory: memory, offset: 0, ringSize: 4096 + 65536)
        ring.initializeControlPage()
        let done = DispatchSemaphore(value: 0)
        // What the consumer found, shared with the producer thread.
        let outcome = Locked<(received: Int, failure: String?)>((0, nil))
        let consumer = Thread {
            do {
                var reader = try IncomingRing(memory: ring)
                var buffer: [UInt8] = []
                var expected: UInt64 = 0
                while expected < UInt64(count) {
                    guard let packet = try reader.next() else {
                        _ = try reader.commit()
                        if outcome.withLock({ $0.failure != nil }) { break }
                        sched_yield()
                        continue
                    }
                    reader.copyPayload(of: packet, into: &buffer)
                    let size = Int(expected % 300)
                    if packet.descriptor.transactionID != expected || buffer.count < size
                        || buffer.prefix(size) != payload(expected, size) {
                        outcome.withLock { $0.failure = "packet \(expected) corrupt" }
                        break
                    }
                    expected += 1
                    if expected % 64 == 0 { _ = try reader.commit() }
                }
                _ = try reader.commit()
                outcome.withLock { $0.received = Int(expected) }
            } catch {
                outcome.withLock { $0.failure = "consumer: \(error)" }
            }
            done.signal()
        }
        consumer.start()
        // The producer spins too, so it runs on a thread of its own as well: on the pool it
        // would hold one of two threads for the whole stream (seconds under the thread
        // sanitizer), and every other test would wait behind it.
        let finished = Locked<CheckedContinuation<String?, Never>?>(nil)
        let producer = Thread {
            var failure: String?
            do {
                var writer = try OutgoingRing(memory: ring)
                var sequence: UInt64 = 0
                while sequence < UInt64(count) && outcome.withLock({ $0.failure == nil }) {
                    if try writer.write(transactionID: sequence, payload: payload(sequence, Int(sequence % 300))) {
                        sequence += 1
                        if sequence % 16 == 0 { _ = try writer.commit() }
                    } else {
                        _ = try writer.commit()
                        sched_yield()
                    }
                }
                _ = try writer.commit()
            } catch {
                failure = "producer: \(error)"
                // The consumer waits for packets that will not come.
                outcome.withLock { $0.failure = $0.failure ?? "producer stopped" }
            }
            done.wait()
            consumer.join()
            finished.withLock { $0 }?.resume(returning: failure)
        }
        let producerFailure: String? = await withCheckedContinuation { continuation in
            finished.withLock { $0 = continuation }
            producer.start()
        }
        // It has resumed us and is ending: joined so that no thread outlives the test.
        producer.join()
        let (received, failure) = outcome.withLock { $0 }
        #expect(producerFailure == nil, "\(producerFailure ?? "")")
        #expect(failure == nil, "\(failure ?? "")")
        #expect(received == count)
    }
}

/// The bytes of every packet: byte `i` of packet `s` is `s·2654435761 + 7i` (mod 256), so
/// packet `s` is row `s·2654435761 mod 256` of this table, cut to its size. Made once: under
/// the thread sanitizer, building 50,000 payloads byte by byte took seconds.
let payloadRows: [[UInt8]] = (0..<256).map { row in
    (0..<300).map { UInt8(truncatingIfNeeded: row &+ $0 &* 7) }
}

/// Deterministic bytes for packet `sequence`.
func payload(_ sequence: UInt64, _ size: Int) -> ArraySlice<UInt8> {
    payloadRows[Int(truncatingIfNeeded: sequence &* 2_654_435_761) & 0xFF].prefix(size)
}

/// A thread running `body` (Foundation-free).
final class Thread: @unchecked Sendable {
    private let body: () -> Void
    private var handle = pthread_t()
    init(_ body: @escaping () -> Void) { self.body = body }
    func join() {
        pthread_join(self.handle, nil)
    }

    func start() {
        let box = Unmanaged.passRetained(self)
        pthread_create(&self.handle, nil, { context in
            let thread = Unmanaged<Thread>.fromOpaque(context!).takeRetainedValue()
            thread.body()
            return nil
        }, box.toOpaque())
    }
}

@Suite struct PageViewTests {
    @Test func scatteredPagesAppearContiguousAndShared() throws {
        let guest = try MappedMemory.memfd(name: "guest", size: 16 * 4096)
        for page in 0..<16 { try guest.storeUInt32(UInt32(page), at: page * 4096) }
        let fd = try #require(guest.fileDescriptor)
        let view = try MappedMemory.mapPages(of: fd, memorySize: guest.size, pfns: [7, 3, 4, 5, 15])
        #expect(view.size == 5 * 4096)
        let seen = try (0..<5).map { try view.loadUInt32(at: $0 * 4096) }
        #expect(seen == [7, 3, 4, 5, 15])
        // Writes through the view land in the guest's pages.
        try view.storeUInt32(0xFEED, at: 4096 + 8)
        #expect(try guest.loadUInt32(at: 3 * 4096 + 8) == 0xFEED)
    }

    @Test func pagesOutsideGuestMemoryAreRefused() throws {
        let guest = try MappedMemory.memfd(name: "guest", size: 4 * 4096)
        let fd = try #require(guest.fileDescriptor)
        #expect(throws: MemoryError.pageOutOfRange(pfn: 4, pages: 4)) {
            try MappedMemory.mapPages(of: fd, memorySize: guest.size, pfns: [0, 1, 4])
        }
        #expect(throws: MemoryError.pageOutOfRange(pfn: UInt64.max, pages: 4)) {
            try MappedMemory.mapPages(of: fd, memorySize: guest.size, pfns: [UInt64.max])
        }
    }
}
