/// The REPORT LUNS answer (SPC): a big-endian u32 list length (bytes of entries), 4 reserved
/// bytes, then 8-byte LUN entries.
///
/// An answer is cut to the allocation length (Linux asks for 4096 and again if the list
/// length says more), so ``entries`` holds the whole entries that arrived, and ``listLength``
/// what the device has.
public struct ReportLUNsData: Hashable, Sendable {
    /// Bytes before the entries: the list length and 4 reserved bytes.
    public static let headerSize = 8
    /// Bytes per LUN entry.
    public static let entrySize = 8

    /// The list length as sent.
    public var listLength: UInt32
    /// Each entry as a big-endian u64 (byte 0 is the most significant).
    public var entries: [UInt64]

    /// A complete list.
    public init(entries: [UInt64]) {
        self.listLength = UInt32(truncatingIfNeeded: entries.count * Self.entrySize)
        self.entries = entries
    }

    /// The list for LUN numbers below 256 (all Linux scans on this bus).
    public init(luns: [UInt8]) {
        self.init(entries: luns.map(Self.entry(forLUN:)))
    }

    /// The single-level, peripheral-addressed entry of a LUN below 256: the LUN in byte 1.
    public static func entry(forLUN lun: UInt8) -> UInt64 {
        UInt64(lun) << 48
    }

    /// The LUN number Linux derives from an entry's first level (`scsilun_to_int`'s low 16
    /// bits: bytes 0 and 1, address method bits included).
    public static func lun(ofEntry entry: UInt64) -> UInt16 {
        UInt16(truncatingIfNeeded: entry >> 48)
    }

    /// - Throws: ``WireError/truncated(needed:available:)`` below the 8-byte header.
    public init(parsing bytes: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(bytes)
        try reader.require(Self.headerSize)
        self.listLength = try reader.readBigEndianUInt32()
        try reader.skip(4)
        // Bounded by the bytes received, whatever the list length claims.
        let count = min(Int(self.listLength), reader.remaining) / Self.entrySize
        var entries: [UInt64] = []
        entries.reserveCapacity(count)
        for _ in 0..<count { entries.append(try reader.readBigEndianUInt64()) }
        self.entries = entries
    }

    /// The answer, big-endian: the list length, 4 reserved bytes, then the entries.
    public func encode() -> [UInt8] {
        var writer = WireWriter(capacity: Self.headerSize + self.entries.count * Self.entrySize)
        writer.writeBigEndianUInt32(self.listLength)
        writer.writeZeros(4)
        for entry in self.entries { writer.writeBigEndianUInt64(entry) }
        return writer.bytes
    }
}
