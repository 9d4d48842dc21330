import ArgumentParser
import VMBusWire

/// The `vmbus` command: the entry point for swift-vmbus tools.
@main
struct VMBusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vmbus",
        abstract: "Hyper-V VMBus in Swift: wire formats, rings, host and guest.",
        discussion: """
            swift-vmbus implements both ends of Hyper-V's VMBus on Linux. This build carries the \
            wire-format layer: decode captured channel messages and ring packets, look up device \
            classes, and convert GUIDs and hvsock ports. Byte input is hex text (spaces, colons \
            and 0x prefixes are ignored); use '-' to read it from standard input.
            """,
        version: swiftVMBusVersion,
        subcommands: [DecodeCommand.self, RingCommand.self, BenchCommand.self, ClassesCommand.self, GUIDCommand.self]
    )
}

/// The version printed by `vmbus --version`.
let swiftVMBusVersion = "0.1.0"
