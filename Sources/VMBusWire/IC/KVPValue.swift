/// A KVP operation (06 §6.1). An open set: unknown operations are kept with their bytes.
public struct KVPOperation: RawRepresentable, Hashable, Sendable {
    /// The u8 at body offset 0.
    public var rawValue: UInt8
    /// Wraps any wire value, named or not.
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// 0 GET: return the value of a key in a pool.
    public static let get = Self(rawValue: 0)
    /// 1 SET: store a key/value in a pool.
    public static let set = Self(rawValue: 1)
    /// 2 DELETE: delete a key.
    public static let delete = Self(rawValue: 2)
    /// 3 ENUMERATE: return the entry at `index` of a pool.
    public static let enumerate = Self(rawValue: 3)
    /// 4 GET_IP_INFO: report an adapter's IP configuration.
    public static let getIPInfo = Self(rawValue: 4)
    /// 5 SET_IP_INFO: apply an IP configuration to an adapter.
    public static let setIPInfo = Self(rawValue: 5)
}

/// A KVP pool (06 §6.1). An open set.
public struct KVPPool: RawRepresentable, Hashable, Sendable {
    /// The u8 at body offset 1.
    public var rawValue: UInt8
    /// Wraps any wire value, named or not.
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// 0 EXTERNAL: data pushed by the host administrator into the guest.
    public static let external = Self(rawValue: 0)
    /// 1 GUEST: data written by guest software, read by the host.
    public static let guest = Self(rawValue: 1)
    /// 2 AUTO: intrinsic guest data (OS name, FQDN, IPs…), enumerated by the host.
    public static let auto = Self(rawValue: 2)
    /// 3 AUTO_EXTERNAL: intrinsic host data pushed to the guest (e.g. host name).
    public static let autoExternal = Self(rawValue: 3)
    /// 4 AUTO_INTERNAL: Linux-internal; never exchanged.
    public static let autoInternal = Self(rawValue: 4)
}

/// A KVP value type, `value_type` of the value record (06 §6.2). An open set.
public struct KVPValueType: RawRepresentable, Hashable, Sendable {
    /// The u32 at record offset 0.
    public var rawValue: UInt32
    /// Wraps any wire value, named or not.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// 1 REG_SZ: a UTF-16 string with its NUL.
    public static let string = Self(rawValue: 1)
    /// 2 REG_EXPAND_SZ (OpenVMM): a UTF-16 string with its NUL.
    public static let expandString = Self(rawValue: 2)
    /// 4 REG_DWORD / Linux REG_U32: a little-endian u32.
    public static let dword = Self(rawValue: 4)
    /// 8 Linux REG_U64: a little-endian u64 (Linux's own number for a 64-bit value).
    public static let linuxU64 = Self(rawValue: 8)
    /// 11 REG_QWORD (Windows, OpenVMM): a little-endian u64.
    public static let qword = Self(rawValue: 11)
}

/// A KVP value by meaning: the semantic form of a record's `value_type`, `value_size` and
/// `value` (06 §6.2).
///
/// A type and size that agree become the matching case; anything else — an unknown type, a
/// DWORD that is not 4 bytes — is kept as ``raw(type:bytes:)`` so that it survives a round trip.
public enum KVPValue: Hashable, Sendable {
    /// REG_SZ (1): UTF-16 text, decoded up to its first NUL (at most 1023 units).
    case string(String)
    /// REG_EXPAND_SZ (2): UTF-16 text, decoded up to its first NUL (at most 1023 units).
    case expandString(String)
    /// REG_DWORD / REG_U32 (4), exactly 4 bytes.
    case dword(UInt32)
    /// Linux's REG_U64 (8), exactly 8 bytes.
    case linuxU64(UInt64)
    /// Windows' REG_QWORD (11), exactly 8 bytes.
    case qword(UInt64)
    /// Any other type or size: the `value_size` bytes as sent.
    case raw(type: KVPValueType, bytes: [UInt8])

    /// The `value_type` written for this value.
    public var valueType: KVPValueType {
        switch self {
        case .string: return .string
        case .expandString: return .expandString
        case .dword: return .dword
        case .linuxU64: return .linuxU64
        case .qword: return .qword
        case .raw(let type, _): return type
        }
    }

    /// The value of a record whose `value_type` is `type` and whose first `value_size` value
    /// bytes are `bytes` (the caller has checked `value_size` ≤ 2048). Never fails.
    public init(type: KVPValueType, bytes: ArraySlice<UInt8>) {
        switch (type, bytes.count) {
        case (.string, _): self = .string(UTF16Field.decode(bytes, fieldSize: KVPRecord.maximumValueSize))
        case (.expandString, _): self = .expandString(UTF16Field.decode(bytes, fieldSize: KVPRecord.maximumValueSize))
        // The sizes are matched by the patterns, so these reads cannot run short.
        case (.dword, 4): self = .dword((try? WireReader(bytes).peekUInt32()) ?? 0)
        case (.linuxU64, 8): self = .linuxU64((try? WireReader(bytes).peekUInt64()) ?? 0)
        case (.qword, 8): self = .qword((try? WireReader(bytes).peekUInt64()) ?? 0)
        default: self = .raw(type: type, bytes: Array(bytes))
        }
    }

