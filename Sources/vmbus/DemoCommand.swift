import ArgumentParser
import Synchronization
import VMBusChannel
import VMBusDevices
import VMBusGuest
import VMBusHost
import VMBusLoopback
import VMBusWire

/// `vmbus demo`: a host and a guest on the in-process bus, through a device's whole life.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a VMBus host and a guest as two processes and watch the bus work.",
        discussion: """
            Starts 'vmbus host' as a child process on a temporary socket and acts as the guest: \
            connects (guest memory as a memfd, version negotiation, offers), binds the echo \
            driver to every device (GPADLs, OpenChannel, eventfd doorbells), runs echo traffic \
            with live rates for --seconds, asks for sub-channels, lists the bus, then shuts both \
            ends down cleanly. Ctrl-C ends it early, just as cleanly.

            --in-process runs host and guest in this one process instead, through a device's \
            whole life (hot add, rescind, unload); --trace then prints every control message \
            decoded.
            """
    )

    @Flag(name: .long, help: "Run host and guest in this process (the in-process bus).")
    var inProcess = false

    @Option(name: .long, help: "Seconds of echo traffic in the two-process demo.")
    var seconds: Double = 3

    @Option(name: .long, help: "Echo devices the host offers at start.")
    var devices: Int = 2

    @Option(name: .long, help: "Echo round trips per device.")
    var rounds: Int = 1000

    @Option(name: .long, help: "Sub-channels to request on the first device.")
    var subChannels: UInt16 = 2

    @Flag(name: .long, help: "Give the host monitor pages and ask for monitored notification.")
    var monitor = false

    @Option(name: .long, help: "Capture the guests' side of the two-process demo into this pcapng file (docs/CAPTURE.md): one file across the host's replacement.")
    var capture: String?

    @Option(name: .long, help: "With --capture: bytes of data kept per record.")
    var snaplen = 512

    @Flag(name: .long, help: "Print every control message as it crosses the bus.")
    var trace = false

    @OptionGroup var log: LogOptions

    func validate() throws {
        guard self.seconds > 0, self.seconds <= 3600 else { throw ValidationError("--seconds must be in (0, 3600]") }
        guard (1...256).contains(self.devices) else { throw ValidationError("--devices must be 1…256") }
        guard self.rounds >= 1 else { throw ValidationError("--rounds must be at least 1") }
        guard self.subChannels <= 64 else { throw ValidationError("--sub-channels must be 0…64") }
        if self.capture != nil, self.inProcess { throw ValidationError("--capture is for the two-process demo") }
        guard (0...(1 << 20)).contains(self.snaplen) else { throw ValidationError("--snaplen must be 0…1048576") }
    }

    func run() async throws {
        if self.inProcess {
            try await self.runInProcess()
        } else {
            try await self.runTwoProcesses()
        }
    }

    func runInProcess() async throws {
        let bus = try LoopbackBus(monitorPages: self.monitor)
        if self.trace {
            bus.setTap { delivery in
                switch delivery {
                case .toHost(let bytes, let id): print(traceLine("guest → host (conn \(id))", bytes))
                case .toGuest(let bytes): print(traceLine("host → guest", bytes))
                case .signalHost, .scanMonitorPage, .signalGuest: break
                }
            }
        }
        print("host: offering \(self.devices) echo device(s)")
        var hosted: [EchoDevice] = []
        for n in 0..<self.devices { hosted.append(self.register(bus, n)) }
        let client = EchoClient()
        bus.guest.register(client)

        let start = ContinuousClock.now
        let version = try await bus.guest.connect()
        await bus.guest.settle()
        print("guest: connected at VMBus \(version) in \(milliseconds(elapsedSeconds(since: start))) ms; "
            + "\(bus.guest.devices.count) device(s), bound: "
            + bus.guest.devices.map { "relid \($0.relid) → \(bus.guest.boundDriver($0.relid) ?? "none")" }.joined(separator: ", "))

        for device in client.devices { try await self.exercise(client, device.relid) }

        if self.subChannels > 0, let first = client.devices.first?.relid {
            let enabled = try await client.requestSubChannels(self.subChannels, device: first)
            await bus.guest.settle()
            print("sub-channels: asked for \(self.subChannels), host enabled \(enabled), guest sees relids \(bus.guest.subChannels(of: first))")
        }

        let late = self.register(bus, self.devices)
        await bus.guest.settle()
        if let relid = bus.guest.device(instance: late.offer.interfaceInstance)?.relid {
            print("hot add: relid \(relid) offered and bound to \(bus.guest.boundDriver(relid) ?? "none")")
            try await self.exercise(client, relid)
            bus.host.rescind(relid)
            await bus.guest.settle()
            print("rescind: relid \(relid) unbound and released (host offers \(bus.host.relids))")
        }

        if let relid = client.devices.first?.relid, let channel = client.channel(relid) {
            let stats = channel.statistics
            print("statistics relid \(relid): out \(stats.outgoing.packets) packets / \(stats.outgoing.events) signals, "
                + "in \(stats.incoming.packets) packets / \(stats.incoming.interrupts) interrupts")
        }
        try await bus.guest.unload()
        let counts = bus.messageCounts
        print("unload: done. Control messages: \(counts.toHost) guest → host, \(counts.toGuest) host → guest; "
            + "guest mistakes \(bus.host.violations.count), host mistakes \(bus.guest.misbehaviours.count)")
        _ = hosted
    }

    func register(_ bus: LoopbackBus, _ n: Int) -> EchoDevice {
        let device = EchoDevice(
            instance: GUID(data1: 0xEC40_0000 | UInt32(n), data2: 0, data3: 0, data4: 0),
            maximumSubChannels: n == 0 ? 64 : 0, wantsMonitor: self.monitor)
        device.attach(to: bus.host)
        bus.host.register(device)
        return device
    }

    func exercise(_ client: EchoClient, _ relid: UInt32) async throws {
        var samples: [Double] = []
        for n in 0..<self.rounds {
            let bytes = (0..<64).map { UInt8(truncatingIfNeeded: $0 &+ n) }
            let start = ContinuousClock.now
            let answer = try await client.echo(bytes, device: relid)
            samples.append(elapsedSeconds(since: start))
            guard answer == bytes else { throw CLIError("echo on relid \(relid) returned different bytes") }
        }
        print("echo: relid \(relid): \(self.rounds) round trips of 64 B, all equal; p50 \(micro(median(samples))) µs")
    }
}

/// One traced control message: direction, type name, size, then its fields.
func traceLine(_ direction: String, _ bytes: [UInt8]) -> String {
    guard let message = try? ChannelMessage.parse(bytes[...], version: .copper, features: .allKnown) else {
        return "\(direction): \(bytes.count) bytes (not a message this tool decodes)"
    }
    return "\(direction): \(message.type.name), \(bytes.count) bytes\n" + describe(message)
}
