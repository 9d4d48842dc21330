import ArgumentParser
import Dispatch
import Foundation
import Logging
import VMBusChannel
import VMBusDevices
import VMBusGuest
import VMBusLocal
import VMBusMemory
import VMBusMetrics
import VMBusNetwork
import VMBusStorage
import VMBusWire

/// `vmbus guest`: a VMBus guest process on the local substrate.
struct GuestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "guest",
        abstract: "Connect a VMBus guest to a host process over a Unix socket (spec 09).",
        discussion: """
            Creates guest memory (a sealed memfd), connects to the host at SOCKET, negotiates a \
            VMBus version, binds its drivers (echo) and opens their channels. With --list it \
            prints the bus like lsvmbus -vv and exits; with --echo-rounds N it checks N echo \
            round trips per device and exits; otherwise it keeps running (with --traffic, \
            sending echo traffic) until SIGINT/SIGTERM (exit 0) or until the host goes away \
            (exit 1, with the reason); either way it stops in the order docs/OPERATIONS.md gives. The integration services answer the host all along: \
            heartbeat, shutdown (--on-shutdown), timesync (--set-clock), KVP (--kvp-dir), file \
            copy (--fcopy-root) and VSS (--pre-freeze, --post-thaw).

            Hyper-V sockets: --vsock-relay DIR exposes them as Unix sockets (DIR/vsock takes \
            'CONNECT <port>\\n' to reach a host port; a host connection to port N is joined to \
            DIR/vsock_N if it exists); --forward ADDRESS=PORT listens on ADDRESS (tcp:HOST:PORT \
            or unix:PATH) in this guest and carries each client to host port PORT.

            Storage: --disk-nbd SOCKET drives the host's synthetic SCSI controller (storvsc; \
            vmbus host --disk) and serves its disk (the lowest LUN, or --disk-lun N) to NBD \
            clients on the Unix socket SOCKET: qemu-io, qemu-img, nbdinfo, fio, nbd-client \
            (nbd+unix:///?socket=SOCKET). --disk-queues N asks for N queues (sub-channels).

            Network: --net tap:NAME drives the host's synthetic NIC (netvsc) and makes a TAP \
            interface NAME its operating-system side: it takes the NIC's MAC address and MTU, \
            and frames cross between it and the host's network (vmbus host --net). Give the \
            interface an address (ip addr add … dev NAME) and it is this network namespace's \
            NIC. --net-queues N asks for N queues (sub-channels, vRSS). Large TCP segments cross \
            whole (LSO out, RSC in) and checksums are left to the receiver where the host offers \
            it; --no-net-offloads sends every frame complete and MTU-sized. Needs CAP_NET_ADMIN.

            uio: --sysfs ROOT --net tap:NAME (instead of --connect) drives the NIC as a \
            user-space netvsc does on a Linux guest where it is bound to uio_hv_generic: ROOT is \
            /sys there, or DIR/sys of 'vmbus host --uio-export DIR --uio-device net'. It maps \
            the device's rings and its receive and send buffers (maps 3 and 4) and names their \
            GPADL handles to the host; it runs until SIGINT/SIGTERM or until the device goes.

            --metrics [ADDR:]PORT serves this guest's per-channel counters (packets, bytes, \
            interrupts, ring-full events, pending_send_sz waits, requestor misses; the 'in' \
            ring is the one the guest reads) in the Prometheus text format at \
            http://ADDR:PORT/metrics, once connected (not with --list or --echo-rounds). A bare \
            PORT listens on 127.0.0.1 only. docs/METRICS.md lists the metrics.
            """
    )

    @Option(name: .long, help: "The host's socket path.")
    var connect: String?

    @Option(name: .long, help: "Drive the synthetic NIC of a uio device in this sysfs tree instead of connecting (with --net; see below).")
    var sysfs: String?

    @Option(name: .long, help: "Guest memory size: bytes, or with K, M or G.", transform: parseSize)
    var memory: Int = 256 << 20

    @Flag(name: .long, help: "Give the host monitor pages, so channels offered with MNF ('vmbus host --monitor') signal through them.")
    var monitor = false

    @Flag(name: .long, help: "Print the bus (relid, class, instance, sub-channel, monitor id, rings) and exit.")
    var list = false

    @Flag(name: .long, help: "Print --list output as JSON.")
    var json = false

    @Option(name: .long, help: "Check this many echo round trips per device, then exit.")
    var echoRounds: Int?

    @Flag(name: .long, help: "Keep sending echo traffic while running, each answer checked byte for byte; a wrong or lost answer makes the guest exit 1 when it stops.")
    var traffic = false

    @Option(name: .long, help: "With --traffic: at most this many rounds per second (0: as fast as they go).")
    var trafficRate: Int = 0

    @Option(name: .long, help: "Directory of the KVP pools (files .kvp_pool_0 … 4).")
    var kvpDir: String = NSHomeDirectory() + "/.local/state/swift-vmbus/kvp"

    @Option(name: .long, help: "Confine file copies from the host below this directory.")
    var fcopyRoot: String?

    @Option(name: .long, help: "Run this shell command when the host asks for shutdown ($1: poweroff, reboot or hibernate).")
    var onShutdown: String?

    @Option(name: .long, help: "Run this shell command before a VSS freeze (60 s limit).")
    var preFreeze: String?

    @Option(name: .long, help: "Run this shell command after a VSS thaw (60 s limit).")
    var postThaw: String?

    @Flag(name: .long, help: "Set the system clock when the host sends a timesync SYNC (needs CAP_SYS_TIME).")
    var setClock = false

    @Option(name: .long, help: "Expose hvsock as Unix sockets in this directory (hybrid vsock).")
    var vsockRelay: String?

    @Option(name: .long, help: "ADDRESS=PORT: forward clients of ADDRESS (tcp:HOST:PORT or unix:PATH) to host port PORT (repeatable).")
    var forward: [String] = []

    @Option(name: .long, help: "tap:NAME — drive the synthetic NIC and join it to TAP interface NAME (needs CAP_NET_ADMIN).")
    var net: String?

    @Option(name: .long, help: "Queues to ask the synthetic NIC for (vRSS sub-channels).")
    var netQueues: Int = 1

    @Flag(name: .long, inversion: .prefixedNo, help: "Use the host's checksum, LSO and RSC offloads through the TAP's virtio-net header.")
    var netOffloads = true

    @OptionGroup var storage: GuestStorageOptions

    @OptionGroup var hibernation: HibernationOptions

    @OptionGroup var capture: CaptureOptions

    @OptionGroup var metrics: MetricsOptions

    @OptionGroup var log: LogOptions

    /// The parsed --forward list.
    func forwards() throws -> [(StreamAddress, UInt32)] {
        try self.forward.map { spec in
            guard let equals = spec.lastIndex(of: "="), let address = StreamAddress(String(spec[..<equals])),
                let port = UInt32(spec[spec.index(after: equals)...])
            else { throw ValidationError("--forward wants ADDRESS=PORT with ADDRESS tcp:HOST:PORT or unix:PATH, got '\(spec)'") }
            return (address, port)
        }
    }

    func validate() throws {
        _ = try self.forwards()
        guard (self.connect == nil) != (self.sysfs == nil) else { throw ValidationError("give --connect SOCKET or --sysfs ROOT (one of them)") }
        if self.sysfs != nil, self.net == nil { throw ValidationError("--sysfs drives a uio NIC: it needs --net tap:NAME") }
        if self.sysfs != nil, self.capture.capture != nil { throw ValidationError("--capture records the local substrate (--connect); the uio NIC is not captured") }
        guard self.memory >= 1 << 20, self.memory % 4096 == 0 else {
            throw ValidationError("--memory must be at least 1M and a multiple of 4096")
        }
        if let rounds = self.echoRounds, rounds < 1 { throw ValidationError("--echo-rounds must be at least 1") }
        if let net = self.net, !net.hasPrefix("tap:") || net.count <= 4 { throw ValidationError("--net takes tap:NAME") }
        guard (1...64).contains(self.netQueues) else { throw ValidationError("--net-queues must be 1…64") }
    }

    func run() async throws {
        let logger = self.log.logger("vmbus.guest", default: .warning)
        guard let connect = self.connect else { return try await self.runNetworkOverUio(root: self.sysfs ?? "/sys") }
        let resumeStart = ContinuousClock.now
        let resumed = try self.hibernation.resumed()
        let capture = try self.capture.start()
        // The file is completed however this function ends (records made later are dropped):
        // by the last stop step, or here when the guest ends before its stop steps.
        let captureOpen = Locked(capture != nil)
        let finishCapture = {
            if captureOpen.withLock({ open in defer { open = false }; return open }) { capture?.finish() }
        }
        defer { finishCapture() }
        let guest: LocalGuest
        do {
            guest = try LocalGuest.connect(
                path: connect, memoryBytes: self.memory, memory: resumed?.0, monitorPages: self.monitor, logger: logger,
                capture: capture)
        } catch {
            throw CLIError("cannot connect to \(connect): \(error)")
        }
        let client = EchoClient()
        guest.bus.register(client)
        let network = try self.startNetwork(guest.bus)
        let storage = self.storage.startDriver(guest.bus)
        for service in self.integrationServices(logger) { guest.bus.register(ICGuestDriver(service)) }
        let sockets = HvSocketGuest(bus: guest.bus)
        guest.bus.register(sockets)
        let version: VMBusVersion
        do {
            if let saved = resumed?.1 {
                let (back, missing) = try await guest.bus.resume(saved)
                print("guest: resumed from \(self.hibernation.resume ?? ""): \(back.count) device(s) back with their drivers"
                    + (missing.isEmpty ? "" : "; no longer offered: \(missing.map { "\($0.driver) \($0.instanceID)" })")
                    + " (\(milliseconds(elapsedSeconds(since: resumeStart))) ms)")
            } else {
                _ = try await guest.bus.connect()
            }
            version = guest.bus.version ?? .copper
        } catch {
            throw CLIError("VMBus negotiation failed: \(error)")
        }
        await guest.bus.settle()
        logger.info("connected at VMBus \(version); \(guest.bus.devices.count) device(s)")
        if self.list {
            print(busListing(guest.bus, json: self.json))
            guest.disconnect()
            _ = await guest.ended()
            return
        }
        if let rounds = self.echoRounds {
            for device in client.devices {
                try await checkEcho(client, relid: device.relid, rounds: rounds)
                print("echo: relid \(device.relid): \(rounds) round trips byte-exact")
            }
            guest.disconnect()
            _ = await guest.ended()
            return
        }
        let (relay, forwarders) = try self.startSockets(sockets, logger)
        let stopSockets = {
            relay?.stop()
            for forwarder in forwarders { forwarder.stop() }
        }
        // When a throw below ends the guest (the stop steps stop them otherwise; twice is harmless).
        defer { stopSockets() }
        // Before the ready line: a signal right after it is not lost. Its cause is set before
        // this side ends the connection: the echoes that fail then are not failures.
        let shutdown = Shutdown(logger, first: ("leave the bus (the host closes this guest's channels)", { guest.disconnect() }))
        // SIGUSR1 too, for the same reason.
        let hibernation = self.hibernation.arm(guest)
        print("guest: connected at VMBus \(version); channels open: \(client.devices.map(\.relid))")
        if let (driver, tap) = network {
            guard let nic = driver.nics.first else { throw CLIError("--net: the host offers no synthetic NIC (start it with --net)") }
            print("guest: network \(tap.device.name) up: NVSP \(nic.version), MAC \(nic.macAddress.map { "\($0)" } ?? "?"), MTU \(nic.mtu), \(nic.queueCount) queue(s)")
        }
        var nbd: NBDServer?
        if let storage {
            let (server, disk) = try self.storage.serve(storage) { line in logger.warning("\(line)") }
            nbd = server
            let controller = storage.allControllers.first
            print("guest: disk lun \(disk.lun): \(disk.sectorCount) × \(disk.sectorSize) bytes\(disk.isReadOnly ? ", read-only" : ""), "
                + "protocol \(controller.map { "\($0.version)" } ?? "?"), \(controller?.queueCount ?? 0) queue(s); NBD on \(self.storage.diskNbd ?? "")")
        }
        let metrics = try self.metrics.serve([GuestMetrics(bus: guest.bus)]) { line in logger.warning("\(line)") }
        defer { metrics?.stop() }
        if let metrics { print("guest: metrics \(metrics.url)") }
        if let relay { print("guest: vsock relay \(relay.connectPath)") }
        for forwarder in forwarders {
            // The real port, when the address asked for any free one (port 0).
            var address = forwarder.address
            if case .tcp(let host, 0) = address, let port = forwarder.localPort { address = .tcp(host: host, port: port) }
            print("guest: forwarding \(address) to host port \(forwarder.port)")
        }
        DescriptorIO.flushOutput()
        // A failed echo is kept, not thrown: when the host dies the echoes fail too, and the
        // host's going is the error to report then.
        let trafficFailure = Locked<String?>(nil)
        let traffic = self.traffic ? Task { [rate = self.trafficRate] in
            do {
                try await echoForever(client, rate: rate)
            } catch {
                guard !Task.isCancelled, shutdown.cause == nil, !hibernation.started.withLock({ $0 }), guest.ending == nil else { return }
                trafficFailure.withLock { $0 = "\(error)" }
            }
        } : nil
        let ending = await guest.ended()
        traffic?.cancel()
        // A hibernation ends the connection itself (its goodbye): report how it went.
        if hibernation.started.withLock({ $0 }) {
            await nbd?.stop()
            do {
                if let line = try await hibernation.task.value { print(line) }
                return
            } catch {
                throw CLIError("hibernation failed: \(error)")
            }
        }
        hibernation.task.cancel()
        // After a signal, or after the host went away: the same order either way.
        await shutdown.run([
            .init("stop the NBD server and remove its socket") { await nbd?.stop() },
            .init("stop the vsock relay and the forwarders") { stopSockets() },
            .init("finish the capture file") { finishCapture() },
        ])
        switch ending {
        case .local:
            if let failure = trafficFailure.withLock({ $0 }) { throw CLIError("echo traffic failed: \(failure)") }
            return
        case .goodbye(let reason): throw CLIError("the host ended the connection: \(reason)")
        case .hostGone(let why): throw CLIError("host gone: \(why)")
        }
    }
}

