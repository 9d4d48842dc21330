import Testing
import VMBusChannel
@testable import VMBusDevices
import VMBusGuest
import VMBusHost
import VMBusLoopback
import VMBusMemory
import VMBusWire

/// Requests to a guest that stopped reading: each still fails with a timeout, in turn, once
/// the ring has filled and a request can no longer even be written (it then waits for room in
/// a task of its own, which must not hold up its own timeout or the next request's).
@Suite struct ICTimeoutTests {
    @Test func requestsToAGuestThatStoppedReadingTimeOutOneAfterAnother() async throws {
        let host = ICHostDevice(
            classID: DeviceClass.kvp.classID, instance: .zero, serviceVersions: [ICVersion(4, 0)], timeout: .milliseconds(40))
        let driver = ICLateAnswerTests.SilentDriver()
        let bus = try LoopbackBus()
        bus.host.register(host)
        bus.guest.register(driver)
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        // The guest answers the negotiation, then reads nothing more.
        var channels = driver.opened.makeAsyncIterator()
        let channel = try #require(await channels.next())
        let reader = try channel.reader()
        let request = try #require(await reader.next())
        let (answer, _) = try ICNegotiation.respond(
            to: request.payload, framework: ICVersions.linuxFramework, service: [ICVersion(4, 0)])
        try await channel.send(inBand: answer[...], transactionID: request.descriptor.transactionID)
        #expect(await host.waitForNegotiation(timeout: .seconds(30)))

        // 24 requests of 2 KiB: the 16 KiB ring is full after about seven.
        let body = [UInt8](repeating: 0x42, count: 2048)
        var timedOut = 0
        for _ in 0..<24 {
            do {
                _ = try await host.transact(.kvpExchange, body: body)
                Issue.record("a guest that reads nothing answered")
            } catch .timedOut {
                timedOut += 1
            } catch {
                Issue.record("expected a timeout, got \(error)")
            }
        }
        #expect(timedOut == 24)
        // The ring really filled: later requests found no room and waited for it.
        let hostChannel = try #require(host.state.withLock { $0.session?.channel })
        #expect(hostChannel.statistics.outgoing.outFullTotal > 0)
        withExtendedLifetime((bus, reader)) {}
    }
}
