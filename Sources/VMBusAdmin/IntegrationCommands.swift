import Foundation
import VMBusDevices
import VMBusLocal
import VMBusMemory
import VMBusWire

extension AdminServer {
    /// Registers the integration-service commands: `status`, `heartbeat`, `shutdown`, `time`,
    /// `kvp`, `copy` and `backup` (docs/ADMIN.md gives their parameters and answers).
    ///
    /// The host's device factory must add each guest's ``ICSet`` to `services` (and remove it
    /// when the guest goes), or the commands find no services for it.
    /// - Parameters:
    ///   - host: the host whose guests the commands address.
    ///   - services: each connected guest's services.
    ///   - exported: the services of devices exported to uio (guest `"uio"`), if any.
    public func registerIntegrationServices(host: LocalHost, services: ICRegistry, exported: ICSet? = nil) {
        let commands = IntegrationCommands(host: host, services: services, exported: exported)
        self.register("status") { _, session in commands.status(session) }
        // Requests that start traffic no guest asked for: recorded into the guest's capture
        // first, so that a replay of the capture makes them again.
        let operatorCommands: [(String, @Sendable (AdminRequest, AdminSession) async throws -> Void)] = [
            ("heartbeat", commands.heartbeat), ("shutdown", commands.shutdown), ("time", commands.time),
            ("kvp", commands.kvp), ("copy", commands.copy), ("backup", commands.backup),
        ]
        for (name, handler) in operatorCommands {
            self.register(name) { request, session in
                commands.record(request)
                try await handler(request, session)
            }
        }
    }
}

/// The integration-service commands, one method each.
struct IntegrationCommands: Sendable {
    let host: LocalHost
    let services: ICRegistry
    let exported: ICSet?

    /// The guest's services: the one named, or the only one connected; and its name for
    /// messages.
    func services(_ guest: String) throws(AdminError) -> (String, ICSet) {
        let guests = self.host.guests.map(\.id)
        if guest == "uio" || (guest == "0" && guests.isEmpty && self.exported != nil) {
            guard let exported = self.exported else {
                throw AdminError("nothing is exported (start the host with --uio-export)")
            }
            return ("uio", exported)
        }
        let id: Int
        if let wanted = Int(guest), wanted > 0 {
            id = wanted
        } else {
            guard guests.count == 1, let only = guests.first else {
                throw AdminError(
                    guests.isEmpty ? "no guest is connected" : "several guests are connected: give --guest (\(guests))")
            }
            id = only
        }
        guard let bus = self.host.bus(guest: id), let set = self.services.services(for: bus) else {
            throw AdminError("no guest \(id)")
        }
        return (String(id), set)
    }

    /// Writes the request into the guest's capture, if the host is capturing, so that a replay
    /// of the capture makes it again (docs/CAPTURE.md, operator requests); a copy's source file
    /// goes with it. A request for no guest or an unknown one records nothing.
    func record(_ request: AdminRequest) {
        guard let (id, _) = try? self.services(request.guest), let number = Int(id), let bus = self.host.bus(guest: number),
            let capture = bus.capture
        else { return }
        var attachment: [UInt8] = []
        if request.command == "copy", let source = request.parameters.first, let data = FileManager.default.contents(atPath: source) {
            attachment = [UInt8](data)
        }
        capture.operatorRequest(request.command, request.parameters, attachment: attachment)
    }

    /// The guest's services once `device` is open: a guest (or a uio daemon) that just
    /// connected may not have opened it yet.
    func opened(_ guest: String, _ device: (ICSet) -> ICHostDevice) async throws -> (String, ICSet) {
        let (id, set) = try self.services(guest)
        guard await device(set).waitForOpen(timeout: .seconds(5)) else {
            throw AdminError("guest \(id) has not opened the service")
        }
        return (id, set)
    }

    func status(_ session: AdminSession) {
        let guests = self.host.guests
        session.output("\(guests.count) guest(s) connected, \(self.host.servedCount) served since start")
        for guest in guests {
            let bus = self.host.bus(guest: guest.id)
            let set = bus.flatMap { self.services.services(for: $0) }
            let memory = guest.memoryBytes >> 20
            session.output("guest \(guest.id): memory \(memory) MiB, channels offered \(bus?.relids ?? [])")
            guard let set else { continue }
            session.output("  heartbeat: \(describe(set.heartbeat.health))")
            let devices = [
                ("heartbeat", set.heartbeat.device), ("shutdown", set.shutdown.device),
                ("timesync", set.timeSync.device), ("kvp", set.kvp.device), ("fcopy", set.fileCopy.device),
                ("vss", set.vss.device),
            ]
            for (name, device) in devices { session.output("  \(name): \(device.phase)") }
        }
    }