extension GuestCommand {
    /// The relay and forwarders the options ask for.
    func startSockets(_ sockets: HvSocketGuest, _ logger: Logger) throws -> (HvSocketRelay?, [HvSocketForwarder]) {
        let log: @Sendable (String) -> Void = { line in logger.info("\(line)") }
        do {
            let relay = try self.vsockRelay.map { directory throws(HvSocketRelayError) in
                try HvSocketRelay(directory: directory, log: log)
            }
            relay?.attach(sockets)
            var forwarders: [HvSocketForwarder] = []
            for (address, port) in try self.forwards() {
                forwarders.append(try HvSocketForwarder(listen: address, port: port, endpoint: sockets, log: log))
            }
            return (relay, forwarders)
        } catch {
            throw CLIError("hvsock: \(error)")
        }
    }

    /// The six integration services, configured from the options.
    func integrationServices(_ logger: Logger) -> [any ICGuestService] {
        let onShutdown = self.onShutdown
        let shutdown = ShutdownGuest { action, _ in
            let name: String
            switch action {
            case .powerOff: name = "poweroff"
            case .reboot: name = "reboot"
            case .hibernate: name = "hibernate"
            case .unsupported: name = "unsupported"
            }
            guard let command = onShutdown else {
                print("guest: the host asked to \(name) (no --on-shutdown command: not acting)")
                DescriptorIO.flushOutput()
                return
            }
            let ok = await HookCommand(executable: "/bin/sh", arguments: ["-c", command, "vmbus-shutdown", name]).run()
            logger.info("on-shutdown command for \(name): \(ok ? "succeeded" : "failed")")
        }
        var onSync: (@Sendable (UInt64) -> Void)?
        if self.setClock {
            onSync = { fileTime in
                do throws(MemoryError) {
                    try SystemClock.setWallClock(fileTime: fileTime)
                } catch {
                    logger.error("cannot set the clock: \(error)")
                }
            }
        }
        let timeSync = TimeSyncGuest(onSync: onSync)
        let hook: (String?) -> HookCommand? = { $0.map { HookCommand(executable: "/bin/sh", arguments: ["-c", $0]) } }
        return [
            HeartbeatGuest(), shutdown, timeSync, KVPGuest(store: KVPStore(directory: self.kvpDir)),
            FileCopyGuest(root: self.fcopyRoot), VSSGuest(preFreeze: hook(self.preFreeze), postThaw: hook(self.postThaw)),
        ]
    }
}

