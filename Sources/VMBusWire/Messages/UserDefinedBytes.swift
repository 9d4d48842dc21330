/// The 120-byte device-specific area of an offer (@60) or an OpenChannel (@28)
/// (`MAX_USER_DEFINED_BYTES`, 04 §3.1.2 and §3.4).
///
/// Always exactly 120 bytes; shorter values are zero-padded. Typed views for pipe and hvsock
/// offers read from and write into these bytes.
public struct UserDefinedBytes: Hashable, Sendable {
    /// Size of the area on the wire.
    public static let size = 120

    /// The 120 bytes.
    public private(set) var bytes: [UInt8]

    /// An all-zero area.
    public init() {
        self.bytes = Array(repeating: 0, count: Self.size)
    }

    /// An area holding `bytes`, zero-padded to 120.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` if more than 120 bytes are given.
    public init<C: Collection>(_ bytes: C) throws(WireError) where C.Element == UInt8 {
        try WireError.check("user-defined bytes", bytes.count, limit: Self.size)
        self.bytes = Array(bytes) + Array(repeating: 0, count: Self.size - bytes.count)
    }

    init(from reader: inout WireReader) throws(WireError) {
        self.bytes = Array(try reader.readBytes(Self.size))
    }

    func write(to writer: inout WireWriter) {
        writer.writeBytes(self.bytes)
    }

    /// The first u32, the `pipe_mode` of pipe and hvsock offers (0 byte mode, 4 message mode).
    public var pipeMode: UInt32 {
        self.bytes[0..<4].reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }
}
