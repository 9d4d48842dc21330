import Foundation
import VMBusDevices
import VMBusHost
import VMBusLocal
import VMBusMemory
import VMBusWire

/// The host sides of the six integration services for one guest.
final class ICSet: Sendable {
    let heartbeat = HeartbeatHost()
    let shutdown = ShutdownHost()
    let timeSync = TimeSyncHost()
    let kvp = KVPHost()
    let fileCopy: FileCopyHost
    let vss = VSSHost()

    /// - Parameter fileCopyInstance: the file-copy device's instance (a uio export uses the one
    ///   Linux's daemon looks for).
    init(fileCopyInstance: GUID = DeviceClass.fileCopy.classID) {
        self.fileCopy = FileCopyHost(instance: fileCopyInstance)
    }

    let periodic = Locked<[Task<Void, Never>]>([])

    /// Starts the periodic heartbeat and time samples; they end when the guest goes (``stop()``),
    /// even if it never opened the services.
    func startPeriodic() {
        let tasks = [self.heartbeat.start(), self.timeSync.start()]
        self.periodic.withLock { $0 += tasks }
    }

    func stop() {
        for task in self.periodic.withLock({ $0 }) { task.cancel() }
    }

    var devices: [any HostDevice] {
        [self.heartbeat.device, self.shutdown.device, self.timeSync.device, self.kvp.device, self.fileCopy.device, self.vss.device]
    }
}

/// The services of every connected guest, by its bus.
final class ICRegistry: Sendable {
    let map = Locked<[ObjectIdentifier: ICSet]>([:])
    func add(_ set: ICSet, for bus: HostBus) { self.map.withLock { $0[ObjectIdentifier(bus)] = set } }
    func services(for bus: HostBus) -> ICSet? { self.map.withLock { $0[ObjectIdentifier(bus)] } }
    func remove(_ bus: HostBus) { _ = self.map.withLock { $0.removeValue(forKey: ObjectIdentifier(bus)) } }
}

/// The admin protocol of `vmbus host` (a SOCK_SEQPACKET socket; `vmbus ctl` is its client):
/// one request datagram — UTF-8 arguments separated by NUL: command, guest id, parameters —
/// answered by datagrams whose first byte says what they are: `O` a line of output, `P` a
/// progress line, `E` the end (then a status byte, 0 for success, and a message).
final class AdminServer: Sendable {
    let socket: LocalSocket
    let host: LocalHost
    let services: ICRegistry
    /// The services of `--uio-export` devices (guest "uio").
    let exported: ICSet?

    /// The guests' synthetic NICs (`--net`).
    let network: HostNetwork?
    /// The guests' SCSI controllers (`--disk`).
    let storage: HostStorage?

    init(
        path: String, host: LocalHost, services: ICRegistry, exported: ICSet? = nil, network: HostNetwork? = nil,
        storage: HostStorage? = nil
    ) throws {
        self.socket = try LocalSocket.listen(path: path)
        self.host = host
        self.services = services
        self.exported = exported
        self.network = network
        self.storage = storage
    }

    func start() {
        let thread = Thread { [self] in
            while let client = try? self.socket.accept() {
                guard let request = try? client.receive(), !request.isEndOfStream else { continue }
                let args = request.bytes.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
                Task { await self.serve(args, client) }
            }
        }
        thread.name = "vmbus-host-admin"
        thread.start()
    }

    func stop() { self.socket.shutdown() }

    static func send(_ client: LocalSocket, _ kind: UInt8, _ text: String) {
        try? client.send([kind] + Array(text.utf8.prefix(4000)))
    }

    func serve(_ args: [String], _ client: LocalSocket) async {
        let output: @Sendable (String) -> Void = { Self.send(client, UInt8(ascii: "O"), $0) }
        do {
            try await self.run(args, output: output, progress: { Self.send(client, UInt8(ascii: "P"), $0) })
            try? client.send([UInt8(ascii: "E"), 0])
        } catch {
            try? client.send([UInt8(ascii: "E"), 1] + Array("\(error)".utf8.prefix(4000)))
        }
    }

