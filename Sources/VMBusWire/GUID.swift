/// A GUID as VMBus uses it: device classes, instances, hvsock services and endpoints.
///
/// Text form `aabbccdd-eeff-gghh-iijj-kkllmmnnoopp`. The wire form is mixed-endian
/// (01 §0): the first group is a little-endian u32, the second and third little-endian u16s,
/// and the last 8 bytes are stored in text order. So the network class
/// `f8615163-df3e-46c5-913f-f2d2f965ed0e` travels as `63 51 61 f8 3e df c5 46 91 3f f2 d2 f9 65 ed 0e`.
public struct GUID: Hashable, Sendable, Comparable {
    /// First text group (wire bytes 0–3, little-endian).
    public var data1: UInt32
    /// Second text group (wire bytes 4–5, little-endian).
    public var data2: UInt16
    /// Third text group (wire bytes 6–7, little-endian).
    public var data3: UInt16
    /// The last 8 bytes, first text byte in the most significant position (wire bytes 8–15 in order).
    public var data4: UInt64

    /// A GUID from its four text groups: `data1`-`data2`-`data3`-`data4` (the last two groups
    /// joined, most significant first).
    public init(data1: UInt32, data2: UInt16, data3: UInt16, data4: UInt64) {
        self.data1 = data1
        self.data2 = data2
        self.data3 = data3
        self.data4 = data4
    }

    /// The all-zero GUID.
    public static let zero = GUID(data1: 0, data2: 0, data3: 0, data4: 0)

    /// Creates a GUID from its 16 wire bytes.
    /// - Throws: ``WireError/truncated(needed:available:)`` or ``WireError/trailingBytes(count:)``
    ///   unless exactly 16 bytes are given.
    public init<C: Collection>(wireBytes: C) throws(WireError) where C.Element == UInt8 {
        var reader = WireReader(Array(wireBytes.prefix(17)))
        self = try reader.readGUID()
        try reader.expectEnd()
    }

    /// The 16 bytes of the wire form.
    public var wireBytes: [UInt8] {
        var writer = WireWriter(capacity: 16)
        writer.writeGUID(self)
        return writer.bytes
    }

    /// Parses the canonical text form, upper or lower case, optionally in braces.
    /// Returns `nil` for anything else.
    public init?(_ text: String) {
        var utf8 = Array(text.utf8)
        if utf8.count == 38, utf8.first == UInt8(ascii: "{"), utf8.last == UInt8(ascii: "}") {
            utf8 = Array(utf8[1..<37])
        }
        guard utf8.count == 36 else { return nil }
        for dash in [8, 13, 18, 23] where utf8[dash] != UInt8(ascii: "-") { return nil }
        var nibbles: [UInt8] = []
        nibbles.reserveCapacity(32)
        for (i, c) in utf8.enumerated() where ![8, 13, 18, 23].contains(i) {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibbles.append(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibbles.append(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibbles.append(c - UInt8(ascii: "A") + 10)
            default: return nil
            }
        }
        func value(_ range: Range<Int>) -> UInt64 {
            nibbles[range].reduce(0) { $0 << 4 | UInt64($1) }
        }
        self.init(
            data1: UInt32(truncatingIfNeeded: value(0..<8)),
            data2: UInt16(truncatingIfNeeded: value(8..<12)),
            data3: UInt16(truncatingIfNeeded: value(12..<16)),
            data4: value(16..<32)
        )
    }

    /// The 32 lower-case hex digits of the wire bytes, in memory order, as Linux prints a class
    /// in its `modalias` (`vmbus:` + this).
    public var wireHex: String {
        self.wireBytes.map { hex($0, digits: 2) }.joined()
    }

    /// Linux's `modalias` string for a device of this class.
    public var modalias: String { "vmbus:" + self.wireHex }

    public static func < (lhs: GUID, rhs: GUID) -> Bool {
        (lhs.data1, lhs.data2, lhs.data3, lhs.data4) < (rhs.data1, rhs.data2, rhs.data3, rhs.data4)
    }
}

extension GUID: CustomStringConvertible, LosslessStringConvertible {
    /// The canonical lower-case text form without braces.
    public var description: String {
        hex(UInt64(self.data1), digits: 8) + "-" + hex(UInt64(self.data2), digits: 4) + "-"
            + hex(UInt64(self.data3), digits: 4) + "-" + hex(self.data4 >> 48, digits: 4) + "-"
            + hex(self.data4 & 0xFFFF_FFFF_FFFF, digits: 12)
    }
}

/// Zero-padded lower-case hex.
@usableFromInline
func hex<T: BinaryInteger>(_ value: T, digits: Int) -> String {
    let text = String(value, radix: 16)
    return String(repeating: "0", count: max(0, digits - text.count)) + text
}
