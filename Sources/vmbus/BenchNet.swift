import ArgumentParser
import VMBusGuest
import VMBusHost
import VMBusLoopback
import VMBusMemory
import VMBusNetwork
import VMBusWire

/// `vmbus bench net`: the synthetic NIC backend to backend, with no TAP in the way.
struct BenchNet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "net",
        abstract: "Synthetic NIC throughput and latency, backend to backend on the in-process bus.",
        discussion: """
            A host netvsp and a guest netvsc on one loopback bus, each joined to an in-memory \
            port: frames/s host → guest and guest → host for --size-byte frames (sent in bursts \
            no larger than the guest's receive slots, each burst awaited), and the round-trip \
            latency of one frame out and back (p50/p99). Real traffic through TAP devices and \
            namespaces is measured with Scripts/bench-net.sh (BENCHMARKS.md).
            """
    )

    @Option(name: .long, help: "Frame size in bytes (14…1514).")
    var size: Int = 64

    @Option(name: .long, help: "Frames per direction.")
    var frames: Int = 200_000

    @Option(name: .long, help: "Round trips for the latency figure.")
    var rounds: Int = 10_000

    func validate() throws {
        guard (14...1514).contains(self.size) else { throw ValidationError("--size must be 14…1514") }
        guard self.frames >= 1, self.rounds >= 1 else { throw ValidationError("counts must be positive") }
    }

    func run() async throws {
        let bus = try LoopbackBus(memorySize: 256 << 20)
        let (hostEnd, wire) = MemoryNetworkPort.pair(capacity: 65536)
        let device = NetvspDevice(instance: GUID(data1: 0x4E1C, data2: 0, data3: 0, data4: 0), backend: hostEnd)
        device.attach(to: bus.host)
        bus.host.register(device)
        var configuration = NetvscDriver.Configuration()
        configuration.receiveBufferBytes = 16 << 20
        let (driver, systems) = NetvscDriver.inMemory(configuration: configuration, capacity: 65536)
        bus.guest.register(driver)
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        _ = await driver.firstNIC()
        guard let system = systems.first else { throw CLIError("the NIC did not come up") }
        var toGuest = system.frames().makeAsyncIterator()
        var toHost = wire.frames().makeAsyncIterator()
        var frame = [UInt8](repeating: 0xA5, count: self.size)
        frame.replaceSubrange(0..<min(14, self.size), with: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 2, 0, 0, 0, 0, 1, 8, 0].prefix(self.size))
        let burst = max(1, device.freeReceiveSlots - 16)
        let clock = ContinuousClock()

        var start = clock.now
        var sent = 0
        while sent < self.frames {
            let n = min(burst, self.frames - sent)
            for _ in 0..<n { wire.send(frame[...]) }
            for _ in 0..<n { _ = await toGuest.next() }
            sent += n
        }
        let down = clock.now - start
        start = clock.now
        sent = 0
        while sent < self.frames {
            let n = min(160, self.frames - sent)
            for _ in 0..<n { system.send(frame[...]) }
            for _ in 0..<n { _ = await toHost.next() }
            sent += n
        }
        let up = clock.now - start
        var samples: [Duration] = []
        samples.reserveCapacity(self.rounds)
        for _ in 0..<self.rounds {
            let t = clock.now
            wire.send(frame[...])
            _ = await toGuest.next()
            system.send(frame[...])
            _ = await toHost.next()
            samples.append(clock.now - t)
        }
        samples.sort()
        func rate(_ d: Duration) -> String {
            let seconds = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
            return String(format: "%.2f M frames/s (%.2f Gbit/s)", Double(self.frames) / seconds / 1e6,
                          Double(self.frames * self.size * 8) / seconds / 1e9)
        }
        print("net host → guest \(self.size) B: \(rate(down))")
        print("net guest → host \(self.size) B: \(rate(up))")
        print("net round trip: p50 \(samples[samples.count / 2]), p99 \(samples[samples.count * 99 / 100])")
        print("dropped: host rx \(device.statistics[0]?.rxDropped ?? 0), guest tx \(driver.nics.first?.statistics[0]?.txDropped ?? 0)")
    }
}