    /// The guest's services: the one named, or the only one connected.
    func services(_ guest: String) throws -> (String, ICSet) {
        let guests = self.host.guests.map(\.id)
        if guest == "uio" || (guest == "0" && guests.isEmpty && self.exported != nil) {
            guard let exported = self.exported else { throw CLIError("nothing is exported (start the host with --uio-export)") }
            return ("uio", exported)
        }
        let id: Int
        if let wanted = Int(guest), wanted > 0 {
            id = wanted
        } else {
            guard guests.count == 1, let only = guests.first else {
                throw CLIError(guests.isEmpty ? "no guest is connected" : "several guests are connected: give --guest (\(guests))")
            }
            id = only
        }
        guard let bus = self.host.bus(guest: id), let set = self.services.services(for: bus) else {
            throw CLIError("no guest \(id)")
        }
        return (String(id), set)
    }

    func run(_ args: [String], output: @Sendable (String) -> Void, progress: @Sendable (String) -> Void) async throws {
        guard args.count >= 2 else { throw CLIError("malformed request") }
        let command = args[0]
        let p = Array(args.dropFirst(2))
        if command == "status" {
            let guests = self.host.guests
            output("\(guests.count) guest(s) connected, \(self.host.servedCount) served since start")
            for guest in guests {
                let bus = self.host.bus(guest: guest.id)
                let set = bus.flatMap { self.services.services(for: $0) }
                output("guest \(guest.id): memory \(guest.memoryBytes >> 20) MiB, channels offered \(bus?.relids ?? [])")
                if let set {
                    output("  heartbeat: \(describe(set.heartbeat.health))")
                    for (name, device) in [("heartbeat", set.heartbeat.device), ("shutdown", set.shutdown.device),
                                           ("timesync", set.timeSync.device), ("kvp", set.kvp.device),
                                           ("fcopy", set.fileCopy.device), ("vss", set.vss.device)] {
                        output("  \(name): \(device.phase)")
                    }
                }
            }
            return
        }
        if command == "net" {
            guard let network = self.network else { throw CLIError("the host offers no synthetic NIC (start it with --net)") }
            let bus = Int(args[1]).flatMap { $0 > 0 ? self.host.bus(guest: $0) : nil }
            for line in network.statistics(bus: bus) { output(line) }
            return
        }
        if command == "disk" {
            guard let storage = self.storage else { throw CLIError("the host serves no disks (start it with --disk)") }
            let bus = Int(args[1]).flatMap { $0 > 0 ? self.host.bus(guest: $0) : nil }
            for line in storage.statistics(bus: bus) { output(line) }
            return
        }
        let (id, set) = try self.services(args[1])
        // A guest (or a uio daemon) that just connected may not have opened the service yet.
        let devices = ["heartbeat": set.heartbeat.device, "shutdown": set.shutdown.device, "time": set.timeSync.device,
                       "kvp": set.kvp.device, "copy": set.fileCopy.device, "backup": set.vss.device]
        if let device = devices[command], !(await device.waitForOpen(timeout: .seconds(5))) {
            throw CLIError("guest \(id) has not opened the service")
        }
        switch command {
        case "heartbeat":
            let sequence = try await set.heartbeat.beat()
            output("guest \(id): heartbeat answered (sequence \(sequence)); \(describe(set.heartbeat.health))")
        case "shutdown":
            var flags: ShutdownFlags = []
            if p.contains("reboot") { flags.insert(.restart) }
            if p.contains("hibernate") { flags.insert(.hibernate) }
            if p.contains("force") { flags.insert(.force) }
            let status = try await set.shutdown.request(flags, message: "vmbus ctl")
            guard status.isSuccess else { throw CLIError("guest \(id) refused: status \(status)") }
            output("guest \(id): accepted \(flags.contains(.restart) ? "reboot" : flags.contains(.hibernate) ? "hibernate" : "power off")")
        case "time":
            try await set.timeSync.send(.sync)
            output("guest \(id): time sync sent (host FILETIME \(SystemClock.fileTimeNow()))")
        case "kvp":
            guard p.count >= 2, let poolNumber = UInt8(p[1]), poolNumber < 5 else { throw CLIError("kvp needs an operation and a pool 0–4") }
            let pool = KVPPool(rawValue: poolNumber)
            try await daemonService("KVP", "hv_kvp_daemon") {
                switch (p[0], p.count) {
                case ("get", 3):
                    guard let value = try await set.kvp.get(pool: pool, key: p[2]) else { throw CLIError("no key '\(p[2])' in pool \(poolNumber)") }
                    output(value)
                case ("set", 4):
                    let status = try await set.kvp.set(pool: pool, key: p[2], value: p[3])
                    guard status.isSuccess else { throw CLIError("the guest refused: status \(status)") }
                case ("delete", 3):
                    let status = try await set.kvp.delete(pool: pool, key: p[2])
                    guard status.isSuccess else { throw CLIError("no key '\(p[2])' in pool \(poolNumber)") }
                case ("list", 2):
                    for entry in try await set.kvp.enumerate(pool: pool) { output("\(entry.key)=\(entry.value)") }
                default: throw CLIError("kvp get POOL KEY | set POOL KEY VALUE | delete POOL KEY | list POOL")
                }
            }
        case "copy":
            guard p.count >= 2 else { throw CLIError("copy needs SRC and GUEST_PATH") }
            guard let data = FileManager.default.contents(atPath: p[0]) else { throw CLIError("cannot read \(p[0])") }
            let target = try FileCopyDestination(guestPath: p[1], sourcePath: p[0])
            var flags: FileCopyFlags = []
            if p.contains("overwrite") { flags.insert(.overwrite) }
            if p.contains("create-path") { flags.insert(.createPath) }
            let bytes = [UInt8](data)
            var last = -1
            try await set.fileCopy.copy(bytes, to: target, flags: flags) { sent, total in
                let percent = total == 0 ? 100 : sent * 100 / total
                if percent != last {
                    last = percent
                    progress("\(sent) \(total)")
                }
            }
            output("copied \(bytes.count) bytes to guest \(id):\(target.path)")
        case "backup":
            let results = try await daemonService("VSS", "hv_vss_daemon") { try await set.vss.backup() }
            for (operation, status) in results {
                output("\(vssName(operation)): \(status.isSuccess ? "ok" : "failed (status \(status))")")
            }
            if let failed = results.first(where: { !$0.1.isSuccess }) {
                let frozen = results.contains { $0.0 == .freeze && $0.1.isSuccess }
                throw CLIError("backup failed at \(vssName(failed.0))\(frozen ? "" : "; nothing was frozen")")
            }
        default:
            throw CLIError("unknown command '\(command)'")
        }
    }
}

