import ArgumentParser
import VMBusWire

/// The `vmbus` command: the entry point for swift-vmbus tools.
@main
struct VMBusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vmbus",
        abstract: "Hyper-V VMBus in Swift: wire formats, rings, host and guest.",
        discussion: """
            swift-vmbus implements both ends of Hyper-V's VMBus on Linux. Start with 'vmbus demo': \
            a host and a guest in one process, a device's whole life on the bus. Then decode \
            captured channel messages and ring packets, drive ring files, look up device classes, \
            convert GUIDs and hvsock ports, and benchmark. Byte input is hex text (spaces, colons \
            and 0x prefixes are ignored); use '-' to read it from standard input.
            """,
        version: swiftVMBusVersion,
        subcommands: [DemoCommand.self, HostCommand.self, GuestCommand.self, CtlCommand.self, NetCommand.self, DiskCommand.self, SockCommand.self, LsCommand.self, FcopyDaemonCommand.self, DecodeCommand.self, CaptureCommand.self, RingCommand.self, BenchCommand.self, ClassesCommand.self, GUIDCommand.self]
    )
}

/// The version printed by `vmbus --version`.
let swiftVMBusVersion = "0.1.0"
