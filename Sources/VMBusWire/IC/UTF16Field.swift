/// Fixed-size UTF-16LE text fields, as KVP, shutdown and fcopy carry them (06 §4, §6.2, §8).
///
/// Writing is strict (the text and its NUL must fit, or the caller gets
/// ``WireError/limitExceeded(name:value:limit:)``); reading is lenient and total: it stops at
/// the first NUL code unit, turns invalid UTF-16 into U+FFFD and never traps.
public enum UTF16Field {
    /// Bytes of one UTF-16 code unit.
    public static let unitSize = 2

    /// Writes `text` as UTF-16LE code units plus a NUL into a field of `size` bytes,
    /// zero-filling the rest.
    /// - Parameters:
    ///   - writer: where the field goes; it advances by exactly `size` bytes.
    ///   - text: the text; a NUL inside it ends the field early for every reader.
    ///   - size: the field's size in bytes.
    ///   - name: the field's name, for the error.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` when the text and its NUL do not
    ///   fit (`value` is the bytes needed, NUL included).
    public static func write(_ text: String, size: Int, name: String, to writer: inout WireWriter) throws(WireError) {
        writer.writeBytes(try Self.encodeField(text, size: size, name: name))
    }

    /// The `size`-byte field holding `text`, its NUL and zero fill.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` when the text and its NUL do not fit.
    public static func encodeField(_ text: String, size: Int, name: String) throws(WireError) -> [UInt8] {
        var bytes = try Self.encodeTerminated(text, limit: size, name: name)
        bytes += repeatElement(0, count: size - bytes.count)
        return bytes
    }

    /// The UTF-16LE bytes of `text` followed by a NUL, as KVP sizes count them (06 §6.2).
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` when they exceed `limit` bytes.
    public static func encodeTerminated(_ text: String, limit: Int, name: String) throws(WireError) -> [UInt8] {
        // Checked on the code-unit count first, so an oversized text is never encoded.
        try WireError.check(name, (text.utf16.count + 1) * Self.unitSize, limit: limit)
        return Self.encode(text) + [0, 0]
    }

    /// The UTF-16LE bytes of `text`, without a terminator.
    public static func encode(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf16.count * Self.unitSize)
        for unit in text.utf16 {
            bytes.append(UInt8(truncatingIfNeeded: unit))
            bytes.append(UInt8(truncatingIfNeeded: unit >> 8))
        }
        return bytes
    }

    /// Decodes text read from a field of `fieldSize` bytes: up to the first NUL, and never more
    /// than the `fieldSize / 2 − 1` units the field can hold before its NUL.
    ///
    /// A peer may fill a field without a terminator. Linux's readers then keep only what fits
    /// with a NUL (fcopy converts at most `W_MAX_PATH − 1` units), and so does this: the result
    /// always fits back into the same field with ``write(_:size:name:to:)``.
    /// - Parameters:
    ///   - bytes: the field, or its first `size` bytes when the format carries a size.
    ///   - fieldSize: the size of the whole field in bytes.
    public static func decode(_ bytes: ArraySlice<UInt8>, fieldSize: Int) -> String {
        let capacity = max(fieldSize / Self.unitSize - 1, 0) * Self.unitSize
        return Self.decode(bytes.prefix(capacity))
    }

    /// Decodes UTF-16LE up to the first NUL code unit (or the end). Unpaired surrogates become
    /// U+FFFD; a trailing odd byte is ignored. Never traps; the work is bounded by the field the
    /// caller passes, which is always a fixed-size field already read from the wire. Fields
    /// decoded this way may hold text too long to write back; ``decode(_:fieldSize:)`` may not.
    public static func decode(_ bytes: ArraySlice<UInt8>) -> String {
        var units: [UInt16] = []
        units.reserveCapacity(bytes.count / Self.unitSize)
        var i = bytes.startIndex
        while bytes.endIndex - i >= Self.unitSize {
            let unit = UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8
            if unit == 0 { break }
            units.append(unit)
            i += Self.unitSize
        }
        return String(decoding: units, as: UTF16.self)
    }
}
