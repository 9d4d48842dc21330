import ArgumentParser
import VMBusWire

/// The `vmbus` command: the entry point for swift-vmbus tools.
@main
struct VMBusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vmbus",
        abstract: "Hyper-V VMBus in Swift: wire formats, rings, host and guest.",
        version: "0.1.0"
    )
}
