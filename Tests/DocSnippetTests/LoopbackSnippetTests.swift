// Runs the device and the driver the articles "Writing a host device" and "Writing a guest
// driver" build, over the in-process bus, as the guest article's last snippet does.
import Testing
import VMBusGuest
import VMBusLoopback
import VMBusWire

@Suite struct LoopbackSnippetTests {
    @Test func theDeviceAndTheDriverTalkOverTheLoopbackBus() async throws {
        let bus = try LoopbackBus()
        bus.host.register(UppercaseDevice(instance: GUID(data1: 1, data2: 0, data3: 0, data4: 0)))
        let driver = UppercaseDriver()
        bus.guest.register(driver)
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        let answer = try await driver.uppercase("hello, vmbus")
        #expect(answer == "HELLO, VMBUS")
        #expect(bus.guest.boundDriver(bus.guest.devices[0].relid) == "uppercase")
        // More than one ring's worth of requests, to see the reader keep up.
        for n in 0..<500 {
            let text = "request \(n) of 500, mixed Case äöü"
            #expect(try await driver.uppercase(text) == "REQUEST \(n) OF 500, MIXED CASE äöü")
        }
        // Unloading removes the device from the driver: it has no channel left to send on.
        try await bus.guest.unload()
        await #expect(throws: BusError.notConnected) { try await driver.uppercase("gone") }
    }
}
