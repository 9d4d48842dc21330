import Foundation
import Testing
import VMBusChannel
import VMBusDevices
import VMBusGuest
import VMBusHost
import VMBusLocal
import VMBusMemory
import VMBusWire

/// What a Linux guest does on `vmbus ctl shutdown`: it answers the request (status 0, doorbell)
/// and powers off at once, so its GOODBYE — or its socket closing — arrives right behind the
/// signal. The host must read what the guest wrote before it tears the channels down.
@Suite(.serialized) struct AnswerBeforeGoodbyeTests {
    enum Leaving: CaseIterable { case goodbye, hangUp }

    @Test(arguments: Leaving.allCases)
    func anAnswerWrittenJustBeforeTheGuestLeavesIsDelivered(_ leaving: Leaving) async throws {
        let path = socketPath()
        let hosts = Locked<[ShutdownHost]>([])
        let host = try LocalHost(path: path) { _ in
            let shutdown = ShutdownHost()
            hosts.withLock { $0.append(shutdown) }
            return [shutdown.device]
        }
        host.start()
        defer { host.stop() }
        let rounds = 200
        var answered = 0
        for round in 0..<rounds {
            let guest = try LocalGuest.connect(path: path, memoryBytes: 4 << 20)
            let service = ShutdownGuest { _, _ in
                switch leaving {
                case .goodbye: guest.disconnect()
                case .hangUp: guest.hangUp()
                }
            }
            guest.bus.register(ICGuestDriver(service))
            _ = try await guest.bus.connect()
            await guest.bus.settle()
            let shutdown = try #require(hosts.withLock { $0.count == round + 1 ? $0.last : nil })
            #expect(await shutdown.device.waitForNegotiation(timeout: .seconds(30)))
            do {
                #expect(try await shutdown.request([], message: "round \(round)") == .ok)
                answered += 1
            } catch {
                Issue.record("round \(round): \(error)")
            }
            _ = await guest.ended()
            await host.idle()
        }
        #expect(answered == rounds)
    }
}
