import ArgumentParser
import Dispatch
import Foundation
import Logging
import VMBusAdmin
import VMBusCapture
import VMBusDevices
import VMBusHost
import VMBusLocal
import VMBusMemory
import VMBusUio
import VMBusWire

/// `vmbus host`: a VMBus host process on the local substrate.
struct HostCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "host",
        abstract: "Run a VMBus host that guest processes connect to over a Unix socket (spec 09).",
        discussion: """
            Listens on SOCKET (a SOCK_SEQPACKET Unix socket). A stale socket file (left by a host \
            that died) is replaced; a socket another host still listens on is refused, as is a \
            path that is not a socket. Every \
            guest that connects gets its own bus with the configured devices. A guest that dies \
            (even by SIGKILL) only ends its own connection; its channels, GPADLs and mappings \
            are released and the host keeps serving. Stops on SIGINT or SIGTERM, saying goodbye \
            to every guest and removing the socket file, each step logged, exit 0 \
            (docs/OPERATIONS.md has the order and the systemd unit vmbus-host.service).

            Devices: echo (answers every in-band packet with its payload; up to 64 sub-channels \
            on request), discard (drops every packet, completing those that ask), ic (the six \
            integration services: heartbeat, shutdown, timesync, KVP, VSS, file copy) and hvsock \
            (Hyper-V socket services: echo on port 7, discard on port 9). Give \
            --device echo:3 for three echo devices; repeat --device for several kinds. Drive \
            the services of connected guests with 'vmbus ctl --host ADMIN_SOCKET'. With \
            --monitor, echo and discard devices ask for monitored notification (MNF, spec 09 \
            §2.3): a guest that supplies monitor pages ('vmbus guest --monitor') gets a monitor \
            id per channel and signals by setting its bit in the monitor page, which the host \
            scans; other guests get event signalling as before.

            --net tap:NAME offers every guest a synthetic NIC (netvsp, spec 11) whose frames \
            come and go through the TAP interface NAME in the host's network namespace (the \
            newest guest's NIC has it); --net switch joins the guests' NICs to each other \
            through a learning switch. --mac, --mtu and --net-queues set the NIC; 'vmbus net \
            stat' shows per-queue counters. A guest drives it with 'vmbus guest --net tap:NAME'.

            --vsock-relay DIR exposes the guest's Hyper-V sockets as Unix sockets (the hybrid \
            vsock convention, implies --device hvsock): connect to DIR/vsock and write \
            'CONNECT <port>\\n' to reach a guest port (answer 'OK <local port>\\n'); a guest \
            connection to port N is joined to the Unix socket DIR/vsock_N if it exists (else \
            refused). With several guests, CONNECT goes to the newest one. 'vmbus sock' uses it.

            --metrics [ADDR:]PORT serves per-channel and per-device counters (packets, bytes, \
            interrupts, ring-full events, pending_send_sz waits, requestor misses, the guests' \
            protocol violations by kind, the NICs' and disks' per-queue counters) in the \
            Prometheus text format at http://ADDR:PORT/metrics. A bare PORT listens on \
            127.0.0.1 only; other machines reach it only when an address is given. The counters \
            are read when scraped: the data path counts nothing more for them. docs/METRICS.md \
            has every metric and a scrape configuration.

            --uio-export DIR writes what a Linux guest shows for devices bound to \
            uio_hv_generic — DIR/sys/bus/vmbus/devices/<instance>/ (sysfs attributes, the \
            channel's 'ring' file in the uio layout) and DIR/dev/uioN (a Unix stream socket \
            standing in for the uio node: 4-byte reads wait for interrupts, 4-byte writes are \
            irqcontrol) — and serves the devices' host side on them, with no guest process: \
            'vmbus ls --sysfs DIR/sys' lists them and 'vmbus fcopy-daemon --sysfs DIR/sys' \
            serves file copy, driven by 'vmbus ctl copy --guest uio …'. docs/UIO-EXPORT.md has \
            the layout. Every exported device also has map 1 (int_page) and map 2 \
            (monitor_page, watched while a program holds the node). --uio-device net exports \
            the synthetic NIC as uio_hv_generic shows it (needs --net, whose backend it uses: \
            tap:NAME, or switch to join it to the guests' NICs): monitor_id, 2 MiB rings, map 3 \
            recv:<gpadl> (31 MiB) and map 4 send:<gpadl> (16 MiB), the buffers a user-space \
            netvsc (DPDK's, or 'vmbus guest --sysfs DIR/sys --net tap:NAME') names in NVSP; \
            page lists it sends GPA-direct are read from its own memory (/proc/PID/mem of the \
            process holding the node: run the host as root or as that process's user with \
            ptrace allowed).
            """
    )

    @Option(name: .long, help: "The socket path to listen on.")
    var listen: String

    @Option(name: .long, help: "A device to offer, KIND[:COUNT] (repeatable; default: echo and ic).")
    var device: [String] = []

    @Option(name: .long, help: "The admin socket 'vmbus ctl' talks to (default: the listen path + .admin).")
    var admin: String?

    @Option(name: .long, help: "Guests served at once.")
    var maxGuests: Int = 16

    @Option(name: .long, help: "Expose hvsock as Unix sockets in this directory (hybrid vsock; see below).")
    var vsockRelay: String?

    @Option(name: .long, help: "Also serve devices as a fake uio_hv_generic guest in this directory (see below).")
    var uioExport: String?

    @Option(name: .long, help: "A device for --uio-export: fcopy, echo or net (repeatable; default fcopy).")
    var uioDevice: [String] = []

    @Flag(name: .long, help: "Echo devices answer, and discard devices drop packets in place, from the channel's interrupt handler on the event loop instead of a task (lower latency, higher throughput).")
    var echoInterrupts = false

    @Flag(name: .long, help: "Offer echo and discard devices with monitored notification (MNF): a guest that gives monitor pages gets monitor ids and signals through them.")
    var monitor = false

    @OptionGroup var network: HostNetworkOptions

    @OptionGroup var storage: HostStorageOptions

    @Option(name: .long, help: "Take over from the host serving this admin socket, with no pause for its guests beyond a few milliseconds (docs/SERVICING.md); give the same device options as it has.")
    var takeover: String?

    @Option(name: .long, help: .hidden)
    var takeoverFault: String?

    @OptionGroup var capture: CaptureOptions

    @OptionGroup var metrics: MetricsOptions

    @OptionGroup var log: LogOptions

    /// The parsed device list.
    func devices() throws -> [(kind: String, count: Int)] {
        var specs = self.device.isEmpty ? ["echo", "ic"] : self.device
        if self.vsockRelay != nil && !specs.contains("hvsock") { specs.append("hvsock") }
        return try specs.map { spec in
            let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
            let count = parts.count == 2 ? Int(parts[1]) : 1
            guard let count, (1...256).contains(count) else { throw ValidationError("bad device count in '\(spec)'") }
            guard ["echo", "discard", "ic", "hvsock"].contains(parts[0]) else {
                throw ValidationError("unknown device '\(parts[0])'; known: echo, discard, ic, hvsock")
            }
            guard !["ic", "hvsock"].contains(parts[0]) || count == 1 else { throw ValidationError("\(parts[0]) takes no count") }
            return (parts[0], count)
        }
    }

    /// The parsed --uio-device list.
    func exportedDevices() throws -> [String] {
        let kinds = self.uioDevice.isEmpty ? ["fcopy"] : self.uioDevice
        for kind in kinds where !["fcopy", "echo", "net"].contains(kind) {
            throw ValidationError("unknown --uio-device '\(kind)'; known: fcopy, echo, net")
        }
        guard Set(kinds).count == kinds.count else { throw ValidationError("each --uio-device kind at most once") }
        return kinds
    }

    func validate() throws {
        _ = try self.devices()
        _ = try self.exportedDevices()
        if !self.uioDevice.isEmpty && self.uioExport == nil { throw ValidationError("--uio-device needs --uio-export") }
        if self.uioDevice.contains("net") && self.network.net == nil {
            throw ValidationError("--uio-device net needs --net (tap:NAME or switch): the exported NIC's frames go there")
        }
        guard self.maxGuests >= 1 else { throw ValidationError("--max-guests must be at least 1") }
        if self.takeover != nil && (self.vsockRelay != nil || self.uioExport != nil) {
            throw ValidationError("--takeover cannot carry --vsock-relay or --uio-export yet (their sockets are not handed over)")
        }
        if let fault = self.takeoverFault, !["received", "restored"].contains(fault) {
            throw ValidationError("--takeover-fault is received or restored")
        }
    }

    func run() throws {
        let logger = self.log.logger("vmbus.host", default: .info)
        let specs = try self.devices()
        var options = LocalHost.Options()
        options.maximumGuests = self.maxGuests
        // Installed whether or not --capture is given: `vmbus ctl capture start` turns it on.
        let capture = CaptureSwitch()
        if let sink = try self.capture.start() {
            do { try capture.start(sink) } catch { throw CLIError("--capture: \(error)") }
        }
        options.capture = capture
        let registry = ICRegistry()
        let adminPath = self.takeover ?? self.admin ?? self.listen + ".admin"
        // A takeover first receives everything: the TAP device comes with it.
        let received = try self.receiveTakeover()
        let network: HostNetwork?
        do {
            let tap = try received.map { received throws(SavedStateError) in
                try LocalHost.handoverExtras(received.state, descriptors: received.descriptors)["tap"]
            } ?? nil
            network = try HostNetwork(options: self.network, adoptingTap: tap)
        } catch {
            received?.refuse("\(error)")
            throw error
        }
        let storage = try HostStorage(options: self.storage)
        let relay: HvSocketRelay?
        do {
            relay = try self.vsockRelay.map { directory throws(HvSocketRelayError) in
                try HvSocketRelay(directory: directory) { line in logger.info("\(line)") }
            }
        } catch {
            throw CLIError("cannot start the vsock relay: \(error)")
        }
        let makeDevices: @Sendable (HostBus) -> [any HostDevice] = { [monitor = self.monitor, echoInterrupts = self.echoInterrupts] bus in
                var devices: [any HostDevice] = []
                if let network { devices.append(network.device(for: bus)) }
                if let storage { devices.append(storage.device(for: bus)) }
                for (kind, count) in specs {
                    if kind == "hvsock" {
                        let sockets = HvSocketHost(bus: bus)
                        HvSocketServices.start(on: sockets)
                        relay?.attach(sockets)
                        continue
                    }
                    if kind == "ic" {
                        let set = ICSet()
                        registry.add(set, for: bus)
                        devices += set.devices
                        set.startPeriodic()
                        bus.onConnectionLost {
                            set.stop()
                            registry.remove(bus)
                        }
                        continue
                    }
                    for _ in 0..<count {
                        let n = UInt32(devices.count)
                        let instance = GUID(data1: 0xEC40_0000 | n, data2: 0x5EED, data3: 0, data4: 0)
                        if kind == "discard" {
                            devices.append(DiscardDevice(instance: instance, wantsMonitor: monitor, interruptDriven: echoInterrupts))
                        } else {
                            let echo = EchoDevice(
                                instance: instance, maximumSubChannels: 64, wantsMonitor: monitor, interruptDriven: echoInterrupts)
                            echo.attach(to: bus)
                            devices.append(echo)
                        }
                    }
                }
                return devices
            }
        let (host, admin) = try self.startHost(
            options: options, adminPath: adminPath, logger: logger, received: received, devices: makeDevices)
        let (export, exportedServices) = try self.startExport(logger, network: network)
        admin.registerIntegrationServices(host: host, services: registry, exported: exportedServices)
        admin.registerStatistics(host: host, network: network, storage: storage)
        admin.registerCapture(capture)
        // Before the ready lines: a signal sent right after them is not lost.
        let shutdown = Shutdown(logger)
        let tapDescriptor = network?.tap?.device.fileDescriptor()
        admin.registerTakeover(host: host, extraDescriptors: { tapDescriptor.map { ["tap": $0] } ?? [:] }) { _ in
            shutdown.request(.handedOver)
        }
        admin.registerService(successor: Self.successor())
        if let takenOver = received {
            // Restored but not started: until the old host lets go it may still resume, so
            // nothing here reads from the guests yet.
            if self.takeoverFault == "restored" { Foundation.exit(3) }
            let report: String
            do { report = try takenOver.confirm() } catch { throw CLIError("the old host did not let go: \(error)") }
            admin.start()
            host.start()
            print("vmbus host: pid \(getpid()) took over from pid \(takenOver.previousPID): \(report)")
        } else {
            admin.start()
            host.start()
        }
        // After a takeover the old host holds the port until it exits, right after letting go.
        let metrics = try self.metrics.serve(
            MetricsOptions.hostSources(host: host, network: network, storage: storage), retryFor: received == nil ? .zero : .seconds(10)
        ) { line in logger.warning("\(line)") }
        // Lines on standard output once guests can connect: scripts and tests wait for them.
        print("vmbus host: admin socket \(adminPath)")
        if let relay { print("vmbus host: vsock relay \(relay.connectPath)") }
        if let tap = network?.tap { print("vmbus host: network tap \(tap.device.name) (MAC \(tap.macAddress), MTU \(tap.mtu))") }
        for disk in storage?.disks ?? [] {
            print("vmbus host: disk lun \(disk.lun): \(disk.label), \(disk.backend.byteCount) bytes\(disk.backend.isReadOnly ? ", read-only" : "")")
        }
        if let export { print("vmbus host: uio export \(export.sysfsRoot)") }
        if let metrics { print("vmbus host: metrics \(metrics.url)") }
        print("vmbus host: listening on \(self.listen)")
        DescriptorIO.flushOutput()
        switch shutdown.wait() {
        case .handedOver:
            // Every descriptor this process would close or shut down now serves the new host:
            // leave touching nothing, once the takeover and `service` requests are answered.
            shutdown.run([
                .init("answer the takeover and service requests (at most 5 s)") { _ = admin.finishRequests(timeout: .seconds(5)) },
                // This process's capture ends here, complete; the new host writes its own file.
                .init("finish the capture file") { capture.finish() },
            ])
            logger.info("handed over to the new host")
            DescriptorIO.flushOutput()
            Foundation.exit(0)
        case .signal:
            // Nothing new comes in first, so the goodbyes reach every guest there is; disks are
            // flushed only once no guest can write; the capture, last, holds the goodbyes.
            shutdown.run([
                .init("stop the metrics endpoint") { metrics?.stop() },
                .init("stop the vsock relay and the uio export") {
                    relay?.stop()
                    export?.stop()
                },
                .init("stop the admin socket and remove it") { admin.stop() },
                .init("stop accepting guests, say goodbye to each (its channels closed) and remove the socket") { host.stop() },
                .init("flush the disks") { storage?.flush() },
                .init("finish the capture file") { capture.finish() },
            ])
        }
    }
}

