import Testing
import VMBusChannel
import VMBusMemory
import VMBusRing
import VMBusWire

@Suite struct ChannelTests {
    @Test func inBandPacketsCrossBothWaysWithTheirIDsAndFlags() async throws {
        let pair = try ChannelPair()
        try await pair.guest.send(inBand: pattern(100)[...], transactionID: 7, completionRequested: true)
        try await pair.host.send(inBand: pattern(3, seed: 9)[...])
        let atHost = try pair.host.reader()
        let packet = try #require(await atHost.next())
        #expect(packet.descriptor.type == .dataInBand && packet.descriptor.transactionID == 7)
        #expect(packet.descriptor.flags.contains(.completionRequested))
        #expect(Array(packet.payload.prefix(100)) == pattern(100))
        #expect(packet.payload.count == 104)  // padded to 8 bytes
        let atGuest = try pair.guest.reader()
        #expect(Array(try #require(await atGuest.next()).payload.prefix(3)) == pattern(3, seed: 9))
        // The first packet into an empty ring signals; the host's statistics saw it.
        #expect(pair.signalCounts == (1, 1))
        #expect(pair.host.statistics.incoming.interrupts == 1)
    }

    @Test func aRequestGetsTheCompletionWithItsID() async throws {
        let pair = try ChannelPair()
        let host = pair.host
        let server = Task {
            try await host.receive { packet in
                let reply = packet.payload.map { $0 &+ 1 }
                try await host.send(completion: reply[...], transactionID: packet.descriptor.transactionID)
            }
        }
        let guestReader = Task { try await pair.guest.receive { _ in Issue.record("a completion leaked to the handler") } }
        for n in 0..<50 {
            let answer = try await pair.guest.request(pattern(16, seed: n)[...])
            #expect(answer == pattern(16, seed: n).map { $0 &+ 1 })
        }
        #expect(pair.guest.outstandingRequests == 0)
        #expect(pair.guest.statistics.completedRequests == 50)
        pair.host.close(.closedLocally)
        pair.guest.close(.closedLocally)
        #expect(try await server.value == .closedLocally)
        _ = try await guestReader.value
    }

    @Test func bogusCompletionIDsAreRejectedNotTrusted() async throws {
        let pair = try ChannelPair()
        // Ids the guest never handed out: zero, beyond the table, and a plausible small one.
        for id: UInt64 in [0, 1, 3, 1 << 40, .max] {
            try await pair.host.send(completion: pattern(8)[...], transactionID: id)
        }
        try await pair.host.send(inBand: pattern(8)[...])
        let reader = try pair.guest.reader()
        let first = try #require(await reader.next())
        #expect(first.descriptor.type == .dataInBand)
        #expect(pair.guest.statistics.rejectedCompletions == 5)
    }

    @Test func unknownCompletionsReachTheConsumerWhenAsked() async throws {
        var options = ChannelOptions()
        options.rejectUnknownCompletions = false
        let pair = try ChannelPair(guestOptions: options)
        try await pair.host.send(completion: pattern(8)[...], transactionID: 42)
        let packet = try #require(await pair.guest.reader().next())
        #expect(packet.descriptor.type == .completion && packet.descriptor.transactionID == 42)
    }

    @Test func aFullRingMakesTheSenderWaitUntilTheReaderFreesRoom() async throws {
        let pair = try ChannelPair(pages: 2)  // 4 KiB of data per ring
        var sent = 0
        while try pair.guest.trySend(inBand: pattern(1000, seed: sent)[...]) { sent += 1 }
        #expect(sent == 3)
        #expect(pair.guest.statistics.outgoing.outFullFirst == 1)
        // This send cannot fit: it sets pending_send_sz and waits for the host's signal.
        let guest = pair.guest
        let blocked = Task { try await guest.send(inBand: pattern(1000, seed: 3)[...]) }
        // Wait (yielding, not sleeping) until the sender's request is visible in the ring, as
        // the host would see it: pending_send_sz = packet + trailer.
        let pendingWord = pair.guestToHostControl + RingControlPage.pendingSendSizeOffset
        while try pair.memory.loadUInt32(at: pendingWord) == 0 { await Task.yield() }
        #expect(try pair.memory.loadUInt32(at: pendingWord) == UInt32(PacketSize.inBand(payload: 1000) + 8))
        #expect(pair.guest.statistics.blockedSends == 1)
        let reader = try pair.host.reader()
        for n in 0...3 {
            let packet = try #require(await reader.next())
            #expect(Array(packet.payload.prefix(1000)) == pattern(1000, seed: n))
        }
        try await blocked.value
        // The host's reads freed room and signalled once; the request was withdrawn.
        #expect(pair.host.statistics.incoming.intrInFull == 1)
        #expect(try pair.memory.loadUInt32(at: pendingWord) == 0)
    }

    @Test func aLongStreamThroughASmallRingArrivesInOrder() async throws {
        for delivery in [ChannelDelivery.batched, .perPacket] {
            var options = ChannelOptions()
            options.delivery = delivery
            let pair = try ChannelPair(pages: 2, hostOptions: options)
            let guest = pair.guest
            let count = 2000
            let writer = Task {
                for n in 0..<count { try await guest.send(inBand: pattern(200 + n % 300, seed: n)[...]) }
            }
            do {
                let reader = try pair.host.reader()
                for n in 0..<count {
                    let packet = try #require(await reader.next())
                    #expect(Array(packet.payload.prefix(200 + n % 300)) == pattern(200 + n % 300, seed: n))
                }
            }
            try await writer.value
            // The reader is gone: the channel has its ring, and exact counters, back.
            #expect(pair.host.statistics.incoming.packets == UInt64(count))
            _ = try pair.host.reader()  // and another reader may start (readerBusy otherwise)
        }
    }

