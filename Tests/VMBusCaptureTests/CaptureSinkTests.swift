import Foundation
import Testing
import VMBusCapture
import VMBusWire

/// A temporary capture path, removed when the test ends.
func temporaryCapturePath(_ name: String = #function) -> String {
    let base = name.filter { $0.isLetter || $0.isNumber }
    return FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-\(base)-\(UUID().uuidString).pcapng").path
}

@Suite struct CaptureSinkTests {
    @Test func aFullQueueDropsAndCountsInsteadOfBlocking() throws {
        let path = temporaryCapturePath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        // No writer thread: nothing drains, so the queue fills for certain.
        let sink = try CaptureSink(path: path, snapLength: 64, capacity: 4, startWriter: false)
        let tap = CaptureTap(recorder: sink, connection: 7, observer: .host)
        for n in 0..<10 { tap.message(outgoing: n % 2 == 0, port: 2, [UInt8(n), 0, 0, 0, 0, 0, 0, 0][...]) }
        #expect(sink.droppedRecords == 6)
        let summary = try sink.close()
        #expect(summary == CaptureSummary(records: 5, dropped: 6, connections: 1))

        let file = try CaptureFile(path: path)
        #expect(file.records.map(\.header.kind) == [.channelMessage, .channelMessage, .channelMessage, .channelMessage, .drops])
        // The first four records made it, in order; the rest were dropped.
        #expect(file.records.prefix(4).map { $0.data.first } == [0, 1, 2, 3])
        #expect(file.records.prefix(4).map(\.header.direction) == [.hostToGuest, .guestToHost, .hostToGuest, .guestToHost])
        let drops = file.records[4]
        #expect(drops.header.connection == 7)
        #expect(Array(drops.data) == [6, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0])
        #expect(file.statistics[7] == CaptureFile.Statistics(received: 5, dropped: 6))
    }

    @Test func theSnapLengthCutsDataAndKeepsTheOriginalLength() throws {
        let path = temporaryCapturePath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let sink = try CaptureSink(path: path, snapLength: 8, capacity: 16, startWriter: false)
        let tap = CaptureTap(recorder: sink, connection: 1, observer: .guest)
        let long = (0..<20).map { UInt8($0) }
        tap.message(outgoing: true, port: 4, long[...])
        tap.message(outgoing: false, port: 2, long.prefix(8))
        try sink.close()

        var reader = PcapngReader([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
        let packets = try reader.readAll().compactMap { block -> (UInt32, Int)? in
            guard case .enhancedPacket(_, _, let original, let data, _) = block else { return nil }
            return (original, data.count)
        }
        // Header (24) + data: cut to 8 of 20, then whole.
        #expect(packets.map(\.0) == [44, 32])
        #expect(packets.map(\.1) == [32, 32])

        let file = try CaptureFile(path: path)
        #expect(file.records[0].header.flags == .truncated)
        #expect(file.records[0].header.originalLength == 20)
        #expect(file.records[0].header.port == 4)
        #expect(file.records[0].header.direction == .guestToHost)
        #expect(Array(file.records[0].data) == Array(long.prefix(8)))
        #expect(file.records[1].header.flags == [])
        #expect(file.records[1].header.direction == .hostToGuest)
    }

    @Test func eachConnectionGetsItsOwnInterface() throws {
        let path = temporaryCapturePath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let sink = try CaptureSink(path: path, snapLength: 16, capacity: 16, startWriter: false)
        for connection: UInt32 in [3, 9, 3] {
            CaptureTap(recorder: sink, connection: connection, observer: .host).doorbell(outgoing: true, relid: connection)
        }
        sink.flush()
        CaptureTap(recorder: sink, connection: 9, observer: .host).channelClosed(relid: 1, reason: .rescinded)
        try sink.close()

        var reader = PcapngReader([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
        var interfaces = 0
        var packetInterfaces: [UInt32] = []
        for block in try reader.readAll() {
            if case .interfaceDescription = block { interfaces += 1 }
            if case .enhancedPacket(let interface, _, _, _, _) = block { packetInterfaces.append(interface) }
        }
        #expect(interfaces == 2)
        #expect(packetInterfaces == [0, 1, 0, 1])
        let file = try CaptureFile(path: path)
        #expect(file.records.map(\.header.connection) == [3, 9, 3, 9])
        #expect(Array(file.records[3].data) == [2, 0, 0, 0])
        #expect(file.statistics[3] == CaptureFile.Statistics(received: 2, dropped: 0))
        #expect(file.statistics[9] == CaptureFile.Statistics(received: 2, dropped: 0))
        // Timestamps are nanoseconds since 1970 and never go backwards within the file.
        let times = file.records.map(\.timestamp)
        #expect(times == times.sorted())
        #expect(times[0] > 1_700_000_000 * 1_000_000_000)
    }

    @Test func everyRecordIsWrittenOrCountedWithTheWriterRunning() throws {
        let path = temporaryCapturePath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let sink = try CaptureSink(path: path, snapLength: 16, capacity: 8)
        let tap = CaptureTap(recorder: sink, connection: 1, observer: .host)
        // Far more records than slots, racing the writer thread: whatever it could not keep up
        // with is counted, never lost silently.
        for n in 0..<1000 { tap.message(outgoing: true, port: 2, [UInt8(truncatingIfNeeded: n)][...]) }
        let summary = try sink.close()
        #expect(summary.dropped == sink.droppedRecords)
        let file = try CaptureFile(path: path)
        let messages = file.records.filter { $0.header.kind == .channelMessage }.count
        let dropped = file.records.filter { $0.header.kind == .drops }.reduce(UInt64(0)) { total, record in
            total + record.data.prefix(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        }
        #expect(UInt64(messages) + dropped == 1000)
        #expect(dropped == sink.droppedRecords)
    }
}