extension HostCommand {
    /// With --takeover: asks the running host to hand over and receives its state and
    /// descriptors (nil without).
    func receiveTakeover() throws -> HostTakeover.Received? {
        guard let takeover = self.takeover else { return nil }
        let received: HostTakeover.Received
        do { received = try HostTakeover.begin(adminPath: takeover) } catch { throw CLIError("cannot take over: \(error)") }
        if self.takeoverFault == "received" { Foundation.exit(3) }
        return received
    }

    /// The host and its admin server: listening afresh, or restored from what a takeover
    /// `received` (the caller confirms it once this host runs).
    func startHost(
        options: LocalHost.Options, adminPath: String, logger: Logger, received: HostTakeover.Received?,
        devices: @escaping @Sendable (HostBus) -> [any HostDevice]
    ) throws -> (LocalHost, AdminServer) {
        guard let received else {
            let host: LocalHost
            do { host = try LocalHost(path: self.listen, options: options, logger: logger, devices: devices) } catch {
                throw CLIError("cannot listen on \(self.listen): \(error)")
            }
            do { return (host, try AdminServer(path: adminPath)) } catch {
                host.stop()
                throw CLIError("cannot listen on \(adminPath): \(error)")
            }
        }
        do {
            let host = try LocalHost(
                restoring: received.state, descriptors: received.descriptors, path: self.listen, options: options, logger: logger,
                devices: devices)
            return (host, try AdminServer(path: adminPath, listener: received.adminListener))
        } catch {
            received.refuse("\(error)")
            throw CLIError("cannot take over: \(error)")
        }
    }