    /// The `value_size` bytes of the value field: strings as UTF-16LE with a NUL, so that the
    /// size is `2 × (units + 1)` as Linux reports it; integers little-endian.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` above 2048 bytes.
    public func encodedBytes() throws(WireError) -> [UInt8] {
        let limit = KVPRecord.maximumValueSize
        let bytes: [UInt8]
        switch self {
        case .string(let text), .expandString(let text):
            bytes = try UTF16Field.encodeTerminated(text, limit: limit, name: "KVP value_size")
        case .dword(let value):
            var writer = WireWriter(capacity: 4)
            writer.writeUInt32(value)
            bytes = writer.bytes
        case .linuxU64(let value), .qword(let value):
            var writer = WireWriter(capacity: 8)
            writer.writeUInt64(value)
            bytes = writer.bytes
        case .raw(_, let raw): bytes = raw
        }
        try WireError.check("KVP value_size", bytes.count, limit: limit)
        return bytes
    }
}

/// `hv_kvp_exchg_msg_value`: a key and its value (06 §6.2), 2572 bytes, packed.
///
/// Layout: `value_type` u32 @0, `key_size` u32 @4 (bytes, NUL included), `value_size` u32 @8,
/// `key` [512] @12 (UTF-16LE), `value` [2048] @524. Both sizes are checked against their fields
/// before use; the key is decoded from its first `key_size` bytes and the value from its first
/// `value_size` bytes (see ``KVPValue/init(type:bytes:)``). Bytes past the sizes are not kept, and
/// text that fills its whole field without a NUL loses its last unit, as with Linux's readers
/// (``UTF16Field/decode(_:fieldSize:)``), so that every parsed record can be written back.
public struct KVPRecord: Hashable, Sendable {
    /// Bytes on the wire.
    public static let wireSize = 2572
    /// `HV_KVP_EXCHANGE_MAX_KEY_SIZE`: bytes of the key field (255 UTF-16 units + NUL).
    public static let maximumKeySize = 512
    /// `HV_KVP_EXCHANGE_MAX_VALUE_SIZE`: bytes of the value field.
    public static let maximumValueSize = 2048

    /// The key, decoded up to its first NUL.
    public var key: String
    /// The value.
    public var value: KVPValue

    /// A record.
    public init(key: String, value: KVPValue) {
        self.key = key
        self.value = value
    }

    /// Reads the 2572 bytes.
    /// - Throws: ``WireError/truncated(needed:available:)`` for fewer than 2572 bytes;
    ///   ``WireError/limitExceeded(name:value:limit:)`` for `key_size` > 512 or
    ///   `value_size` > 2048.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize)
        let type = KVPValueType(rawValue: try reader.readUInt32())
        let keySize = try Self.checkedSize(try reader.readUInt32(), limit: Self.maximumKeySize, name: "KVP key_size")
        let valueSize = try Self.checkedSize(
            try reader.readUInt32(), limit: Self.maximumValueSize, name: "KVP value_size")
        self.key = UTF16Field.decode(try reader.readBytes(Self.maximumKeySize).prefix(keySize), fieldSize: Self.maximumKeySize)
        self.value = KVPValue(type: type, bytes: try reader.readBytes(Self.maximumValueSize).prefix(valueSize))
    }

    /// Appends the 2572 bytes; strings get sizes `2 × (units + 1)` as Linux reports them.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` for a key over 255 units or a
    ///   value over 2048 bytes.
    public func write(to writer: inout WireWriter) throws(WireError) {
        let key = try UTF16Field.encodeTerminated(self.key, limit: Self.maximumKeySize, name: "KVP key_size")
        let value = try self.value.encodedBytes()
        writer.writeUInt32(self.value.valueType.rawValue)
        // Exact: both were just checked against fields of at most 2048 bytes.
        writer.writeUInt32(UInt32(key.count))
        writer.writeUInt32(UInt32(value.count))
        writer.writeFixed(key, size: Self.maximumKeySize)
        writer.writeFixed(value, size: Self.maximumValueSize)
    }

    /// A peer's `key_size` / `value_size`, as an `Int` no larger than `limit`.
    static func checkedSize(_ size: UInt32, limit: Int, name: String) throws(WireError) -> Int {
        guard let value = Int(exactly: size), value <= limit else {
            throw WireError.limitExceeded(name: name, value: UInt64(size), limit: UInt64(limit))
        }
        return value
    }
}
