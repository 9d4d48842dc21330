import ArgumentParser
import Foundation
import Logging
import VMBusDevices
import VMBusGuest
import VMBusHost
import VMBusLocal
import VMBusMemory
import VMBusWire

/// `vmbus bench takeover`: the pause a guest sees while its host is handed to a new one.
struct BenchTakeover: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "takeover",
        abstract: "The pause guests see during a host takeover, with 1, 16 and 64 open channels under echo traffic.",
        discussion: """
            For each channel count: a host with that many echo devices and a guest that opens \
            them all and runs one echo loop per channel (64-byte request, its completion, the \
            next). Then --rounds hand-overs, each to a new host in this process (the steps of \
            'vmbus host --takeover' without the process start, which happens before the pause): \
            park, hold, quiesce, save, restore, start. Reported per row: the pause from the \
            start of the hand-over to the new host running (p50, p99, max), and the longest \
            echo round trip the guest saw in the whole row. Every echo is checked byte for \
            byte; a wrong or lost one fails the run.
            """
    )

    @Option(name: .long, parsing: .upToNextOption, help: "Open channels, one row each.")
    var channels: [Int] = [1, 16, 64]

    @Option(name: .long, help: "Hand-overs per row.")
    var rounds: Int = 100

    func validate() throws {
        guard self.channels.allSatisfy({ (1...256).contains($0) }) else { throw ValidationError("--channels: 1...256 each") }
        guard self.rounds >= 1 else { throw ValidationError("--rounds must be at least 1") }
    }

    func run() async throws {
        print(pad("channels", 10) + pad("rounds", 8) + pad("pause p50", 11) + pad("p99", 10) + pad("max", 10) + "longest round trip")
        for count in self.channels { try await self.row(channels: count) }
    }

    func row(channels count: Int) async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-bench-takeover-\(getpid()).sock").path
        let devices: @Sendable (HostBus) -> [any HostDevice] = { bus in
            (0..<count).map { n in
                let echo = EchoDevice(instance: GUID(data1: 0xB0_0000 | UInt32(n), data2: 1, data3: 1, data4: 1))
                echo.attach(to: bus)
                return echo
            }
        }
        var logger = Logger(label: "vmbus.bench")
        logger.logLevel = .warning
        var host = try LocalHost(path: path, logger: logger, devices: devices)
        host.start()
        let guest = try LocalGuest.connect(path: path, memoryBytes: 64 << 20, logger: logger)
        let client = EchoClient(pages: RingPages(each: 2))
        guest.bus.register(client)
        _ = try await guest.bus.connect()
        await guest.bus.settle()
        guard client.devices.count == count else { throw CLIError("only \(client.devices.count) of \(count) channels opened") }
        let longest = Locked<Duration>(.zero)
        let failure = Locked<String?>(nil)
        let traffic = client.devices.map { device in
            Task {
                let payload = (0..<64).map { UInt8(truncatingIfNeeded: $0 &+ Int(device.relid)) }
                while !Task.isCancelled {
                    let start = ContinuousClock.now
                    guard let answer = try? await client.echo(payload, device: device.relid), answer == payload else {
                        if !Task.isCancelled { failure.withLock { $0 = "channel \(device.relid): an echo failed or differed" } }
                        return
                    }
                    let took = ContinuousClock.now - start
                    longest.withLock { $0 = max($0, took) }
                }
            }
        }
        var pauses: [Duration] = []
        for _ in 0..<self.rounds {
            let handover = try await host.prepareHandover(timeout: .seconds(10))
            let fds = try handover.descriptors.map { try DescriptorIO.duplicate($0) }
            let next = try LocalHost(restoring: handover.state, descriptors: fds, path: path, logger: logger, devices: devices)
            next.start()
            host.completeHandover()
            pauses.append(ContinuousClock.now - handover.heldAt)
            host = next
        }
        for task in traffic { task.cancel() }
        guest.disconnect()
        _ = await guest.ended()
        host.stop()
        if let failure = failure.withLock({ $0 }) { throw CLIError(failure) }
        let sorted = pauses.sorted()
        func ms(_ d: Duration) -> String {
            let (s, a) = d.components
            return String(format: "%.2f ms", Double(s) * 1000 + Double(a) / 1e15)
        }
        print(pad("\(count)", 10) + pad("\(self.rounds)", 8) + pad(ms(sorted[sorted.count / 2]), 11)
            + pad(ms(sorted[min(sorted.count - 1, sorted.count * 99 / 100)]), 10) + pad(ms(sorted[sorted.count - 1]), 10)
            + ms(longest.withLock { $0 }))
    }
}
