/// The KVP body (type 2; `hv_kvp_msg`, 06 §6.2): `operation` u8 @0, `pool` u8 @1, then a layout
/// that depends on the operation.
///
/// The per-operation structures keep their natural alignment after the 2-byte head: those
/// containing a u32 start at body offset 4 (bytes 2–3 are padding), the u16-aligned string IP
/// record at offset 2.
///
/// | Operation | After the head | Body |
/// |---|---|---|
/// | GET, SET | value record @4 | 2576 |
/// | DELETE | `key_size` u32 @4, key [512] @8 | 520 |
/// | ENUMERATE | `index` u32 @4, value record @8 | 2580 |
/// | GET/SET_IP_INFO, KVP ≤ 4.0 | string IP record @2 | 7428 |
/// | GET/SET_IP_INFO, KVP 5.0 | binary IP record @4 | 3716 |
///
/// Trailing bytes are ignored: OpenVMM pads every request to a fixed buffer (2580 bytes for
/// value operations, 7428 for IP operations) and Linux answers with the request's length.
public struct KVPMessage: Hashable, Sendable {
    /// Body size of GET and SET.
    public static let valueBodySize = 4 + KVPRecord.wireSize
    /// Body size of DELETE.
    public static let deleteBodySize = 8 + KVPRecord.maximumKeySize
    /// Body size of ENUMERATE, and the fixed buffer OpenVMM sends for every value operation.
    public static let enumerateBodySize = 8 + KVPRecord.wireSize
    /// Body size of the string-form IP operations, and OpenVMM's buffer for every IP operation.
    public static let ipInfoBodySize = 2 + KVPIPInfo.wireSize
    /// Body size of the binary-form IP operations (OpenVMM still sends a 7428-byte buffer).
    public static let binaryIPInfoBodySize = 4 + KVPIPInfoBinary.wireSize
    /// The KVP service version whose IP operations use the binary form.
    public static let binaryIPVersion = ICVersion(5, 0)

    /// What follows the operation and pool bytes.
    public enum Content: Hashable, Sendable {
        /// GET and SET: a value record at 4.
        case record(KVPRecord)
        /// DELETE: `key_size` at 4, the key at 8.
        case delete(key: String)
        /// ENUMERATE: `index` at 4, a value record at 8.
        case enumerate(index: UInt32, KVPRecord)
        /// GET_IP_INFO / SET_IP_INFO, string form (KVP ≤ 4.0), at 2.
        case ipInfo(KVPIPInfo)
        /// GET_IP_INFO / SET_IP_INFO, binary form (KVP 5.0), at 4.
        case binaryIPInfo(KVPIPInfoBinary)
        /// An operation this parser does not know: every byte after the pool, as sent.
        case unknown([UInt8])
    }

    /// `operation`.
    public var operation: KVPOperation
    /// `pool`.
    public var pool: KVPPool
    /// The operation's fields.
    public var content: Content

    /// A body. The content should match the operation; ``write(to:)`` writes what it is given.
    public init(operation: KVPOperation, pool: KVPPool, content: Content) {
        self.operation = operation
        self.pool = pool
        self.content = content
    }

    /// Reads a body, choosing the layout by the operation and, for IP operations, by the
    /// negotiated service version. An unknown operation keeps its bytes (bounded by the IC
    /// message, at most 13312).
    /// - Parameter reader: positioned at the body, after the IC message header.
    /// - Parameter serviceVersion: the negotiated KVP version (5.0 and later select the binary
    ///   IP record).
    /// - Throws: ``WireError/truncated(needed:available:)`` if the operation's layout is cut;
    ///   ``WireError/limitExceeded(name:value:limit:)`` for a `key_size` or `value_size` above
    ///   its field.
    public init(from reader: inout WireReader, serviceVersion: ICVersion) throws(WireError) {
        try reader.require(2)
        self.operation = KVPOperation(rawValue: try reader.readUInt8())
        self.pool = KVPPool(rawValue: try reader.readUInt8())
        switch self.operation {
        case .get, .set:
            try reader.require(Self.valueBodySize - 2)
            try reader.skip(2)
            self.content = .record(try KVPRecord(from: &reader))
        case .delete:
            try reader.require(Self.deleteBodySize - 2)
            try reader.skip(2)
            let keySize = try KVPRecord.checkedSize(
                try reader.readUInt32(), limit: KVPRecord.maximumKeySize, name: "KVP key_size")
            self.content = .delete(key: UTF16Field.decode(
                try reader.readBytes(KVPRecord.maximumKeySize).prefix(keySize), fieldSize: KVPRecord.maximumKeySize))
        case .enumerate:
            try reader.require(Self.enumerateBodySize - 2)
            try reader.skip(2)
            let index = try reader.readUInt32()
            self.content = .enumerate(index: index, try KVPRecord(from: &reader))
        case .getIPInfo, .setIPInfo:
            if serviceVersion >= Self.binaryIPVersion {
                try reader.require(Self.binaryIPInfoBodySize - 2)
                try reader.skip(2)
                self.content = .binaryIPInfo(try KVPIPInfoBinary(from: &reader))
            } else {
                self.content = .ipInfo(try KVPIPInfo(from: &reader))
            }
        default:
            self.content = .unknown(Array(reader.readRemaining()))
        }
    }

    /// Appends the body, padding bytes as zeros.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` for a key, value or text that
    ///   does not fit its field; ``WireError/invalidField(name:value:)`` for a malformed binary
    ///   IP record.
    public func write(to writer: inout WireWriter) throws(WireError) {
        writer.writeUInt8(self.operation.rawValue)
        writer.writeUInt8(self.pool.rawValue)
        switch self.content {
        case .record(let record):
            writer.writeZeros(2)
            try record.write(to: &writer)
        case .delete(let key):
            let bytes = try UTF16Field.encodeTerminated(key, limit: KVPRecord.maximumKeySize, name: "KVP key_size")
            writer.writeZeros(2)
            // Exact: at most 512.
            writer.writeUInt32(UInt32(bytes.count))
            writer.writeFixed(bytes, size: KVPRecord.maximumKeySize)
        case .enumerate(let index, let record):
            writer.writeZeros(2)
            writer.writeUInt32(index)
            try record.write(to: &writer)
        case .ipInfo(let info):
            try info.write(to: &writer)
        case .binaryIPInfo(let info):
            writer.writeZeros(2)
            try info.write(to: &writer)
        case .unknown(let bytes):
            writer.writeBytes(bytes)
        }
    }
}
