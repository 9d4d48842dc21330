/// A KVP operation (06 §6.1). An open set.
public struct KVPOperation: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let get = Self(rawValue: 0)
    public static let set = Self(rawValue: 1)
    public static let delete = Self(rawValue: 2)
    public static let enumerate = Self(rawValue: 3)
    public static let getIPInfo = Self(rawValue: 4)
    public static let setIPInfo = Self(rawValue: 5)
}

/// A KVP pool (06 §6.1). An open set.
public struct KVPPool: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// Data pushed by the host administrator into the guest.
    public static let external = Self(rawValue: 0)
    /// Data written by guest software, read by the host.
    public static let guest = Self(rawValue: 1)
    /// Intrinsic guest data, enumerated by the host.
    public static let auto = Self(rawValue: 2)
    /// Intrinsic host data pushed to the guest.
    public static let autoExternal = Self(rawValue: 3)
    /// Linux-internal; never exchanged.
    public static let autoInternal = Self(rawValue: 4)
}

/// A KVP value type (06 §6.2). An open set.
public struct KVPValueType: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// REG_SZ: a UTF-16 string.
    public static let string = Self(rawValue: 1)
    /// REG_EXPAND_SZ (OpenVMM).
    public static let expandString = Self(rawValue: 2)
    /// REG_DWORD / REG_U32.
    public static let dword = Self(rawValue: 4)
    /// Linux's REG_U64.
    public static let linuxU64 = Self(rawValue: 8)
    /// REG_QWORD (Windows, OpenVMM).
    public static let qword = Self(rawValue: 11)
}

/// A KVP value, by meaning.
public enum KVPValue: Hashable, Sendable {
    case string(String)
    case expandString(String)
    case dword(UInt32)
    /// Linux's REG_U64 (type 8).
    case linuxU64(UInt64)
    /// Windows' REG_QWORD (type 11).
    case qword(UInt64)
    /// Any other type or size: the bytes as sent.
    case raw(type: KVPValueType, bytes: [UInt8])
}

/// `hv_kvp_exchg_msg_value`: a key and its value (06 §6.2), 2572 bytes.
public struct KVPRecord: Hashable, Sendable {
    public static let wireSize = 2572
    /// Bytes of the key field (255 UTF-16 units + NUL).
    public static let maximumKeySize = 512
    /// Bytes of the value field.
    public static let maximumValueSize = 2048

    public var key: String
    public var value: KVPValue

    public init(key: String, value: KVPValue) {
        self.key = key
        self.value = value
    }

    /// Reads a record; `key_size` and `value_size` are checked against the field sizes.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize)
        let type = KVPValueType(rawValue: try reader.readUInt32())
        let keySize = try reader.readUInt32()
        let valueSize = try reader.readUInt32()
        try WireError.check("KVP key_size", keySize, limit: Self.maximumKeySize)
        try WireError.check("KVP value_size", valueSize, limit: Self.maximumValueSize)
        self.key = UTF16Field.decode(try reader.readBytes(Self.maximumKeySize).prefix(Int(keySize)))
        let value = try reader.readBytes(Self.maximumValueSize).prefix(Int(valueSize))
        var valueReader = WireReader(value)
        switch (type, value.count) {
        case (.string, _): self.value = .string(UTF16Field.decode(value))
        case (.expandString, _): self.value = .expandString(UTF16Field.decode(value))
        case (.dword, 4): self.value = .dword(try valueReader.readUInt32())
        case (.linuxU64, 8): self.value = .linuxU64(try valueReader.readUInt64())
        case (.qword, 8): self.value = .qword(try valueReader.readUInt64())
        default: self.value = .raw(type: type, bytes: Array(value))
        }
    }

    /// Writes the record; strings get sizes `2 × (units + 1)` as Linux reports them.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` for a key over 255 units or a
    ///   value over its field.
    public func write(to writer: inout WireWriter) throws(WireError) {
        let key = UTF16Field.encode(self.key) + [0, 0]
        try WireError.check("KVP key_size", key.count, limit: Self.maximumKeySize)
        let (type, value): (KVPValueType, [UInt8])
        switch self.value {
        case .string(let s): (type, value) = (.string, UTF16Field.encode(s) + [0, 0])
        case .expandString(let s): (type, value) = (.expandString, UTF16Field.encode(s) + [0, 0])
        case .dword(let v): (type, value) = (.dword, littleEndian(UInt64(v), 4))
        case .linuxU64(let v): (type, value) = (.linuxU64, littleEndian(v, 8))
        case .qword(let v): (type, value) = (.qword, littleEndian(v, 8))
        case .raw(let t, let bytes): (type, value) = (t, bytes)
        }
        try WireError.check("KVP value_size", value.count, limit: Self.maximumValueSize)
        writer.writeUInt32(type.rawValue)
        writer.writeUInt32(UInt32(key.count))
        writer.writeUInt32(UInt32(value.count))
        writer.writeFixed(key, size: Self.maximumKeySize)
        writer.writeFixed(value, size: Self.maximumValueSize)
    }
}

func littleEndian(_ value: UInt64, _ count: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
}
