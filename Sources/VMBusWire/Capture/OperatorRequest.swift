/// The data of an operator-request capture record (``CaptureRecordKind/operatorRequest``): what
/// an operator asked the host to do to a guest, so that a replay can ask the same.
public struct OperatorRequest: Hashable, Sendable {
    /// The admin command (`kvp`, `copy`, `backup`, `shutdown`… as `vmbus ctl` names them).
    public var command: String
    /// Its parameters, as `vmbus ctl` takes them after the command.
    public var parameters: [String]
    /// The bytes of the host file the request reads (a copy's source), or empty.
    public var attachment: [UInt8]

    /// A request of `command` with `parameters`; `attachment` holds the host file it reads.
    public init(command: String, parameters: [String], attachment: [UInt8] = []) {
        self.command = command
        self.parameters = parameters
        self.attachment = attachment
    }

    /// u16 count of strings, each as u16 length and UTF-8 bytes, then the attachment.
    public func encode() -> [UInt8] {
        var writer = WireWriter()
        let strings = [self.command] + self.parameters
        writer.writeUInt16(UInt16(clamping: strings.count))
        for string in strings.prefix(Int(UInt16.max)) {
            let bytes = Array(string.utf8.prefix(Int(UInt16.max)))
            writer.writeUInt16(UInt16(bytes.count))
            writer.writeBytes(bytes)
        }
        writer.writeBytes(self.attachment)
        return writer.bytes
    }

    /// - Throws: ``WireError`` when the strings run past the data or there is no command.
    public init(parsing bytes: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(bytes)
        let count = Int(try reader.readUInt16())
        guard count >= 1 else { throw WireError.invalidField(name: "operator request strings", value: 0) }
        var strings: [String] = []
        for _ in 0..<count {
            let length = Int(try reader.readUInt16())
            strings.append(String(decoding: try reader.readBytes(length), as: UTF8.self))
        }
        self.command = strings[0]
        self.parameters = Array(strings.dropFirst())
        self.attachment = Array(reader.readRemaining())
    }
}
