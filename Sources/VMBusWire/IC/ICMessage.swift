/// An integration-component message: the whole payload of one in-band ring packet — pipe
/// header (8), IC header (20), service body (06 §1).
///
/// Trailing bytes: allowed and kept. Ring payloads are padded to 8 bytes and Linux echoes its
/// whole receive buffer (06 §1.6), so the bytes after the 28-byte prefix may be longer than
/// `icmsgsize`. ``body`` is the `icmsgsize`-bounded part and ``remainder`` everything after the
/// prefix; both are slices of the parsed payload, not copies.
public struct ICMessage: Hashable, Sendable {
    /// Pipe header + IC header: service bodies start here (Linux `ICMSG_HDR`, 28).
    public static let bodyOffset = PipeHeader.wireSize + ICMessageHeader.wireSize
    /// `IC_MAXIMUM_MESSAGE_SIZE` / OpenVMM `MAX_MESSAGE_SIZE`: the largest IC message payload.
    public static let maximumSize = 13312

    /// The pipe header as received (Linux never inspects or rewrites it).
    public var pipe: PipeHeader
    /// The IC header.
    public var header: ICMessageHeader
    /// The body as bounded by `icmsgsize`.
    public var body: ArraySlice<UInt8>
    /// Everything after the 28-byte prefix; starts with ``body`` and may be longer.
    public var remainder: ArraySlice<UInt8>

    /// Parses an in-band packet's payload (descriptor already stripped).
    ///
    /// Checks, in order: the payload is at most 13312 bytes; the pipe header's `length` fits in
    /// the bytes after it (OpenVMM's host rule; Linux ignores it); the IC header is present;
    /// `icmsgsize` fits in the bytes after the 28-byte prefix. The pipe type is not checked:
    /// it is kept for the caller to judge.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` above 13312 bytes;
    ///   ``WireError/truncated(needed:available:)`` for a short prefix, or when the pipe length
    ///   or `icmsgsize` claims more than the payload holds.
    public init(payload: ArraySlice<UInt8>) throws(WireError) {
        try WireError.check("IC message size", payload.count, limit: Self.maximumSize)
        var reader = WireReader(payload)
        self.pipe = try PipeHeader(from: &reader)
        // Int(exactly:) cannot fail for a u32 on 64-bit targets; a value it cannot hold is too
        // long for any payload anyway.
        guard let pipeLength = Int(exactly: self.pipe.length), pipeLength <= reader.remaining else {
            throw WireError.truncated(needed: Int(exactly: self.pipe.length) ?? .max, available: reader.remaining)
        }
        self.header = try ICMessageHeader(from: &reader)
        self.remainder = reader.readRemaining()
        let size = Int(self.header.messageSize)
        guard size <= self.remainder.count else {
            throw WireError.truncated(needed: size, available: self.remainder.count)
        }
        self.body = self.remainder.prefix(size)
    }

    /// A message carrying `body`: pipe {DATA, 20 + body}, `header` with `icmsgsize` set to the
    /// body size, then the body (06 §1.1: what a new implementation should write).
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` if the payload would exceed
    ///   13312 bytes.
    public init<C: Collection>(header: ICMessageHeader, body: C) throws(WireError) where C.Element == UInt8 {
        // A collection's count is far below Int.max, so the sum cannot overflow.
        try WireError.check("IC message size", Self.bodyOffset + body.count, limit: Self.maximumSize)
        // Both conversions are exact: the payload is at most 13312 bytes.
        self.pipe = PipeHeader(type: .data, length: UInt32(ICMessageHeader.wireSize + body.count))
        self.header = header
        self.header.messageSize = UInt16(body.count)
        self.body = ArraySlice(body)
        self.remainder = self.body
    }

    /// The payload bytes: pipe header, IC header, then ``remainder`` (the body and anything the
    /// sender carried after it). Header fields are written as they are; a parsed message
    /// encodes back to the bytes it was parsed from.
    public func encode() -> [UInt8] {
        var writer = WireWriter(capacity: Self.bodyOffset + self.remainder.count)
        self.write(to: &writer)
        return writer.bytes
    }

    /// Appends the payload bytes (see ``encode()``).
    public func write(to writer: inout WireWriter) {
        self.pipe.write(to: &writer)
        self.header.write(to: &writer)
        writer.writeBytes(self.remainder)
    }

    /// The in-band ring packet (descriptor included) carrying this message, flags 0.
    /// - Parameter transactionID: the packet's transaction id; Linux's in-kernel services echo
    ///   the request's, its fcopy daemon sends all ones (06 §1.6).
    public func packet(transactionID: UInt64) throws(WireError) -> [UInt8] {
        try PacketEncoder.inBand(payload: self.encode(), transactionID: transactionID)
    }
}
