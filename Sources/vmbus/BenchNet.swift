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
        // Counting sinks at both far ends: the benchmark measures the NIC, not a stream.
        let atGuest = CountingSink()
        let atHost = CountingSink()
        system.attach(atGuest)
        wire.attach(atHost)
        var frame = [UInt8](repeating: 0xA5, count: self.size)
        frame.replaceSubrange(0..<min(14, self.size), with: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 2, 0, 0, 0, 0, 1, 8, 0].prefix(self.size))
        let burst = max(1, min(256, device.freeReceiveSlots - 16))
        var batch = FrameBatch(capacity: burst * self.size)
        for _ in 0..<burst { batch.append(frame) }
        let clock = ContinuousClock()

        var start = clock.now
        var sent = 0
        while sent < self.frames {
            let n = min(burst, self.frames - sent)
            if n < burst {
                batch.removeAll()
                for _ in 0..<n { batch.append(frame) }
            }
            wire.send(batch: batch)
            sent += n
            await atGuest.wait(for: sent)
        }
        let down = clock.now - start
        // Guest → host: sections are the limit (170 by default).
        let sections = min(160, burst)
        batch.removeAll()
        for _ in 0..<sections { batch.append(frame) }
        start = clock.now
        sent = 0
        while sent < self.frames {
            let n = min(sections, self.frames - sent)
            if n < sections {
                batch.removeAll()
                for _ in 0..<n { batch.append(frame) }
            }
            system.send(batch: batch)
            sent += n
            await atHost.wait(for: sent)
        }
        let up = clock.now - start
        var samples: [Duration] = []
        samples.reserveCapacity(self.rounds)
        let one = FrameBatch(frame: frame)
        var rounds = 0
        for _ in 0..<self.rounds {
            let t = clock.now
            rounds += 1
            wire.send(batch: one)
            await atGuest.wait(for: sent + rounds)
            system.send(batch: one)
            await atHost.wait(for: sent + rounds)
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

/// Counts the frames that reach one end and wakes a waiter once a count is reached.
final class CountingSink: FrameSink {
    let state = Locked<(count: Int, target: Int, waiter: CheckedContinuation<Void, Never>?)>((0, 0, nil))

    func deliver(_ frames: FrameBatch, from first: Int) -> Int {
        let waiter: CheckedContinuation<Void, Never>? = self.state.withLock { state in
            state.count += frames.count - first
            guard state.count >= state.target, let waiter = state.waiter else { return nil }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
        return frames.count
    }

    func waitForRoom(timeout: Duration) {}

    func wait(for count: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = self.state.withLock { state in
                if state.count >= count { return true }
                state.target = count
                state.waiter = continuation
                return false
            }
            if now { continuation.resume() }
        }
    }
}
