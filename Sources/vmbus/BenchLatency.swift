import ArgumentParser
import Dispatch
import Foundation
import VMBusMemory
import VMBusRing
import VMBusWire

struct BenchLatency: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latency",
        abstract: "Ping-pong round trips over two rings (busy-polling and eventfd doorbells) and a Unix socket.",
        discussion: "Reports the median (p50) and p99 round trip of 64-byte messages."
    )

    @Option(name: .long, help: "Round trips per mode.")
    var rounds: Int = 20000

    @Flag(name: .long, help: "Print JSON lines.")
    var json = false

    func run() throws {
        let modes: [(String, () throws -> [Double])] = [
            ("ring busy-poll", { try ringPingPong(self.rounds * 5, doorbells: false) }),
            ("ring eventfd", { try ringPingPong(self.rounds, doorbells: true) }),
            ("seqpacket", { try socketPingPong(self.rounds) }),
        ]
        for (name, measure) in modes {
            let samples = try measure().sorted()
            let p50 = samples[samples.count / 2] * 1e6
            let p99 = samples[samples.count * 99 / 100] * 1e6
            if self.json {
                print("{\"bench\": \"latency\", \"channel\": \"\(name)\", \"rounds\": \(samples.count), "
                    + "\"p50_us\": \(p50), \"p99_us\": \(p99)}")
            } else {
                print(pad(name, 16) + pad("p50 " + formatMicros(p50), 16) + "p99 " + formatMicros(p99))
            }
        }
    }
}

func formatMicros(_ value: Double) -> String {
    let hundredths = Int((value * 100).rounded())
    return "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100) µs"
}

/// A pair of rings between two threads: `ping` carries requests, `pong` answers.
func ringPingPong(_ rounds: Int, doorbells: Bool) throws -> [Double] {
    let size = 4096 + (64 << 10)
    let memory = try MappedMemory.anonymous(size: 2 * size)
    let ping = try SharedRingMemory(memory: memory, offset: 0, ringSize: size)
    let pong = try SharedRingMemory(memory: memory, offset: size, ringSize: size)
    ping.initializeControlPage()
    pong.initializeControlPage()
    let pingBell = try EventFD()
    let pongBell = try EventFD()
    let message = [UInt8](repeating: 1, count: 64)
    let done = spawn {
        do {
            var reader = try IncomingRing(memory: ping)
            var writer = try OutgoingRing(memory: pong)
            for _ in 0..<rounds {
                try receiveOne(&reader, doorbell: doorbells ? pingBell : nil)
                _ = try writer.write(payload: message[...])
                if try writer.commit() && doorbells { pongBell.signal() }
            }
        } catch {
            fatalError("echo: \(error)")
        }
    }
    var writer = try OutgoingRing(memory: ping)
    var reader = try IncomingRing(memory: pong)
    var samples: [Double] = []
    samples.reserveCapacity(rounds)
    let clock = ContinuousClock()
    for _ in 0..<rounds {
        let start = clock.now
        _ = try writer.write(payload: message[...])
        if try writer.commit() && doorbells { pingBell.signal() }
        try receiveOne(&reader, doorbell: doorbells ? pongBell : nil)
        let elapsed = clock.now - start
        samples.append(Double(elapsed.components.attoseconds) / 1e18 + Double(elapsed.components.seconds))
    }
    done.wait()
    return samples
}

/// Waits for one packet: spinning, or sleeping on the doorbell when the ring is empty.
func receiveOne(_ reader: inout IncomingRing<SharedRingMemory>, doorbell: EventFD?) throws {
    while try reader.next() == nil {
        if let doorbell { doorbell.wait() }
    }
    _ = try reader.commit()
}

func socketPingPong(_ rounds: Int) throws -> [Double] {
    let (a, b) = try DescriptorIO.seqPacketPair()
    defer {
        DescriptorIO.close(a)
        DescriptorIO.close(b)
    }
    let message = [UInt8](repeating: 1, count: 64)
    let done = spawn {
        var buffer = [UInt8](repeating: 0, count: 64)
        do {
            for _ in 0..<rounds {
                _ = try DescriptorIO.readSome(b, into: &buffer, count: 64)
                try DescriptorIO.writeAll(b, message[...])
            }
        } catch {
            fatalError("echo: \(error)")
        }
    }
    var buffer = [UInt8](repeating: 0, count: 64)
    var samples: [Double] = []
    samples.reserveCapacity(rounds)
    let clock = ContinuousClock()
    for _ in 0..<rounds {
        let start = clock.now
        try DescriptorIO.writeAll(a, message[...])
        _ = try DescriptorIO.readSome(a, into: &buffer, count: 64)
        let elapsed = clock.now - start
        samples.append(Double(elapsed.components.attoseconds) / 1e18 + Double(elapsed.components.seconds))
    }
    done.wait()
    return samples
}
