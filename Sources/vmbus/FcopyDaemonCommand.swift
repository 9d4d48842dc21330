import VMBusMemory
import ArgumentParser
import Foundation
import VMBusChannel
import VMBusDevices
import VMBusUio
import VMBusWire

/// `vmbus fcopy-daemon`: Linux's `hv_fcopy_uio_daemon`, on the guest-side file-copy service.
struct FcopyDaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fcopy-daemon",
        abstract: "Serve Hyper-V's Copy-VMFile in this guest over uio_hv_generic (replaces hv_fcopy_uio_daemon).",
        discussion: """
            Finds the file-copy device (instance eb765408-105f-49b6-b4aa-c123b64d17d4, class \
            34d14be3-dee4-41c8-9ae7-6b174977c192) in SYSFS, opens its uio node, and answers the \
            host: negotiation, START (create-path and overwrite flags as Linux), WRITE fragments, \
            COMPLETE, CANCEL (the partial file is removed). Files are written beside their target \
            and renamed over it when complete. Runs in the foreground and logs to standard \
            error (systemd: Type=simple, the unit vmbus-fcopy-daemon.service); SIGTERM or SIGINT \
            stop it cleanly, exit 0 (docs/OPERATIONS.md). If the device \
            is missing or not bound to uio_hv_generic it says so, with the commands that bind \
            it, and exits 1. When the host rescinds the device (the service was disabled) it \
            exits 0.

            With --sysfs DIR/sys it serves the fake device of 'vmbus host --uio-export DIR'.
            """
    )

    @Option(name: .long, help: "The sysfs root.")
    var sysfs: String = "/sys"

    @Option(name: .long, help: "Confine copies below this directory (default: paths as the host gives them).")
    var root: String?

    @Option(name: .long, help: ArgumentHelp(
        "Microseconds to watch the ring for the next request before sleeping (0: sleep at once).",
        discussion: "A copy is one request per 6 KiB fragment, each answered before the host sends the next: watching for the next one costs less than being woken for it. The window adapts to the gaps between requests; between copies the daemon sleeps."))
    var pollMicroseconds: Int = 50

    @OptionGroup var log: LogOptions

    func validate() throws {
        guard (0...10_000).contains(self.pollMicroseconds) else { throw ValidationError("--poll-microseconds must be in 0...10000") }
    }

    func run() async throws {
        let logger = self.log.logger("vmbus.fcopy", default: .info)
        let device: UioDevice
        do {
            device = try UioDevice.find(root: self.sysfs, instance: WellKnownInstance.fileCopy, classID: DeviceClass.fileCopy.classID)
        } catch {
            if case .notFound = error {
                throw CLIError("\(error): is the Guest Service Interface enabled for this VM? "
                    + "(Hyper-V: Enable-VMIntegrationService -Name 'Guest Service Interface' -VMName NAME)")
            }
            throw CLIError("\(error)")
        }
        let uio: UioChannel
        do {
            uio = try UioChannel(device, options: ChannelOptions(pollMicroseconds: self.pollMicroseconds))
        } catch {
            throw CLIError("\(error)")
        }
        // Before the ready line: a signal right after it is not lost.
        let shutdown = Shutdown(logger, first: ("close the channel and the uio notifier", { uio.close() }))
        logger.info("serving file copy on \(device.nodePath) (relid \(device.sysfs.relid ?? 0), rings \(device.ringMapBytes / 2) bytes each)")
        let driver = ICGuestDriver(FileCopyGuest(root: self.root))
        // The service runs on the interrupt thread: a request that comes while the reader
        // sleeps wakes that thread only, not a pool thread as well. Its file writes block just
        // this device's interrupts, which only wake this reader.
        let reason = await withTaskExecutorPreference(uio.channel.taskExecutor) { await driver.serve(uio.channel) }
        shutdown.run([.init("close the channel and the uio notifier, if the host ended them") { uio.close() }])
        let statistics = driver.statistics
        if shutdown.cause != nil {
            logger.info("stopped; \(statistics.answered) requests answered")
            return
        }
        switch reason {
        case .rescinded, .closedByPeer:
            logger.info("the host removed the device; \(statistics.answered) requests answered")
        case .closedLocally, .ringCorrupted, .connectionLost:
            throw CLIError("the channel ended: \(reason)")
        }
    }
}
