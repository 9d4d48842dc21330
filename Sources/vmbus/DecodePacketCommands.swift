import ArgumentParser
import VMBusWire

struct DecodePacket: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "packet",
        abstract: "Decode a ring packet (descriptor included, len8 × 8 bytes, no trailer).",
        discussion: """
            Example: vmbus decode packet '0600 0200 0300 0000 0000000000000000 01020304 00000000'
            """
    )

    @Argument(help: "Hex bytes of the packet, or '-' for standard input.")
    var hex: String

    @Flag(name: .long, help: "Also apply a host's strict checks (known types only, no unknown flags).")
    var strict = false

    func run() throws {
        let bytes = try readHexInput(self.hex)
        let packet: VMBusPacket
        do {
            packet = try VMBusPacket.parse(bytes)
            if self.strict { try packet.descriptor.validateStrictly() }
        } catch {
            throw CLIError("not a valid ring packet: \(error)")
        }
        let d = packet.descriptor
        print("packet type 0x\(String(d.type.rawValue, radix: 16)), \(d.totalLength) bytes (\(d.ringBytes) in the ring)")
        print(describe(packet))
    }
}

struct DecodeIC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ic",
        abstract: "Decode an integration-component message (pipe header onwards) and its service body.",
        discussion: """
            The body is decoded by the IC message type: negotiate, heartbeat, KVP, shutdown, \
            timesync, VSS, fcopy. Pass --packet when the input starts with the ring descriptor.
            """
    )

    @Argument(help: "Hex bytes of the message, or '-' for standard input.")
    var hex: String

    @Flag(name: .long, help: "The input is a whole in-band ring packet, descriptor first.")
    var packet = false

    @Option(name: .long, help: "Negotiated service version (selects timesync v4 and KVP's binary IP form), e.g. 4.0.")
    var serviceVersion: String?

    func run() throws {
        var bytes = try readHexInput(self.hex)[...]
        do {
            if self.packet {
                guard case .inBand(_, let payload) = try VMBusPacket.parse(bytes) else {
                    throw CLIError("the packet is not in-band")
                }
                bytes = payload
            }
            let message = try ICMessage(payload: bytes)
            let version = try self.version(default: message.header.messageVersion)
            print("IC \(message.header.messageType.rawValue), \(bytes.count) bytes, body \(message.body.count)")
            print(describe(message.header))
            print(try decodeBody(message, version: version))
        } catch let error as WireError {
            throw CLIError("not a valid IC message: \(error)")
        }
    }

    private func version(default value: ICVersion) throws -> ICVersion {
        guard let text = self.serviceVersion else { return value }
        let parts = text.split(separator: ".").compactMap { UInt16($0) }
        guard parts.count == 2 else { throw CLIError("service version '\(text)' is not MAJOR.MINOR") }
        return ICVersion(parts[0], parts[1])
    }
}

/// The service body of an IC message, decoded by its type.
func decodeBody(_ message: ICMessage, version: ICVersion) throws -> String {
    var reader = WireReader(message.body)
    switch message.header.messageType {
    case .negotiate: return describe(try ICNegotiate(from: &reader))
    case .heartbeat: return describe(try HeartbeatMessage(from: &reader))
    case .kvpExchange: return describe(try KVPMessage(from: &reader, serviceVersion: version))
    case .shutdown: return describe(try ShutdownMessage(from: &reader))
    case .timeSync:
        return version >= .timeSyncV4
            ? describe(try TimeSyncMessageV4(from: &reader)) : describe(try TimeSyncMessageV3(from: &reader))
    case .vss: return describe(try VSSMessage(from: &reader))
    case .fileCopy: return describe(try FileCopyMessage(from: &reader))
    default: return "body: " + hexSummary(message.body)
    }
}
