import Foundation
import Testing
import VMBusCapture
import VMBusChannel
import VMBusMemory
import VMBusWire

/// A guest channel and a host channel over one small ring pair, both captured into one file:
/// the packets recorded are exactly the bytes each reader took from the ring, whichever way
/// they were written, across the rings' wrap.
@Suite struct ChannelCaptureTests {
    static func bytes(_ count: Int, seed: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ seed) } }

    @Test func capturedPacketsAreTheBytesThePeerReads() throws {
        let path = temporaryCapturePath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let sink = try CaptureSink(path: path, snapLength: 1 << 16, capacity: 4096, startWriter: false)
        // Two pages per ring: 4 KiB of data, so the packets below wrap many times.
        let memory = try MappedMemory.anonymous(size: 4 * MappedMemory.pageSize)
        try ChannelRings.initialize(memory, downstreamPageOffset: 2)
        let g = try ChannelRings.rings(in: memory, downstreamPageOffset: 2, side: .guest)
        let h = try ChannelRings.rings(in: memory, downstreamPageOffset: 2, side: .host)
        let rung = Locked((toHost: 0, toGuest: 0))
        let guest = try Channel(
            relid: 9, outgoing: g.outgoing, incoming: g.incoming, doorbell: ClosureDoorbell { rung.withLock { $0.toHost += 1 } },
            capture: CaptureTap(recorder: sink, connection: 1, observer: .guest))
        let host = try Channel(
            relid: 9, outgoing: h.outgoing, incoming: h.incoming, doorbell: ClosureDoorbell { rung.withLock { $0.toGuest += 1 } },
            capture: CaptureTap(recorder: sink, connection: 1, observer: .host))
        let reader = try guest.reader()

        var hostRead: [[UInt8]] = []
        for round in 0..<40 {
            let payload = Self.bytes(1 + (round * 97) % 700, seed: round)
            switch round % 4 {
            case 0:
                #expect(try guest.trySend(inBand: payload[...], transactionID: UInt64(round), completionRequested: true))
            case 1:
                let sent = try guest.sendBatch { writer throws(ChannelError) in
                    _ = try writer.write(inBand: payload.prefix(100), transactionID: 1)
                    _ = try writer.write(leadingWord: 0x1122_3344_5566_7788, payload: payload[...])
                }
                #expect(sent == 2)
            case 2:
                let range = try GpaRange(byteCount: 8192, byteOffset: 16, pfns: [0x100, 0x101, 0x102])
                let packet = try PacketEncoder.gpaDirect(ranges: [range], payload: payload.prefix(64), transactionID: UInt64(round))
                #expect(try guest.trySend(encoded: packet))
            default:
                #expect(try guest.trySend(completion: payload[...], transactionID: UInt64(round)))
            }
            _ = try host.drainPackets { _, span in
                var copy: [UInt8] = []
                for i in span.indices { copy.append(span[i]) }
                hostRead.append(copy)
            }
            #expect(try host.trySend(completion: Self.bytes(round * 31 % 300, seed: 5)[...], transactionID: UInt64(1000 + round)))
            // The guest's reader takes the host's completions (unknown ids: dropped, counted).
            while reader.nextIfReady({ _, _ in 0 }) != nil {}
        }
        host.interrupt()
        guest.close(.closedLocally)
        host.close(.closedByPeer)
        let signals = rung.withLock { $0 }
        try sink.close()

        let records = try CaptureFile(path: path).records
        func packets(_ observer: CaptureObserver, _ direction: CaptureDirection) -> [[UInt8]] {
            records.filter { $0.header.kind == .ringPacket && $0.header.observer == observer && $0.header.direction == direction }
                .map { Array($0.data) }
        }
        #expect(hostRead.count == 50)
        #expect(packets(.guest, .guestToHost) == hostRead)
        #expect(packets(.host, .guestToHost) == hostRead)
        #expect(packets(.host, .hostToGuest).count == 40)
        #expect(packets(.guest, .hostToGuest) == packets(.host, .hostToGuest))
        #expect(records.filter { $0.header.kind == .ringPacket }.allSatisfy { $0.header.relid == 9 && $0.header.flags == [] })
        // Doorbells as rung, each recorded by the side that rang it; the host's one interrupt.
        let doorbells = records.filter { $0.header.kind == .doorbell }
        #expect(doorbells.filter { $0.header.observer == .guest && $0.header.direction == .guestToHost }.count == signals.toHost)
        #expect(doorbells.filter { $0.header.observer == .host && $0.header.direction == .hostToGuest }.count == signals.toGuest)
        #expect(doorbells.filter { $0.header.observer == .host && $0.header.direction == .guestToHost }.count == 1)
        #expect(records.filter { $0.header.kind == .channelOpen }.map(\.header.observer) == [.guest, .host])
        let closes = records.filter { $0.header.kind == .channelClose }
        #expect(closes.map(\.header.observer) == [.guest, .host])
        #expect(closes.map { Array($0.data) } == [[0, 0, 0, 0], [1, 0, 0, 0]])
    }
}
