import ArgumentParser
import VMBusWire

/// `vmbus guid`: convert between the text form, the mixed-endian wire bytes and hvsock ports.
struct GUIDCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "guid",
        abstract: "Show a GUID's wire bytes, or build one from wire bytes or an hvsock port.",
        discussion: """
            Input is one of: a GUID in text form (with or without braces), 32 hex digits of \
            wire bytes (as in a Linux modalias), or --port N for the Linux vsock service GUID \
            of port N.
            """
    )

    @Argument(help: "A GUID in text form, or 32 hex digits of wire bytes.")
    var value: String?

    @Option(name: .long, help: "Build the hvsock service GUID for this vsock port.")
    var port: UInt32?

    func run() throws {
        let guid: GUID
        if let port = self.port {
            guid = GUID.vsockService(port: port)
        } else if let value = self.value {
            if let parsed = GUID(value) {
                guid = parsed
            } else {
                let bytes = try parseHex(value)
                do {
                    guid = try GUID(wireBytes: bytes)
                } catch {
                    throw CLIError("'\(value)' is neither a GUID nor 16 wire bytes (\(error))")
                }
            }
        } else {
            throw CLIError("give a GUID, wire bytes, or --port")
        }
        print("guid:      \(guid)")
        print("wire:      \(guid.wireBytes.map { hexByte($0) }.joined(separator: " "))")
        print("modalias:  \(guid.modalias)")
        if let known = DeviceClass.lookup(guid) {
            print("class:     \(known.name) (\(known.linuxName)): \(known.summary)")
        }
        if let port = guid.vsockPort {
            print("vsock:     port \(port)")
        }
    }
}