/// Parses 4096, 64K, 256M, 1G.
func parseSize(_ text: String) throws -> Int {
    let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
    var digits = text.uppercased()
    var unit = 1
    if let last = digits.last, let scale = units[last] {
        unit = scale
        digits.removeLast()
    }
    guard let value = Int(digits), value > 0, value <= Int.max / unit else { throw ValidationError("bad size '\(text)'") }
    return value * unit
}

/// `rounds` echo round trips of varying lengths, each checked byte for byte.
func checkEcho(_ client: EchoClient, relid: UInt32, rounds: Int) async throws {
    for n in 0..<rounds {
        let bytes = (0..<(n * 131 % 2000 + 1)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ n) }
        let answer = try await client.echo(bytes, device: relid)
        guard answer == bytes else { throw CLIError("echo on relid \(relid) returned different bytes in round \(n)") }
    }
}

/// Echo traffic on every device until cancelled or an echo fails (wrong bytes, or its
/// channel closed). `rate` bounds the rounds per second (0: as fast as they go).
func echoForever(_ client: EchoClient, rate: Int = 0) async throws {
    var n = 0
    while !Task.isCancelled {
        for device in client.devices { try await checkEcho(client, relid: device.relid, rounds: 1 + n % 3) }
        n += 1
        if rate > 0 { try? await Task.sleep(for: .seconds(1) / rate) }
    }
}

