import Foundation
import Testing
import VMBusChannel
@testable import VMBusDevices
import VMBusHost
import VMBusMemory
@testable import VMBusUio
import VMBusWire

/// The interrupt thread of a uio channel as a task executor: a service that prefers it
/// (`vmbus fcopy-daemon` does) handles every request on that thread, woken by the interrupt
/// itself rather than through a pool thread, and still ends cleanly when the node closes.
@Suite struct UioExecutorTests {
    @Test func aServiceThatPrefersTheInterruptThreadRunsThere() async throws {
        let (export, host, device) = try UioStartupTests.exportedFileCopy("uio-executor")
        defer { UioStartupTests.remove(export) }
        // Opening waits for the export's first word: off the pool, as UioStartupTests does.
        let uio = try await withCheckedThrowingContinuation { (done: CheckedContinuation<UioChannel, any Error>) in
            Thread { done.resume(with: Result { try UioChannel(device) }) }.start()
        }
        let executor = try #require(uio.channel.taskExecutor)
        let root = scratchDirectory("uio-executor-files")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let driver = ICGuestDriver(FileCopyGuest(root: root))
        // What `driver.serve` does, noting the thread that takes each packet.
        let threads = Locked<[String]>([])
        let served = Task(executorPreference: executor) {
            try? await uio.channel.receive { packet in
                threads.withLock { $0.append(ThreadName.current) }
                await driver.handle(packet, on: uio.channel)
            }
        }
        try await host.copy([1, 2, 3, 4], name: "copied.bin", directory: "")
        #expect(FileManager.default.contents(atPath: root + "/copied.bin") == Data([1, 2, 3, 4]))
        let names = threads.withLock { $0 }
        // The negotiation, START, WRITE and COMPLETE, each on the interrupt thread (named for
        // relid 7).
        #expect(names.count >= 4)
        #expect(names.allSatisfy { $0 == "vmbus-uio-7" }, "handled on \(names)")
        uio.close()
        _ = await served.value
    }
}
