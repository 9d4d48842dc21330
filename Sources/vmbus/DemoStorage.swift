import Foundation
import Logging
import VMBusLocal
import VMBusWire
import VMBusStorage

extension DemoCommand {
    /// The storage step: one more guest connection with a SCSI controller (`--disk mem:64M` on
    /// the host): the disk found, written and read back through the block API.
    static func runStorage(_ path: String, logger: Logger, capture: (any CaptureRecorder)? = nil) async throws {
        let guest = try LocalGuest.connect(path: path, memoryBytes: 32 << 20, logger: logger, capture: capture, captureConnection: 4)
        defer { guest.disconnect() }
        let driver = StorvscDriver()
        guest.bus.register(driver)
        _ = try await guest.bus.connect()
        await guest.bus.settle()
        guard let disk = driver.disks.first, let controller = driver.allControllers.first else {
            throw CLIError("the host offered no disk")
        }
        print("storage: a guest with a synthetic SCSI controller — protocol \(controller.version), LUN \(disk.lun): "
            + "\(disk.sectorCount) sectors of \(disk.sectorSize) bytes, \(controller.maximumTransferBytes / 1024) KiB per request")
        let chunk = 256 * 1024
        let total = 4 << 20
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 0..<(total / chunk) {
                let data = (0..<chunk).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ n) }
                group.addTask { try await disk.write(lba: UInt64(n * chunk / disk.sectorSize), data) }
            }
            try await group.waitForAll()
        }
        try await disk.flush()
        for n in 0..<(total / chunk) {
            let data = (0..<chunk).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ n) }
            guard try await disk.read(lba: UInt64(n * chunk / disk.sectorSize), count: chunk / disk.sectorSize) == data else {
                throw CLIError("a read returned other bytes than were written")
            }
        }
        let seconds = elapsedSeconds(since: start)
        let stats = controller.statistics
        print("  \(total >> 20) MiB written (16 requests in flight), flushed and read back byte-exact in \(milliseconds(seconds)) ms; "
            + "\(stats.requests) SCSI requests, \(stats.failed) failed")
    }
}
