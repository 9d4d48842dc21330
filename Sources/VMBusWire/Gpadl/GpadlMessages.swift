/// GPADL_HEADER (8), guest → host: the start of a GPADL's range list (04 §3.7).
///
/// ```
/// offset 0   channel-message header (8)   parsed by the dispatcher, not here
/// offset 8   child_relid   u32
/// offset 12  gpadl         u32            guest-chosen handle
/// offset 16  range_buflen  u16            bytes of the WHOLE range list, bodies included
/// offset 18  rangecount    u16            gpa_range records in the whole list
/// offset 20  words         u64 × n        the first n words of the list, n ≤ 27
/// ```
///
/// The range list is a sequence of u64 words: each range is a header word
/// (`byte_count | byte_offset << 32`) followed by its PFNs (``GpaRange/headerWord``). The
/// header message carries as many words as fit in the 240-byte SynIC payload, (240 − 20) / 8 =
/// 27; GPADL_BODY messages carry the rest (``Gpadl/split(channel:handle:ranges:)``).
public struct GpadlHeader: Hashable, Sendable {
    /// The channel-message type number.
    public static let messageType: UInt32 = 8
    /// Bytes before the words, the 8-byte channel-message header included.
    public static let fixedSize = 20
    /// Most words one header message can carry: (240 − 20) / 8 = 27.
    public static let maximumWords = (ChannelMessage.maximumSize - fixedSize) / 8

    /// The owning channel.
    public var childRelID: UInt32
    /// Guest-chosen handle (non-zero; Linux counts from 0xE1E10).
    public var gpadl: UInt32
    /// Bytes of the whole range list, including words that travel in body messages.
    public var rangeBufferLength: UInt16
    /// Number of ranges in the whole list (Linux always sends 1).
    public var rangeCount: UInt16
    /// The first words of the range list.
    public var words: [UInt64]

    /// A header from its fields, unchecked (``GpadlAssembler`` checks them on the host).
    public init(childRelID: UInt32, gpadl: UInt32, rangeBufferLength: UInt16, rangeCount: UInt16, words: [UInt64]) {
        self.childRelID = childRelID
        self.gpadl = gpadl
        self.rangeBufferLength = rangeBufferLength
        self.rangeCount = rangeCount
        self.words = words
    }

    /// Reads the message after its 8-byte channel-message header, up to the reader's end.
    /// - Parameter reader: positioned just after the header.
    /// - Parameter trailingBytes: what to do with the 1–7 bytes after the last whole word.
    ///   `.ignore` by default: UEFI posts maximum-length messages, and 220 bytes of words area
    ///   always leave 4 bytes over.
    /// - Throws: ``WireError/truncated(needed:available:)`` below 12 bytes;
    ///   ``WireError/limitExceeded(name:value:limit:)`` for more than 27 words (a message over
    ///   240 bytes, which the dispatcher should already have refused);
    ///   ``WireError/trailingBytes(count:)`` for a partial word under `.reject`.
    public init(from reader: inout WireReader, trailingBytes: TrailingBytePolicy = .ignore) throws(WireError) {
        try reader.require(Self.fixedSize - ChannelMessage.headerSize)
        self.childRelID = try reader.readUInt32()
        self.gpadl = try reader.readUInt32()
        self.rangeBufferLength = try reader.readUInt16()
        self.rangeCount = try reader.readUInt16()
        self.words = try readGpadlWords(&reader, limit: Self.maximumWords, name: "GPADL header words", trailingBytes)
    }

    /// Writes the message after its channel-message header.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` ("GPADL header words") for more
    ///   than 27 words, which would not fit the SynIC payload.
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
/// ```
/// offset 0   channel-message header (8)   parsed by the dispatcher, not here
/// offset 8   msgnumber  u32               Linux leaves 0; OpenVMM treats it as reserved
/// offset 12  gpadl      u32               handle of the GPADL being built
/// offset 16  words      u64 × n           n ≤ 28
/// ```
///
/// Bodies carry no relid, so a handle must be unique among the GPADLs in flight on a
/// connection.
public struct GpadlBody: Hashable, Sendable {
    /// The channel-message type number.
    public static let messageType: UInt32 = 9
    /// Bytes before the words, the 8-byte channel-message header included.
    public static let fixedSize = 16
    /// Most words one body message can carry: (240 − 16) / 8 = 28.
    public static let maximumWords = (ChannelMessage.maximumSize - fixedSize) / 8

    /// Kept as read; 0 when sent.
    public var messageNumber: UInt32
    /// The handle of the GPADL being built.
    public var gpadl: UInt32
    /// The next words of the range list.
    public var words: [UInt64]

    /// A body from its fields, unchecked.
    public init(messageNumber: UInt32 = 0, gpadl: UInt32, words: [UInt64]) {
        self.messageNumber = messageNumber
        self.gpadl = gpadl
        self.words = words
    }

    /// Reads the message after its 8-byte channel-message header, up to the reader's end.
    /// - Parameter reader: positioned just after the header.
    /// - Parameter trailingBytes: what to do with the 1–7 bytes after the last whole word
    ///   (`.ignore` by default, as for ``GpadlHeader``).
    /// - Throws: ``WireError/truncated(needed:available:)`` below 8 bytes;
    ///   ``WireError/limitExceeded(name:value:limit:)`` for more than 28 words;
    ///   ``WireError/trailingBytes(count:)`` for a partial word under `.reject`.
    public init(from reader: inout WireReader, trailingBytes: TrailingBytePolicy = .ignore) throws(WireError) {
        try reader.require(Self.fixedSize - ChannelMessage.headerSize)
        self.messageNumber = try reader.readUInt32()
        self.gpadl = try reader.readUInt32()
        self.words = try readGpadlWords(&reader, limit: Self.maximumWords, name: "GPADL body words", trailingBytes)
    }

    /// Writes the message after its channel-message header.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` ("GPADL body words") for more
    ///   than 28 words.
    public func write(to writer: inout WireWriter) throws(WireError) {
        try WireError.check("GPADL body words", self.words.count, limit: Self.maximumWords)
        writer.writeUInt32(self.messageNumber)
        writer.writeUInt32(self.gpadl)
        for word in self.words { writer.writeUInt64(word) }
    }
}

/// Reads the whole u64 words left in the message, after checking their count against the
/// message's limit: nothing is allocated for words a 240-byte message could not hold.
private func readGpadlWords(
    _ reader: inout WireReader, limit: Int, name: String, _ trailingBytes: TrailingBytePolicy
) throws(WireError) -> [UInt64] {
    let count = reader.remaining / 8
    try WireError.check(name, count, limit: limit)
    var words: [UInt64] = []
    words.reserveCapacity(count)
    for _ in 0..<count { words.append(try reader.readUInt64()) }
    switch trailingBytes {
    case .reject: try reader.expectEnd()
    case .ignore: _ = reader.readRemaining()
    }
    return words
}
