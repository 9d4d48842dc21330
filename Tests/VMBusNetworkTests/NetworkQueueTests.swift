import Testing
import VMBusChannel
import VMBusGuest
import VMBusHost
import VMBusLoopback
import VMBusMemory
import VMBusNetwork
import VMBusWire

@Suite struct NetworkQueueTests {
    /// Many more frames than the receive buffer has slots cross one at a time: each slot the
    /// guest completes is lent again.
    @Test func receiveSlotsComeBackWithTheGuestsCompletions() async throws {
        var configuration = NetvscDriver.Configuration()
        configuration.receiveBufferBytes = 64 << 10  // 36 sub-allocations: 20 for frames
        let pair = try await NetworkPair.make(configuration: configuration)
        let slots = pair.device.freeReceiveSlots
        #expect(slots > 0 && slots < 64)
        let received = Inbox<[UInt8]>()
        Task {
            for await frame in pair.system.frames() { received.put(frame) }
        }
        for n in 0..<(slots * 10) {
            let frame = flowFrame(flow: n, n: n)
            pair.wire.send(frame[...])
            #expect(try await received.take() == frame)
        }
        #expect(pair.device.statistics[0]?.rxDropped == 0)
    }

    /// vRSS (11 §6): four queues open on both sides; frames of many flows cross both ways
    /// byte-exact, spread over more than one queue in each direction, each flow in order.
    @Test func framesOfManyFlowsSpreadOverFourQueues() async throws {
        var configuration = NetvscDriver.Configuration()
        configuration.queues = 4
        let pair = try await NetworkPair.make(queues: 4, configuration: configuration)
        guard try await within(seconds: 10, { await pair.nic.queuesReady() }) != nil else { throw TimedOut() }
        #expect(pair.nic.queueCount == 4)
        #expect(Set(pair.device.statistics.keys) == [0, 1, 2, 3])
        let flows = 64
        let sent = (0..<(flows * 8)).map { flowFrame(flow: $0 % flows, n: $0, length: 60 + $0 % 1400) }
        for (from, to) in [(pair.wire, pair.system), (pair.system, pair.wire)] {
            let arrived = Task {
                var got: [[UInt8]] = []
                for await frame in to.frames() {
                    got.append(frame)
                    if got.count == sent.count { break }
                }
                return got
            }
            for frame in sent { from.send(frame[...]) }
            guard let got = try await within(seconds: 10, { await arrived.value }) else { throw TimedOut() }
            // Queues run side by side: all frames arrive, each flow's in the order sent.
            for flow in 0..<flows {
                let key = flowFrame(flow: flow, n: 0)[26..<38]
                #expect(got.filter { $0[26..<38] == key } == sent.filter { $0[26..<38] == key })
            }
            #expect(got.count == sent.count)
        }
        let hostRX = pair.device.statistics.values.filter { $0.rxPackets > 0 }.count
        let guestTX = pair.nic.statistics.values.filter { $0.txPackets > 0 }.count
        let guestRX = pair.nic.statistics.values.filter { $0.rxPackets > 0 }.count
        #expect(hostRX > 1 && guestRX > 1, "host → guest used \(hostRX) queues")
        #expect(guestTX > 1, "guest → host used \(guestTX) queues")
        #expect(pair.device.statistics.values.reduce(0) { $0 + $1.txPackets } == UInt64(sent.count))
        #expect(pair.nic.statistics.values.reduce(0) { $0 + $1.rxPackets } == UInt64(sent.count))
    }
}
