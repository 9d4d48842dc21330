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
        subcommands: [BenchRing.self, BenchLatency.self, BenchBus.self, BenchLocal.self, BenchHvSock.self, BenchNet.self, BenchDisk.self, BenchScale.self, BenchTakeover.self, BenchSocketPeer.self, BenchScaleGuest.self]
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
