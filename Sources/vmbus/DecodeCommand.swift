import ArgumentParser
import VMBusWire

/// `vmbus decode`: parse captured bytes with the same strict parsers the host and guest use.
struct DecodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Decode hex bytes as a VMBus channel message, ring packet or IC message.",
        subcommands: [DecodeMessage.self, DecodePacket.self, DecodeIC.self]
    )
}

/// Protocol version given on the command line as `5.3`, `6.0`, `0.13` or a raw number.
struct VersionArgument: ExpressibleByArgument {
    var version: VMBusVersion

    init?(argument: String) {
        let parts = argument.split(separator: ".")
        if parts.count == 2, let major = UInt16(parts[0]), let minor = UInt16(parts[1]) {
            self.version = VMBusVersion(major: major, minor: minor)
        } else if let raw = UInt32(argument.hasPrefix("0x") ? String(argument.dropFirst(2)) : argument,
                                   radix: argument.hasPrefix("0x") ? 16 : 10) {
            self.version = VMBusVersion(rawValue: raw)
        } else {
            return nil
        }
    }
}

struct DecodeMessage: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "message",
        abstract: "Decode a channel message (the SynIC payload, 8-byte header included).",
        discussion: """
            Example: vmbus decode message '02000000 00000000 07000000' --version 5.3
            """
    )

    @Argument(help: "Hex bytes of the message, or '-' for standard input.")
    var hex: String

    @Option(name: .long, help: "Negotiated protocol version, e.g. 5.3 (omit for a disconnected bus).")
    var version: VersionArgument?

    @Option(name: .long, help: "Negotiated 6.0 feature flags, e.g. 0x3f.")
    var features: String = "0"

    @Flag(name: .long, help: "Reject bytes after the message instead of ignoring them.")
    var strict = false

    func run() throws {
        let bytes = try readHexInput(self.hex)
        let flags = try parseNumber(self.features, as: "features")
        do {
            let message = try ChannelMessage.parse(
                bytes, version: self.version?.version, features: FeatureFlags(rawValue: UInt32(truncatingIfNeeded: flags)),
                trailingBytes: self.strict ? .reject : .ignore)
            print("\(message.type) — \(bytes.count) bytes")
            print(describe(message))
        } catch {
            throw CLIError("not a valid channel message: \(error)")
        }
    }
}

/// Parses a decimal or 0x-prefixed hex number.
func parseNumber(_ text: String, as name: String) throws -> UInt64 {
    let value = text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : UInt64(text)
    guard let value else { throw CLIError("\(name) '\(text)' is not a number") }
    return value
}

/// A readable, indented rendering of any parsed value: one field per line, GUIDs in text
/// form, raw-value wrappers (types, flags, statuses) as numbers, byte arrays in hex.
func describe(_ value: Any) -> String {
    var lines: [String] = []
    func walk(_ value: Any, _ label: String?, _ depth: Int) {
        // Tuple elements are labelled ".0", ".1": those labels carry no meaning.
        let shownLabel = label.flatMap { $0.hasPrefix(".") ? nil : $0 }
        let prefix = String(repeating: "  ", count: depth) + (shownLabel.map { "\($0): " } ?? "")
        let mirror = Mirror(reflecting: value)
        let children = Array(mirror.children)
        if let bytes = value as? [UInt8] {
            lines.append(prefix + hexSummary(bytes[...]))
        } else if let slice = value as? ArraySlice<UInt8> {
            lines.append(prefix + hexSummary(slice))
        } else if children.isEmpty || value is GUID || value is VMBusVersion || value is ICVersion
            || value is NTStatus || value is ICStatus {
            lines.append(prefix + String(describing: value))
        } else if mirror.displayStyle == .optional {
            walk(children[0].value, label, depth)
        } else if children.count == 1, children[0].label == "rawValue" {
            let typeName = String(describing: mirror.subjectType)
            let raw = children[0].value
            if let number = raw as? any BinaryInteger {
                lines.append(prefix + "0x" + String(number, radix: 16) + " (\(typeName))")
            } else {
                lines.append(prefix + "\(raw) (\(typeName))")
            }
        } else if mirror.displayStyle == .enum, children.count == 1 {
            // A case with a payload: name the case, then show the payload's fields.
            lines.append(prefix + (children[0].label ?? ""))
            let payload = Mirror(reflecting: children[0].value)
            if payload.displayStyle == .struct || payload.displayStyle == .tuple {
                for child in payload.children { walk(child.value, child.label, depth + 1) }
            } else {
                walk(children[0].value, nil, depth + 1)
            }
        } else {
            // A labelled field shows its name; an unlabelled one (tuple element, top level) its type.
            lines.append(shownLabel == nil ? prefix + String(describing: mirror.subjectType) : prefix)
            for child in children { walk(child.value, child.label, depth + 1) }
        }
    }
    walk(value, nil, 0)
    return lines.joined(separator: "\n")
}

/// Hex of a byte run, with long runs of trailing zeros summarised.
func hexSummary(_ bytes: ArraySlice<UInt8>) -> String {
    guard let last = bytes.lastIndex(where: { $0 != 0 }) else { return "\(bytes.count) zero bytes" }
    let shown = bytes[bytes.startIndex...last]
    let text = shown.prefix(96).map(hexByte).joined() + (shown.count > 96 ? "…" : "")
    let zeros = bytes.count - shown.count
    return "\(bytes.count) bytes: " + text + (zeros > 0 ? " + \(zeros) zero bytes" : "")
}
