/// An integration-component message: the whole payload of one in-band ring packet — pipe
/// header (8), IC header (20), service body (06 §1).
public struct ICMessage: Hashable, Sendable {
    /// Pipe header + IC header: service bodies start here (Linux `ICMSG_HDR`).
    public static let bodyOffset = PipeHeader.wireSize + ICMessageHeader.wireSize
    /// `IC_MAXIMUM_MESSAGE_SIZE`: the largest IC message.
    public static let maximumSize = 13312

    public var pipe: PipeHeader
    public var header: ICMessageHeader
    /// The body as bounded by `icmsgsize`.
    public var body: ArraySlice<UInt8>
    /// Everything after the 28-byte prefix, which may be longer than `body`: ring payloads are
    /// padded to 8 and Linux echoes whole buffers (06 §1.6).
    public var remainder: ArraySlice<UInt8>

    /// Parses an in-band packet's payload.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` above 13312 bytes;
    ///   ``WireError/truncated(needed:available:)`` if the pipe length or `icmsgsize` claims
    ///   more than the payload holds.
    public init(payload: ArraySlice<UInt8>) throws(WireError) {
        try WireError.check("IC message size", payload.count, limit: Self.maximumSize)
        var reader = WireReader(payload)
        self.pipe = try PipeHeader(from: &reader)
        guard Int(self.pipe.length) <= reader.remaining else {
            throw WireError.truncated(needed: Int(self.pipe.length), available: reader.remaining)
        }
        self.header = try ICMessageHeader(from: &reader)
        self.remainder = reader.readRemaining()
        let size = Int(self.header.messageSize)
        guard size <= self.remainder.count else {
            throw WireError.truncated(needed: size, available: self.remainder.count)
        }
        self.body = self.remainder.prefix(size)
    }

    /// A message with `body`: pipe {DATA, 20 + body}, the header with `icmsgsize` = body size.
    public init<C: Collection>(header: ICMessageHeader, body: C) throws(WireError) where C.Element == UInt8 {
        try WireError.check("IC message size", Self.bodyOffset + body.count, limit: Self.maximumSize)
        self.pipe = PipeHeader(type: .data, length: UInt32(ICMessageHeader.wireSize + body.count))
        self.header = header
        self.header.messageSize = UInt16(body.count)
        self.body = ArraySlice(body)
        self.remainder = self.body
    }

    /// The payload bytes: pipe header, IC header, then `remainder` (the body and anything the
    /// sender carried after it).
    public func encode() -> [UInt8] {
        var writer = WireWriter(capacity: Self.bodyOffset + self.remainder.count)
        self.pipe.write(to: &writer)
        self.header.write(to: &writer)
        writer.writeBytes(self.remainder)
        return writer.bytes
    }

    /// The in-band ring packet (descriptor included) carrying this message, flags 0.
    public func packet(transactionID: UInt64) throws(WireError) -> [UInt8] {
        try PacketEncoder.inBand(payload: self.encode(), transactionID: transactionID)
    }
}
