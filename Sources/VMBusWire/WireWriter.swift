/// A little-endian builder for wire structures.
///
/// `write…` methods append; `set…` methods patch bytes already written (used to fill in a
/// length once the body is known). All output is little-endian, as every VMBus format is.
public struct WireWriter: Sendable {
    /// The bytes written so far.
    public private(set) var bytes: [UInt8]

    /// Creates an empty writer with room for `capacity` bytes.
    public init(capacity: Int = 64) {
        self.bytes = []
        self.bytes.reserveCapacity(capacity)
    }

    /// A writer that continues (or patches, with the `set…` methods) `bytes`.
    public init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// Number of bytes written.
    @inlinable
    public var count: Int { self.bytes.count }

    /// Appends one byte.
    public mutating func writeUInt8(_ value: UInt8) {
        self.bytes.append(value)
    }

    /// Appends a u16, little-endian.
    public mutating func writeUInt16(_ value: UInt16) {
        self.bytes.append(UInt8(truncatingIfNeeded: value))
        self.bytes.append(UInt8(truncatingIfNeeded: value >> 8))
    }

    /// Appends a u32, little-endian.
    public mutating func writeUInt32(_ value: UInt32) {
        for i in 0..<4 { self.bytes.append(UInt8(truncatingIfNeeded: value >> (8 * i))) }
    }

    /// Appends a u64, little-endian.
    public mutating func writeUInt64(_ value: UInt64) {
        for i in 0..<8 { self.bytes.append(UInt8(truncatingIfNeeded: value >> (8 * i))) }
    }

    /// Appends an i32, two's complement, little-endian.
    public mutating func writeInt32(_ value: Int32) {
        self.writeUInt32(UInt32(bitPattern: value))
    }

    /// Writes a GUID in its mixed-endian wire form (01 §0).
    public mutating func writeGUID(_ guid: GUID) {
        self.writeUInt32(guid.data1)
        self.writeUInt16(guid.data2)
        self.writeUInt16(guid.data3)
        for i in (0..<8).reversed() { self.bytes.append(UInt8(truncatingIfNeeded: guid.data4 >> (8 * i))) }
    }

    /// Appends bytes as they are.
    public mutating func writeBytes<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        self.bytes.append(contentsOf: bytes)
    }

    /// Writes `count` zero bytes (reserved fields, padding).
    public mutating func writeZeros(_ count: Int) {
        self.bytes.append(contentsOf: repeatElement(0, count: count))
    }

    /// Writes `bytes` into a fixed-size field of `size` bytes, zero-padding the rest.
    /// - Precondition: `bytes.count <= size`. Callers validate peer-independent local input
    ///   before encoding; a longer value here is a programming error.
    public mutating func writeFixed<C: Collection>(_ bytes: C, size: Int) where C.Element == UInt8 {
        precondition(bytes.count <= size, "value of \(bytes.count) bytes does not fit a \(size)-byte field")
        self.bytes.append(contentsOf: bytes)
        self.writeZeros(size - bytes.count)
    }

    /// Overwrites a u32 at `offset` (for lengths known only after the body is written).
    public mutating func setUInt32(_ value: UInt32, at offset: Int) {
        for i in 0..<4 { self.bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }

    /// Overwrites a byte at `offset`.
    public mutating func setUInt8(_ value: UInt8, at offset: Int) {
        self.bytes[offset] = value
    }

    /// Overwrites a u16 at `offset`.
    public mutating func setUInt16(_ value: UInt16, at offset: Int) {
        self.bytes[offset] = UInt8(truncatingIfNeeded: value)
        self.bytes[offset + 1] = UInt8(truncatingIfNeeded: value >> 8)
    }
}
