import ArgumentParser
import Dispatch
import Foundation
import VMBusMemory
import VMBusRing
import VMBusWire

/// `vmbus bench`: ring throughput and latency against the system's own channels.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure rings, the in-process bus, two processes and Hyper-V sockets against memcpy, pipes, Unix sockets and TCP.",
        discussion: "Build with -c release for meaningful numbers: swift run -c release vmbus bench ring",
        subcommands: [BenchRing.self, BenchLatency.self, BenchBus.self, BenchLocal.self, BenchHvSock.self, BenchNet.self, BenchDisk.self, BenchSocketPeer.self]
    )
}

/// Runs `body` on a new thread; the returned semaphore is signalled when it ends.
func spawn(_ body: @escaping @Sendable () -> Void) -> DispatchSemaphore {
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        body()
        done.signal()
    }
    thread.start()
    return done
}

/// Seconds elapsed while `body` runs.
func timed(_ body: () throws -> Void) rethrows -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    try body()
    let elapsed = clock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted[sorted.count / 2]
}

struct BenchRing: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ring",
        abstract: "Producer and consumer threads on one ring; memcpy, pipe and SOCK_SEQPACKET baselines.",
        discussion: """
            For each payload size and ring data size: packets/s and MB/s (payload bytes), the \
            median of --runs runs. The ring consumer copies every payload out (the validated \
            copy-out path); both sides batch 32 packets per commit.
            """
    )

    @Option(name: .long, help: "Payload bytes moved per measurement.")
    var bytes: Int = 64 << 20

    @Option(name: .long, help: "Runs per measurement (the median is reported).")
    var runs: Int = 5

    @Option(name: .long, parsing: .upToNextOption, help: "Payload sizes.")
    var sizes: [Int] = [16, 64, 256, 1024, 4096, 16384]

    @Flag(name: .long, help: "Print JSON lines.")
    var json = false

    @Flag(name: .long, help: "Measure only the ring (skip the baselines), e.g. to count allocations under valgrind.")
    var ringOnly = false

    func run() throws {
        for size in self.sizes {
            let packets = max(self.bytes / size, 1000)
            var results: [(String, Double)] = []
            for dataSize in [256 << 10, 1 << 20] {
                let seconds = median(try (0..<self.runs).map { _ in try ringRun(size, dataSize, packets) })
                results.append(("ring \(dataSize >> 10) KiB", seconds))
            }
            if self.ringOnly {
                self.report(size, packets, results)
                continue
            }
            results.append(("memcpy", median(try (0..<self.runs).map { _ in try memcpyRun(size, packets) })))
            results.append(("pipe", median(try (0..<self.runs).map { _ in try pipeRun(size, packets) })))
            if size <= 65536 {
                results.append(("seqpacket", median(try (0..<self.runs).map { _ in try seqPacketRun(size, packets) })))
            }
            self.report(size, packets, results)
        }
    }

    func report(_ size: Int, _ packets: Int, _ results: [(String, Double)]) {
        for (name, seconds) in results {
            let rate = Double(packets) / seconds
            let mbps = rate * Double(size) / 1e6
            if self.json {
                print("{\"bench\": \"ring\", \"channel\": \"\(name)\", \"payload\": \(size), \"packets\": \(packets), "
                    + "\"seconds\": \(seconds), \"packets_per_s\": \(Int(rate)), \"mb_per_s\": \(Int(mbps))}")
            } else {
                print(pad("\(size) B", 9) + pad(name, 14) + pad("\(Int(rate / 1000)) kpkt/s", 16) + "\(Int(mbps)) MB/s")
            }
        }
    }
}

/// One producer and one consumer thread moving `packets` payloads of `size` bytes through a
/// shared ring with `dataSize` bytes of data.
func ringRun(_ size: Int, _ dataSize: Int, _ packets: Int) throws -> Double {
    let memory = try MappedMemory.anonymous(size: RingSize.pageSize + dataSize)
    let ring = try SharedRingMemory(memory: memory, offset: 0, ringSize: RingSize.pageSize + dataSize)
    ring.initializeControlPage()
    let payload = [UInt8](repeating: 0x5A, count: size)
    return try timed {
        let done = spawn {
            do {
                var reader = try IncomingRing(memory: ring)
                var buffer = [UInt8](repeating: 0, count: size + 8)
                var received = 0
                while received < packets {
                    guard let packet = try reader.next() else {
                        _ = try reader.commit()
                        continue
                    }
                    reader.copyPayload(of: packet, into: &buffer)
                    received += 1
                    if received & 31 == 0 { _ = try reader.commit() }
                }
                _ = try reader.commit()
            } catch {
                fatalError("consumer: \(error)")
            }
        }
        var writer = try OutgoingRing(memory: ring)
        var sent = 0
        while sent < packets {
            if try writer.write(payload: payload[...]) {
                sent += 1
                if sent & 31 == 0 { _ = try writer.commit() }
            } else {
                _ = try writer.commit()
            }
        }
        _ = try writer.commit()
        done.wait()
    }
}

/// The physical limit: the same bytes copied once, in the same chunks, by one thread.
func memcpyRun(_ size: Int, _ packets: Int) throws -> Double {
    let target = try MappedMemory.anonymous(size: 1 << 20)
    let source = [UInt8](repeating: 0x5A, count: size)
    let slots = (1 << 20) / size
    return try timed {
        for i in 0..<packets { try target.write(source[...], at: (i % slots) * size) }
    }
}

func pipeRun(_ size: Int, _ packets: Int) throws -> Double {
    let (readEnd, writeEnd) = try DescriptorIO.pipe()
    defer {
        DescriptorIO.close(readEnd)
        DescriptorIO.close(writeEnd)
    }
    return try streamRun(size, packets, readEnd, writeEnd, datagrams: false)
}

func seqPacketRun(_ size: Int, _ packets: Int) throws -> Double {
    let (a, b) = try DescriptorIO.seqPacketPair()
    defer {
        DescriptorIO.close(a)
        DescriptorIO.close(b)
    }
    return try streamRun(size, packets, b, a, datagrams: true)
}

func streamRun(_ size: Int, _ packets: Int, _ readEnd: Int32, _ writeEnd: Int32, datagrams: Bool) throws -> Double {
    let payload = [UInt8](repeating: 0x5A, count: size)
    return try timed {
        let done = spawn {
            var buffer = [UInt8](repeating: 0, count: size)
            do {
                for _ in 0..<packets {
                    if datagrams {
                        _ = try DescriptorIO.readSome(readEnd, into: &buffer, count: size)
                    } else if try !DescriptorIO.readFully(readEnd, into: &buffer, count: size) {
                        break
                    }
                }
            } catch {
                fatalError("reader: \(error)")
            }
        }
        for _ in 0..<packets { try DescriptorIO.writeAll(writeEnd, payload[...]) }
        done.wait()
    }
}
