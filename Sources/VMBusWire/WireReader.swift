/// A little-endian cursor over received bytes.
///
/// `read…` methods move the cursor; `peek…` methods do not. Every read is bounds-checked and
/// throws ``WireError/truncated(needed:available:)`` instead of trapping, so a reader can be
/// pointed at any bytes a peer sent.
public struct WireReader: Sendable {
    @usableFromInline let bytes: ArraySlice<UInt8>
    /// Absolute index (in `bytes`' index space) of the next byte to read.
    @usableFromInline var index: Int

    /// Creates a reader over `bytes`, starting at its first byte.
    @inlinable
    public init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.index = bytes.startIndex
    }

    /// Creates a reader over a whole array.
    @inlinable
    public init(_ bytes: [UInt8]) {
        self.init(bytes[...])
    }

    /// Bytes left to read.
    @inlinable
    public var remaining: Int { self.bytes.endIndex - self.index }

    /// Bytes already read.
    @inlinable
    public var consumed: Int { self.index - self.bytes.startIndex }

    /// Throws ``WireError/truncated(needed:available:)`` unless `count` bytes are left.
    @inlinable
    public func require(_ count: Int) throws(WireError) {
        if count < 0 || count > self.remaining {
            throw WireError.truncated(needed: count, available: self.remaining)
        }
    }

    /// Throws ``WireError/trailingBytes(count:)`` unless every byte was read.
    @inlinable
    public func expectEnd() throws(WireError) {
        if self.remaining != 0 { throw WireError.trailingBytes(count: self.remaining) }
    }

    /// Reads one byte.
    /// - Throws: ``WireError/truncated(needed:available:)`` at the end.
    @inlinable
    public mutating func readUInt8() throws(WireError) -> UInt8 {
        try self.require(1)
        defer { self.index += 1 }
        return self.bytes[self.index]
    }

    /// Reads a little-endian u16.
    /// - Throws: ``WireError/truncated(needed:available:)`` with fewer than 2 bytes left.
    @inlinable
    public mutating func readUInt16() throws(WireError) -> UInt16 {
        try self.require(2)
        defer { self.index += 2 }
        return UInt16(self.bytes[self.index]) | UInt16(self.bytes[self.index + 1]) << 8
    }

    /// Reads a little-endian u32.
    /// - Throws: ``WireError/truncated(needed:available:)`` with fewer than 4 bytes left.
    @inlinable
    public mutating func readUInt32() throws(WireError) -> UInt32 {
        try self.require(4)
        defer { self.index += 4 }
        var value: UInt32 = 0
        for i in 0..<4 { value |= UInt32(self.bytes[self.index + i]) << (8 * i) }
        return value
    }

    /// Reads a little-endian u64.
    /// - Throws: ``WireError/truncated(needed:available:)`` with fewer than 8 bytes left.
    @inlinable
    public mutating func readUInt64() throws(WireError) -> UInt64 {
        try self.require(8)
        defer { self.index += 8 }
        var value: UInt64 = 0
        for i in 0..<8 { value |= UInt64(self.bytes[self.index + i]) << (8 * i) }
        return value
    }

    /// Reads a little-endian two's-complement i32.
    /// - Throws: ``WireError/truncated(needed:available:)`` with fewer than 4 bytes left.
    @inlinable
    public mutating func readInt32() throws(WireError) -> Int32 {
        Int32(bitPattern: try self.readUInt32())
    }

    /// Reads a GUID in its mixed-endian wire form (01 §0).
    @inlinable
    public mutating func readGUID() throws(WireError) -> GUID {
        try self.require(16)
        let data1 = try self.readUInt32()
        let data2 = try self.readUInt16()
        let data3 = try self.readUInt16()
        var data4: UInt64 = 0
        for _ in 0..<8 { data4 = data4 << 8 | UInt64(try self.readUInt8()) }
        return GUID(data1: data1, data2: data2, data3: data3, data4: data4)
    }

    /// Reads `count` bytes without copying them.
    @inlinable
    public mutating func readBytes(_ count: Int) throws(WireError) -> ArraySlice<UInt8> {
        try self.require(count)
        defer { self.index += count }
        return self.bytes[self.index..<self.index + count]
    }

    /// Reads everything that is left.
    @inlinable
    public mutating func readRemaining() -> ArraySlice<UInt8> {
        defer { self.index = self.bytes.endIndex }
        return self.bytes[self.index...]
    }

    /// Skips `count` bytes (reserved or padding fields).
    @inlinable
    public mutating func skip(_ count: Int) throws(WireError) {
        try self.require(count)
        self.index += count
    }

    /// Reads a u64 without moving the cursor.
    @inlinable
    public func peekUInt64() throws(WireError) -> UInt64 {
        var copy = self
        return try copy.readUInt64()
    }

    /// Reads a u32 without moving the cursor.
    @inlinable
    public func peekUInt32() throws(WireError) -> UInt32 {
        var copy = self
        return try copy.readUInt32()
    }
}