/// The bus as `lsvmbus -vv` shows it: one block per channel (primaries and sub-channels).
func busListing(_ bus: GuestBus, json: Bool) -> String {
    var rows: [[String: String]] = []
    for device in bus.devices {
        for relid in [device.relid] + bus.subChannels(of: device.relid) {
            let offer = bus.offer(relid) ?? device.offer
            var row: [String: String] = [
                "relid": "\(relid)",
                "class": "\(offer.interfaceType)",
                "class_name": className(offer.interfaceType),
                "instance": "\(offer.interfaceInstance)",
                "sub_channel_index": "\(offer.subChannelIndex)",
                "monitor_id": offer.monitorAllocated ? "\(offer.monitorID)" : "none",
                "driver": bus.boundDriver(device.relid) ?? "none",
            ]
            if let channel = bus.channel(relid) {
                let sizes = channel.ringSizes
                let fill = channel.fill
                row["ring_out_bytes"] = "\(sizes.outgoing)"
                row["ring_in_bytes"] = "\(sizes.incoming)"
                row["ring_out_fill"] = fill.outgoing.map { "\($0)" } ?? "invalid"
                row["ring_in_fill"] = fill.incoming.map { "\($0)" } ?? "invalid"
            }
            rows.append(row)
        }
    }
    if json {
        let objects = rows.map { row in
            "{" + row.keys.sorted().map { key in
                let value = row[key] ?? ""
                let numeric = Int(value) != nil && key != "class" && key != "instance"
                return "\"\(key)\": " + (numeric ? value : "\"\(value)\"")
            }.joined(separator: ", ") + "}"
        }
        return "[" + objects.joined(separator: ",\n ") + "]"
    }
    return rows.map { row in
        let relid = row["relid"] ?? ""
        var text = "VMBUS ID \(String(repeating: " ", count: max(0, 3 - relid.count)) + relid): Class_ID = {\(row["class"] ?? "")} - \(row["class_name"] ?? "")\n"
        text += "\tDevice_ID = {\(row["instance"] ?? "")}\n"
        text += "\tRel_ID=\(row["relid"] ?? ""), sub_channel_index=\(row["sub_channel_index"] ?? ""), "
            + "monitor_id=\(row["monitor_id"] ?? ""), driver=\(row["driver"] ?? "")"
        if let out = row["ring_out_bytes"] {
            text += "\n\tRings: out \(out) bytes (\(row["ring_out_fill"] ?? "") pending), "
                + "in \(row["ring_in_bytes"] ?? "") bytes (\(row["ring_in_fill"] ?? "") pending)"
        } else {
            text += "\n\tRings: not open"
        }
        return text
    }.joined(separator: "\n")
}

