/// Fixed-size UTF-16LE text fields, as KVP, shutdown and fcopy carry them (06 §4, §6, §8).
public enum UTF16Field {
    /// Writes `text` as UTF-16LE code units plus a NUL into a field of `size` bytes,
    /// zero-filling the rest.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` when the text and its NUL do not fit.
    public static func write(_ text: String, size: Int, name: String, to writer: inout WireWriter) throws(WireError) {
        let bytes = Self.encode(text)
        guard bytes.count + 2 <= size else {
            throw WireError.limitExceeded(name: name, value: UInt64(bytes.count + 2), limit: UInt64(size))
        }
        writer.writeBytes(bytes)
        writer.writeZeros(size - bytes.count)
    }

    /// The UTF-16LE bytes of `text`, without a terminator.
    public static func encode(_ text: String) -> [UInt8] {
        text.utf16.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)] }
    }

    /// Decodes UTF-16LE up to the first NUL code unit (or the end). Unpaired surrogates become
    /// U+FFFD; a trailing odd byte is ignored. Never traps.
    public static func decode(_ bytes: ArraySlice<UInt8>) -> String {
        var units: [UInt16] = []
        units.reserveCapacity(bytes.count / 2)
        var i = bytes.startIndex
        while i + 1 < bytes.endIndex {
            let unit = UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8
            if unit == 0 { break }
            units.append(unit)
            i += 2
        }
        return String(decoding: units, as: UTF16.self)
    }
}
