import Testing
import VMBusChannel
@testable import VMBusDevices
import VMBusGuest
import VMBusHost
import VMBusLoopback
import VMBusMemory
import VMBusWire

/// The negotiation answer that lands in the instant between the host's timeout and the
/// record of it. The uio tests lost it under the thread sanitizer: dropped as stale, the
/// service stayed failed although the guest had answered.
@Suite struct ICLateAnswerTests {
    /// Opens the service's channel and hands it over, answering nothing itself.
    final class SilentDriver: GuestDriver {
        let name = "silent"
        let classes = [DeviceClass.kvp.classID]
        let opened: AsyncStream<Channel>
        let continuation: AsyncStream<Channel>.Continuation
        init() { (self.opened, self.continuation) = AsyncStream.makeStream(of: Channel.self) }
        func probe(_ device: GuestDevice, bus: GuestBus) async throws {
            self.continuation.yield(try await bus.open(device.relid, pages: .utility))
        }
        func remove(_ device: GuestDevice, bus: GuestBus) async {}
    }

    @Test func anAnswerRightAfterTheTimeoutStillCompletesTheNegotiation() async throws {
        let host = ICHostDevice(
            classID: DeviceClass.kvp.classID, instance: .zero, serviceVersions: [ICVersion(4, 0)], timeout: .milliseconds(50))
        let driver = SilentDriver()
        // Runs once the exchange has timed out and before the device records its outcome: the
        // guest answers now, and the hook returns only once the host's reader has taken the
        // answer (settled by it, or counted stale; the bound is a safety net only).
        host.state.withLock { state in
            state.beforeSettling = {
                var channels = driver.opened.makeAsyncIterator()
                guard let channel = await channels.next(), let reader = try? channel.reader(),
                    let request = await reader.next(),
                    let (answer, _) = try? ICNegotiation.respond(
                        to: request.payload, framework: ICVersions.linuxFramework, service: [ICVersion(4, 0)])
                else { return }
                try? await channel.send(inBand: answer[...], transactionID: request.descriptor.transactionID)
                _ = await host.waitUntil(timeout: .seconds(30)) { $0.session?.isReady == true || $0.stale > 0 }
            }
        }
        let bus = try LoopbackBus()
        bus.host.register(host)
        bus.guest.register(driver)
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        // `ready()` could throw here: the negotiation did time out, and waiters in that instant
        // are told so. What matters is that the answer completes it.
        #expect(await host.waitForNegotiation(timeout: .seconds(30)))
        #expect(host.negotiated?.service == ICVersion(4, 0))
        #expect(host.state.withLock { $0.stale } == 0)
        withExtendedLifetime(bus) {}
    }
}