/// The class's name from the device table, or this project's own classes.
func className(_ id: GUID) -> String {
    if id == Echo.classID { return "swift-vmbus echo" }
    if id == Discard.classID { return "swift-vmbus discard" }
    return DeviceClass.lookup(id)?.name ?? "unknown class"
}

extension GuestCommand {
    /// --net tap:NAME: the TAP interface and the netvsc driver that joins the NIC to it.
    func startNetwork(_ bus: GuestBus) throws -> (NetvscDriver, TapBackend)? {
        guard self.net != nil else { return nil }
        let (driver, tap) = try self.networkDriver()
        bus.register(driver)
        return (driver, tap)
    }

    /// The netvsc driver whose NIC is the TAP interface of --net tap:NAME.
    func networkDriver() throws -> (NetvscDriver, TapBackend) {
        let net = self.net ?? ""
        let name = String(net.dropFirst(4))
        let tap: TapBackend
        do { tap = try TapBackend(name: name, offloads: self.netOffloads) } catch { throw CLIError("--net \(net): \(error)") }
        var configuration = NetvscDriver.Configuration()
        configuration.queues = self.netQueues
        let driver = NetvscDriver(configuration: configuration) { mac, mtu in
            tap.adopt(macAddress: mac, mtu: mtu)
            return tap
        }
        return (driver, tap)
    }
}
