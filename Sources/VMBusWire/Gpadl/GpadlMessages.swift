/// GPADL_HEADER (8), guest → host: the start of a GPADL's range list (04 §3.7).
///
/// The range list is a sequence of u64 words: each range is a header word
/// (`byte_count | byte_offset << 32`) followed by its PFNs. The header message carries as many
/// words as fit (27: 240 − 20 bytes); body messages carry the rest.
public struct GpadlHeader: Hashable, Sendable {
    /// Bytes before the words, channel-message header included.
    public static let fixedSize = 20
    /// Most words a header message can carry: (240 − 20) / 8.
    public static let maximumWords = (ChannelMessage.maximumSize - fixedSize) / 8

    /// The owning channel.
    public var childRelID: UInt32
    /// Guest-chosen handle (non-zero; Linux counts from 0xE1E10).
    public var gpadl: UInt32
    /// Bytes of the whole range list, including words that travel in body messages.
    public var rangeBufferLength: UInt16
    /// Number of ranges in the whole list (Linux always 1).
    public var rangeCount: UInt16
    /// The first words of the range list.
    public var words: [UInt64]

    public init(childRelID: UInt32, gpadl: UInt32, rangeBufferLength: UInt16, rangeCount: UInt16, words: [UInt64]) {
        self.childRelID = childRelID
        self.gpadl = gpadl
        self.rangeBufferLength = rangeBufferLength
        self.rangeCount = rangeCount
        self.words = words
    }

    /// Reads the body after the 8-byte channel-message header. Bytes that do not make a
    /// whole word are ignored or rejected by `trailingBytes`.
    public init(from reader: inout WireReader, trailingBytes: TrailingBytePolicy = .ignore) throws(WireError) {
        try reader.require(Self.fixedSize - ChannelMessage.headerSize)
        self.childRelID = try reader.readUInt32()
        self.gpadl = try reader.readUInt32()
        self.rangeBufferLength = try reader.readUInt16()
        self.rangeCount = try reader.readUInt16()
        self.words = try readWords(&reader, trailingBytes)
    }

    /// Writes the body after the channel-message header.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` for more than 27 words.
    public func write(to writer: inout WireWriter) throws(WireError) {
        try WireError.check("GPADL header words", self.words.count, limit: Self.maximumWords)
        writer.writeUInt32(self.childRelID)
        writer.writeUInt32(self.gpadl)
        writer.writeUInt16(self.rangeBufferLength)
        writer.writeUInt16(self.rangeCount)
        for word in self.words { writer.writeUInt64(word) }
    }
}

/// GPADL_BODY (9), guest → host: more words of a GPADL's range list (04 §3.8).
///
/// Bodies carry no relid: a handle must be unique among the GPADLs being built on a connection.
public struct GpadlBody: Hashable, Sendable {
    /// Bytes before the words, channel-message header included.
    public static let fixedSize = 16
    /// Most words a body message can carry: (240 − 16) / 8.
    public static let maximumWords = (ChannelMessage.maximumSize - fixedSize) / 8

    /// Linux leaves it 0; OpenVMM treats it as reserved. Kept as read.
    public var messageNumber: UInt32
    /// The handle of the GPADL being built.
    public var gpadl: UInt32
    /// The next words of the range list.
    public var words: [UInt64]

    public init(messageNumber: UInt32 = 0, gpadl: UInt32, words: [UInt64]) {
        self.messageNumber = messageNumber
        self.gpadl = gpadl
        self.words = words
    }

    /// Reads the body after the 8-byte channel-message header.
    public init(from reader: inout WireReader, trailingBytes: TrailingBytePolicy = .ignore) throws(WireError) {
        try reader.require(Self.fixedSize - ChannelMessage.headerSize)
        self.messageNumber = try reader.readUInt32()
        self.gpadl = try reader.readUInt32()
        self.words = try readWords(&reader, trailingBytes)
    }

    /// Writes the body after the channel-message header.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` for more than 28 words.
    public func write(to writer: inout WireWriter) throws(WireError) {
        try WireError.check("GPADL body words", self.words.count, limit: Self.maximumWords)
        writer.writeUInt32(self.messageNumber)
        writer.writeUInt32(self.gpadl)
        for word in self.words { writer.writeUInt64(word) }
    }
}

/// Reads whole u64 words up to the end of the message. The message is at most 240 bytes (the
/// dispatcher checks), so this allocates at most 28 words.
private func readWords(_ reader: inout WireReader, _ trailingBytes: TrailingBytePolicy) throws(WireError) -> [UInt64] {
    let count = reader.remaining / 8
    try WireError.check("GPADL message words", count, limit: GpadlBody.maximumWords)
    var words: [UInt64] = []
    words.reserveCapacity(count)
    for _ in 0..<count { words.append(try reader.readUInt64()) }
    if trailingBytes == .reject { try reader.expectEnd() } else { _ = reader.readRemaining() }
    return words
}
