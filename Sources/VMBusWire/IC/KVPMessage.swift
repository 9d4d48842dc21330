/// The KVP body (type 2; 06 §6.2): operation, pool, then a layout that depends on the
/// operation. Structures containing u32 start at body offset 4, the string IP record at 2.
public struct KVPMessage: Hashable, Sendable {
    /// Body size of GET and SET.
    public static let valueBodySize = 4 + KVPRecord.wireSize
    /// Body size of DELETE.
    public static let deleteBodySize = 8 + KVPRecord.maximumKeySize
    /// Body size of ENUMERATE, and the fixed buffer OpenVMM sends for every value operation.
    public static let enumerateBodySize = 8 + KVPRecord.wireSize
    /// Body size of the string-form IP operations.
    public static let ipInfoBodySize = 2 + KVPIPInfo.wireSize
    /// Body size of the binary-form IP operations (OpenVMM sends a 7428-byte buffer).
    public static let binaryIPInfoBodySize = 4 + KVPIPInfoBinary.wireSize
    /// The KVP service version whose IP operations use the binary form.
    public static let binaryIPVersion = ICVersion(5, 0)

    /// What follows the operation and pool bytes.
    public enum Content: Hashable, Sendable {
        /// GET and SET: a record at 4.
        case record(KVPRecord)
        /// DELETE: key_size at 4, key at 8.
        case delete(key: String)
        /// ENUMERATE: index at 4, record at 8.
        case enumerate(index: UInt32, KVPRecord)
        /// GET_IP_INFO / SET_IP_INFO, string form, at 2.
        case ipInfo(KVPIPInfo)
        /// GET_IP_INFO / SET_IP_INFO, binary form (KVP 5.0), at 4.
        case binaryIPInfo(KVPIPInfoBinary)
        /// An operation this parser does not know: the bytes after the pool.
        case unknown([UInt8])
    }

    public var operation: KVPOperation
    public var pool: KVPPool
    public var content: Content

    public init(operation: KVPOperation, pool: KVPPool, content: Content) {
        self.operation = operation
        self.pool = pool
        self.content = content
    }

    /// Reads a body. Bytes after the operation's layout are ignored: OpenVMM pads every
    /// request to a fixed buffer.
    /// - Parameter serviceVersion: the negotiated KVP version (5.0 selects binary IP records).
    public init(from reader: inout WireReader, serviceVersion: ICVersion) throws(WireError) {
        self.operation = KVPOperation(rawValue: try reader.readUInt8())
        self.pool = KVPPool(rawValue: try reader.readUInt8())
        switch self.operation {
        case .get, .set:
            try reader.skip(2)
            self.content = .record(try KVPRecord(from: &reader))
        case .delete:
            try reader.skip(2)
            let keySize = try reader.readUInt32()
            try WireError.check("KVP key_size", keySize, limit: KVPRecord.maximumKeySize)
            self.content = .delete(key: UTF16Field.decode(try reader.readBytes(KVPRecord.maximumKeySize).prefix(Int(keySize))))
        case .enumerate:
            try reader.skip(2)
            let index = try reader.readUInt32()
            self.content = .enumerate(index: index, try KVPRecord(from: &reader))
        case .getIPInfo, .setIPInfo:
            if serviceVersion >= Self.binaryIPVersion {
                try reader.skip(2)
                self.content = .binaryIPInfo(try KVPIPInfoBinary(from: &reader))
            } else {
                self.content = .ipInfo(try KVPIPInfo(from: &reader))
            }
        default:
            self.content = .unknown(Array(reader.readRemaining()))
        }
    }

    public func write(to writer: inout WireWriter) throws(WireError) {
        writer.writeUInt8(self.operation.rawValue)
        writer.writeUInt8(self.pool.rawValue)
        switch self.content {
        case .record(let record):
            writer.writeZeros(2)
            try record.write(to: &writer)
        case .delete(let key):
            let bytes = UTF16Field.encode(key) + [0, 0]
            try WireError.check("KVP key_size", bytes.count, limit: KVPRecord.maximumKeySize)
            writer.writeZeros(2)
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