    /// This program, by the path it was started from (a binary replaced there since is the
    /// one that starts), with its arguments less any earlier --takeover.
    static func successor() -> [String] {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            .map { $0.hasSuffix(" (deleted)") ? String($0.dropLast(10)) : $0 } ?? CommandLine.arguments[0]
        var arguments: [String] = []
        var skip = false
        var capturePath = false
        for argument in CommandLine.arguments.dropFirst() {
            if skip {
                skip = false
                continue
            }
            if capturePath {
                capturePath = false
                arguments.append(Self.nextCapture(argument))
                continue
            }
            if argument == "--takeover" || argument == "--takeover-fault" {
                skip = true
                continue
            }
            if argument.hasPrefix("--takeover=") || argument.hasPrefix("--takeover-fault=") { continue }
            if argument == "--capture" { capturePath = true }
            if argument.hasPrefix("--capture=") {
                arguments.append("--capture=" + Self.nextCapture(String(argument.dropFirst(10))))
                continue
            }
            arguments.append(argument)
        }
        return [executable] + arguments
    }

    /// The capture file of a successor: each host process writes its own complete file —
    /// `bus.pcapng`, then `bus.1.pcapng`, `bus.2.pcapng`, … (the first name not taken).
    static func nextCapture(_ path: String) -> String {
        let url = URL(fileURLWithPath: path)
        var stem = url.deletingPathExtension().lastPathComponent
        let ext = url.pathExtension.isEmpty ? "" : "." + url.pathExtension
        // bus.1 → bus (the numbering goes on from the base name).
        if let dot = stem.lastIndex(of: "."), Int(stem[stem.index(after: dot)...]) != nil { stem = String(stem[..<dot]) }
        let directory = url.deletingLastPathComponent().path
        for n in 1... {
            let candidate = directory + "/" + stem + ".\(n)" + ext
            if !FileManager.default.fileExists(atPath: candidate) { return candidate }
        }
        return path
    }

