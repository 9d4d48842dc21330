import VMBusChannel
import VMBusMemory
import VMBusNetwork
import VMBusUio
import VMBusWire

extension GuestCommand {
    /// `--sysfs ROOT --net tap:NAME`: the NIC of a uio device (05 §10) driven from this
    /// process, its operating-system side the TAP interface, until a signal or a rescind.
    func runNetworkOverUio(root: String) async throws {
        let logger = self.log.logger("vmbus.guest", default: .warning)
        let (driver, tap) = try self.networkDriver()
        let device: UioDevice
        do { device = try UioDevice.find(root: root, classID: DeviceClass.network.classID) } catch {
            throw CLIError("--sysfs \(root): \(error)")
        }
        let uio: UioNetvsc
        do { uio = try await driver.bringUp(uio: device) } catch {
            throw CLIError("cannot bring up the NIC of \(device.nodePath): \(error)")
        }
        let (stops, stop) = AsyncStream<String?>.makeStream()
        // Before the ready line: a signal right after it is not lost.
        let shutdown = Shutdown(logger, first: ("stop waiting for the device", { stop.yield(nil) }))
        let channel = uio.uio.channel
        Task { stop.yield("the device went away (\(await channel.closed()))") }
        let nic = uio.nic
        print("guest: network \(tap.device.name) up over uio \(device.nodePath): NVSP \(nic.version), "
            + "MAC \(nic.macAddress.map { "\($0)" } ?? "?"), MTU \(nic.mtu), \(nic.queueCount) queue(s)")
        DescriptorIO.flushOutput()
        var next = stops.makeAsyncIterator()
        let failure = await next.next() ?? nil
        await shutdown.run([.init("close the NIC's channel and its uio node") { await uio.close() }])
        if let failure { throw CLIError(failure) }
    }
}