    @Test func aBatchIsPublishedOnceAndSignalledOnce() async throws {
        let pair = try ChannelPair()
        let sent = try pair.guest.sendBatch { writer throws(ChannelError) in
            for n in 0..<10 { _ = try writer.write(inBand: pattern(32, seed: n)[...]) }
        }
        #expect(sent == 10)
        #expect(pair.signalCounts.toHost == 1)
        var seen: [[UInt8]] = []
        let drained = try pair.host.drain { _, payload in
            var bytes: [UInt8] = []
            for i in 0..<32 { bytes.append(payload[i]) }
            seen.append(bytes)
        }
        #expect(drained == 10)
        #expect(seen == (0..<10).map { pattern(32, seed: $0) })
    }

    @Test(arguments: [GpaDirectForm.pageBuffer, .multipage, .mpb])
    func gpaDirectPacketsCarryTheirRanges(_ form: GpaDirectForm) async throws {
        let pair = try ChannelPair()
        let ranges: [GpaRange] = switch form {
        case .pageBuffer: [try GpaRange(byteCount: 100, byteOffset: 8, pfns: [5]), try GpaRange(byteCount: 4096, byteOffset: 0, pfns: [9])]
        case .multipage: [try GpaRange(byteCount: 3 * 4096 - 16, byteOffset: 16, pfns: [1, 2, 3])]
        case .mpb: [try GpaRange(byteCount: 8192, byteOffset: 0, pfns: [7, 8]), try GpaRange(byteCount: 10, byteOffset: 0, pfns: [3])]
        }
        try await pair.guest.send(gpaDirect: ranges, payload: pattern(24)[...], form: form, transactionID: 5)
        let packet = try #require(await pair.host.reader().next())
        guard case .gpaDirect(let direct) = try packet.parse(strict: true) else {
            Issue.record("not a GPA-direct packet")
            return
        }
        #expect(direct.ranges == ranges)
        #expect(Array(direct.payload.prefix(24)) == pattern(24))
        #expect(direct.descriptor.transactionID == 5)
    }

    @Test func aMultipageFormNeedsExactlyOneRange() async throws {
        let pair = try ChannelPair()
        let two = [try GpaRange(byteCount: 10, byteOffset: 0, pfns: [1]), try GpaRange(byteCount: 10, byteOffset: 0, pfns: [2])]
        await #expect(throws: ChannelError.self) { try await pair.guest.send(gpaDirect: two, payload: [][...], form: .multipage) }
    }

    @Test func aCorruptRingClosesOnlyThatChannelAndTellsTheOwner() async throws {
        let pair = try ChannelPair()
        try await pair.guest.send(inBand: pattern(8)[...])
        // A hostile guest moves its write index to an impossible, unaligned value.
        try pair.memory.storeUInt32(0x123, at: pair.guestToHostControl + RingControlPage.writeIndexOffset)
        let reader = try pair.host.reader()
        #expect(await reader.next() == nil)
        guard case .ringCorrupted(.invalidIndex)? = reader.closeReason else {
            Issue.record("unexpected close reason \(String(describing: reader.closeReason))")
            return
        }
        #expect(pair.hostFaults.count == 1)
        await #expect(throws: ChannelError.self) { try await pair.host.send(inBand: pattern(8)[...]) }
        // The other channel object is untouched: the guest still sends into its ring.
        #expect(pair.guest.closeReason == nil)
    }

    @Test func closingWakesAWaitingRequestAndLaterSends() async throws {
        let pair = try ChannelPair()
        let guest = pair.guest
        let request = Task { () async throws(ChannelError) -> [UInt8] in try await guest.request(pattern(8)[...]) }
        // The request is written before it waits: once the host sees it, close.
        let packet = try #require(await pair.host.reader().next())
        #expect(packet.descriptor.transactionID == 1)
        pair.guest.close(.rescinded)
        await #expect(throws: ChannelError.closed(.rescinded)) { try await request.value }
        await #expect(throws: ChannelError.closed(.rescinded)) { try await guest.send(inBand: pattern(8)[...]) }
        #expect(await pair.guest.closed() == .rescinded)
    }

    @Test func oneReaderAtATime() throws {
        let pair = try ChannelPair()
        let reader = try pair.host.reader()
        #expect(throws: ChannelError.readerBusy) { try pair.host.reader() }
        #expect(throws: ChannelError.readerBusy) { try pair.host.drain { _, _ in } }
        _ = reader
    }

    @Test func tooLargePacketsAndBadOptionsAreRefused() async throws {
        let pair = try ChannelPair(pages: 2)
        let limit = pair.guest.maximumPacketLength
        await #expect(throws: ChannelError.packetTooLarge(length: limit + 8, limit: limit)) {
            try await pair.guest.send(inBand: [UInt8](repeating: 0, count: limit - 16 + 8)[...])
        }
        #expect(throws: ChannelError.self) { try FaultInjection(interruptDelayMicroseconds: 1001) }
        #expect(throws: ChannelError.self) { try FaultInjection(messageDelayMicroseconds: -1) }
    }

    @Test func faultInjectionDelaysStillDeliverEverything() async throws {
        var options = ChannelOptions()
        options.faultInjection = try FaultInjection(interruptDelayMicroseconds: 50, messageDelayMicroseconds: 20)
        let pair = try ChannelPair(hostOptions: options)
        for n in 0..<20 { try await pair.guest.send(inBand: pattern(8, seed: n)[...]) }
        let reader = try pair.host.reader()
        for n in 0..<20 { #expect(Array(try #require(await reader.next()).payload) == pattern(8, seed: n)) }
    }
}