    /// The --uio-export devices, served; the integration services among them for `vmbus ctl`.
    func startExport(_ logger: Logger, network: HostNetwork?) throws -> (UioExport?, ICSet?) {
        guard let directory = self.uioExport else { return (nil, nil) }
        let log: @Sendable (String) -> Void = { line in logger.info("\(line)") }
        do {
            let export = try UioExport(directory: directory, log: log)
            let services = ICSet(fileCopyInstance: WellKnownInstance.fileCopy)
            for (index, kind) in try self.exportedDevices().enumerated() {
                let relid = UInt32(index + 1)
                switch kind {
                case "fcopy":
                    // Linux's fcopy daemon works with 16 KiB rings (pref_ring_size, 05 §3.1).
                    try export.export(services.fileCopy.device, relid: relid, index: index, ringSize: 16384)
                case "net":
                    // validate() made sure --net is there.
                    guard let nic = network?.exportedDevice() else { continue }
                    // uio_hv_generic's rings (the NIC class has no preferred size) and buffers (05 §10).
                    nic.attach(to: try export.export(nic, relid: relid, index: index, ringSize: (2 << 20) + 4096, buffers: UioNICBuffers()))
                default:
                    let echo = EchoDevice(instance: GUID(data1: 0xEC40_0100, data2: 0x5EED, data3: 0, data4: 0), maximumSubChannels: 0)
                    // uio_hv_generic's default: 2 MiB of data plus the header page (05 §10.1).
                    try export.export(echo, relid: relid, index: index, ringSize: (2 << 20) + 4096)
                }
            }
            return (export, services)
        } catch {
            throw CLIError("--uio-export \(directory): \(error)")
        }
    }
}
