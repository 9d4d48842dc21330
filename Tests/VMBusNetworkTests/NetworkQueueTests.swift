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
}