    func heartbeat(_ request: AdminRequest, _ session: AdminSession) async throws {
        let (id, set) = try await self.opened(request.guest) { $0.heartbeat.device }
        let sequence = try await set.heartbeat.beat()
        session.output("guest \(id): heartbeat answered (sequence \(sequence)); \(describe(set.heartbeat.health))")
    }

    /// Parameters: any of `reboot`, `hibernate`, `force`; none powers off.
    func shutdown(_ request: AdminRequest, _ session: AdminSession) async throws {
        let (id, set) = try await self.opened(request.guest) { $0.shutdown.device }
        let p = request.parameters
        var flags: ShutdownFlags = []
        if p.contains("reboot") { flags.insert(.restart) }
        if p.contains("hibernate") { flags.insert(.hibernate) }
        if p.contains("force") { flags.insert(.force) }
        let status = try await set.shutdown.request(flags, message: "vmbus ctl")
        guard status.isSuccess else { throw AdminError("guest \(id) refused: status \(status)") }
        let action = flags.contains(.restart) ? "reboot" : flags.contains(.hibernate) ? "hibernate" : "power off"
        session.output("guest \(id): accepted \(action)")
    }

    func time(_ request: AdminRequest, _ session: AdminSession) async throws {
        let (id, set) = try await self.opened(request.guest) { $0.timeSync.device }
        try await set.timeSync.send(.sync)
        session.output("guest \(id): time sync sent (host FILETIME \(SystemClock.fileTimeNow()))")
    }

    /// Parameters: `get POOL KEY`, `set POOL KEY VALUE`, `delete POOL KEY` or `list POOL`.
    func kvp(_ request: AdminRequest, _ session: AdminSession) async throws {
        let (_, set) = try await self.opened(request.guest) { $0.kvp.device }
        let p = request.parameters
        guard p.count >= 2, let poolNumber = UInt8(p[1]), poolNumber < 5 else {
            throw AdminError("kvp needs an operation and a pool 0–4")
        }
        let pool = KVPPool(rawValue: poolNumber)
        try await daemonService("KVP", "hv_kvp_daemon") {
            switch (p[0], p.count) {
            case ("get", 3):
                guard let value = try await set.kvp.get(pool: pool, key: p[2]) else {
                    throw AdminError("no key '\(p[2])' in pool \(poolNumber)")
                }
                session.output(value)
            case ("set", 4):
                let status = try await set.kvp.set(pool: pool, key: p[2], value: p[3])
                guard status.isSuccess else { throw AdminError("the guest refused: status \(status)") }
            case ("delete", 3):
                let status = try await set.kvp.delete(pool: pool, key: p[2])
                guard status.isSuccess else { throw AdminError("no key '\(p[2])' in pool \(poolNumber)") }
            case ("list", 2):
                for entry in try await set.kvp.enumerate(pool: pool) { session.output("\(entry.key)=\(entry.value)") }
            default:
                throw AdminError("kvp get POOL KEY | set POOL KEY VALUE | delete POOL KEY | list POOL")
            }
        }
    }

    /// Parameters: `SRC GUEST_PATH`, then any of `overwrite`, `create-path`. `SRC` is read by
    /// this process, so it names a file on the host.
    func copy(_ request: AdminRequest, _ session: AdminSession) async throws {
        let (id, set) = try await self.opened(request.guest) { $0.fileCopy.device }
        let p = request.parameters
        guard p.count >= 2 else { throw AdminError("copy needs SRC and GUEST_PATH") }
        guard let data = FileManager.default.contents(atPath: p[0]) else { throw AdminError("cannot read \(p[0])") }
        let target = try FileCopyDestination(guestPath: p[1], sourcePath: p[0])
        var flags: FileCopyFlags = []
        if p.contains("overwrite") { flags.insert(.overwrite) }
        if p.contains("create-path") { flags.insert(.createPath) }
        let bytes = [UInt8](data)
        // One progress answer per percent, not per 6 KiB fragment.
        var last = -1
        try await set.fileCopy.copy(bytes, to: target, flags: flags) { sent, total in
            let percent = total == 0 ? 100 : sent * 100 / total
            if percent != last {
                last = percent
                session.progress(done: sent, total: total)
            }
        }
        session.output("copied \(bytes.count) bytes to guest \(id):\(target.path)")
    }

    func backup(_ request: AdminRequest, _ session: AdminSession) async throws {
        let (_, set) = try await self.opened(request.guest) { $0.vss.device }
        let results = try await daemonService("VSS", "hv_vss_daemon") { try await set.vss.backup() }
        for (operation, status) in results {
            session.output("\(vssName(operation)): \(status.isSuccess ? "ok" : "failed (status \(status))")")
        }
        if let failed = results.first(where: { !$0.1.isSuccess }) {
            let frozen = results.contains { $0.0 == .freeze && $0.1.isSuccess }
            throw AdminError("backup failed at \(vssName(failed.0))\(frozen ? "" : "; nothing was frozen")")
        }
    }
}