/// Runs a request of a service that a Linux guest answers through a user-space daemon (KVP,
/// VSS): an unanswered negotiation or a silent service is explained as the daemon not
/// running, not as a bare timeout.
func daemonService<R>(_ service: String, _ daemon: String, _ body: () async throws -> R) async throws -> R {
    do {
        return try await body()
    } catch ICError.negotiationUnanswered {
        throw CLIError(
            "\(service) is not running in the guest: it opened the \(service) channel but never answered version "
                + "negotiation (on Linux, start \(daemon))")
    } catch ICError.timedOut {
        throw CLIError("the guest's \(service) service did not answer in time (on Linux, is \(daemon) running?)")
    }
}

func describe(_ health: GuestHealth) -> String {
    switch health {
    case .healthy(let last): return "healthy (last answer \(secondsSince(last)) s ago)"
    case .lost(let last?): return "unhealthy (no answer for \(secondsSince(last)) s)"
    case .lost(nil): return "unhealthy (no answer yet)"
    case .notRunning: return "not running (the heartbeat service is closed or not negotiated)"
    }
}

/// Seconds since a reference time (100 ns units), to a tenth.
func secondsSince(_ time: UInt64) -> Double {
    Double((SystemClock.referenceTime() &- time) / 1_000_000) / 10
}

func vssName(_ operation: VSSOperation) -> String {
    switch operation {
    case .hotBackup: return "hot-backup check"
    case .freeze: return "freeze"
    case .thaw: return "thaw"
    case .backupComplete: return "backup complete"
    default: return "operation \(operation.rawValue)"
    }
}
