import VMBusWire

/// One answer datagram: the server sends any number of output and progress answers, then
/// exactly one end (docs/ADMIN.md).
///
/// Each starts with a kind byte:
///
/// | kind | then |
/// |---|---|
/// | `O` | one line of output, UTF-8, no newline |
/// | `P` | progress: `DONE TOTAL`, two decimal numbers and one space, ASCII |
/// | `E` | the end: a status byte (0 success, 1 failure), then a UTF-8 message (may be empty) |
public enum AdminAnswer: Hashable, Sendable {
    /// A line of output for the user.
    case output(String)
    /// How far a long command has come, in the command's own units (bytes for `copy`).
    case progress(done: Int, total: Int)
    /// The end of the request: whether it succeeded, and a message (the reason, on failure).
    case end(succeeded: Bool, message: String)

    static let outputKind = UInt8(ascii: "O")
    static let progressKind = UInt8(ascii: "P")
    static let endKind = UInt8(ascii: "E")

    /// The datagram. Text longer than ``AdminProtocol/maximumTextLength`` bytes is cut at a
    /// character boundary; negative progress numbers are sent as 0.
    public var encoded: [UInt8] {
        var writer = WireWriter(capacity: 64)
        switch self {
        case .output(let line):
            writer.writeUInt8(Self.outputKind)
            writer.writeBytes(Self.cut(line).utf8)
        case .progress(let done, let total):
            writer.writeUInt8(Self.progressKind)
            writer.writeBytes("\(max(done, 0)) \(max(total, 0))".utf8)
        case .end(let succeeded, let message):
            writer.writeUInt8(Self.endKind)
            writer.writeUInt8(succeeded ? 0 : 1)
            writer.writeBytes(Self.cut(message).utf8)
        }
        return writer.bytes
    }

    /// The answer in a datagram the server sent.
    /// - Throws: ``AdminProtocolError`` for an empty or unknown kind, a missing or unknown
    ///   status, malformed progress, text that is not UTF-8, or a datagram that is too long.
    public init(parsing bytes: [UInt8]) throws(AdminProtocolError) {
        guard bytes.count <= AdminProtocol.maximumDatagramLength else { throw .tooLong }
        guard let kind = bytes.first else { throw .truncated }
        let body = bytes.dropFirst()
        switch kind {
        case Self.outputKind:
            self = .output(try Self.text(body))
        case Self.progressKind:
            let numbers = body.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false).map(Self.decimal)
            guard numbers.count == 2, let done = numbers[0], let total = numbers[1] else { throw .malformedProgress }
            self = .progress(done: done, total: total)
        case Self.endKind:
            guard let status = body.first else { throw .truncated }
            guard status <= 1 else { throw .unknownStatus(status) }
            self = .end(succeeded: status == 0, message: try Self.text(body.dropFirst()))
        default:
            throw .unknownAnswerKind(kind)
        }
    }

    /// `text`, cut to at most ``AdminProtocol/maximumTextLength`` UTF-8 bytes without
    /// splitting a Unicode scalar (half a scalar would make the answer invalid UTF-8).
    static func cut(_ text: String) -> String {
        guard text.utf8.count > AdminProtocol.maximumTextLength else { return text }
        var end = text.utf8.index(text.utf8.startIndex, offsetBy: AdminProtocol.maximumTextLength)
        while end.samePosition(in: text.unicodeScalars) == nil { end = text.utf8.index(before: end) }
        // On a scalar boundary, so decoding loses nothing.
        return String(decoding: text.utf8[..<end], as: UTF8.self)
    }

    static func text(_ bytes: ArraySlice<UInt8>) throws(AdminProtocolError) -> String {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .notUTF8(field: 0) }
        return text
    }

    /// A non-empty run of ASCII digits that fits an `Int`; `Int(_:)` alone would also take a
    /// sign.
    static func decimal(_ bytes: ArraySlice<UInt8>) -> Int? {
        let digits = UInt8(ascii: "0")...UInt8(ascii: "9")
        guard !bytes.isEmpty, bytes.allSatisfy(digits.contains) else { return nil }
        return Int(String(decoding: bytes, as: UTF8.self))
    }
}
