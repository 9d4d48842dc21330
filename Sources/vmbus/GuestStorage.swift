import ArgumentParser
import VMBusGuest
import VMBusStorage

/// `vmbus guest --disk-nbd …`: the SCSI controller's disk, served to NBD clients.
struct GuestStorageOptions: ParsableArguments {
    @Option(name: .long, help: "Drive the host's SCSI controller (storvsc) and serve its disk over NBD on this Unix socket path.")
    var diskNbd: String?

    @Option(name: .long, help: "The LUN to serve (default: the lowest found).")
    var diskLun: UInt8?

    @Option(name: .long, help: "Storage queues to ask for (sub-channels + 1, where the host offers them).")
    var diskQueues: Int = 1

    @Option(name: .long, help: "Storage requests in flight at most (each holds a data buffer of up to 256 KiB in guest memory).")
    var diskQueueDepth: Int = 32

    func validate() throws {
        guard (1...64).contains(self.diskQueues) else { throw ValidationError("--disk-queues must be 1…64") }
        guard (1...1024).contains(self.diskQueueDepth) else { throw ValidationError("--disk-queue-depth must be 1…1024") }
        if self.diskNbd == nil, self.diskLun != nil { throw ValidationError("--disk-lun needs --disk-nbd") }
    }

    /// The storvsc driver, registered on `bus`, when --disk-nbd asks for one.
    func startDriver(_ bus: GuestBus) -> StorvscDriver? {
        guard self.diskNbd != nil else { return nil }
        var configuration = StorvscDriver.Configuration()
        configuration.subChannels = self.diskQueues - 1
        configuration.queueDepth = self.diskQueueDepth
        let driver = StorvscDriver(configuration: configuration)
        bus.register(driver)
        return driver
    }

    /// The NBD server on the chosen disk, listening (after the bus settled: every controller
    /// probed, every LUN scanned).
    func serve(_ driver: StorvscDriver, log: @escaping @Sendable (String) -> Void) throws -> (NBDServer, StorvscDisk) {
        let disks = driver.disks
        guard let disk = self.diskLun.map({ lun in disks.first { $0.lun == lun } }) ?? disks.first else {
            if disks.isEmpty { throw CLIError("--disk-nbd: the host offers no disk (start it with --disk)") }
            throw CLIError("--disk-nbd: no LUN \(self.diskLun ?? 0); the host has \(disks.map(\.lun))")
        }
        let path = self.diskNbd ?? ""
        let server = NBDServer(device: disk, configuration: NBDServer.Configuration(log: log))
        do {
            try server.start(.unix(path))
        } catch {
            throw CLIError("--disk-nbd \(path): \(error)")
        }
        return (server, disk)
    }
}
