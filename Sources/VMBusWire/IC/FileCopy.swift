/// An fcopy operation (06 §8). An open set.
public struct FileCopyOperation: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let startFileCopy = Self(rawValue: 0)
    public static let writeToFile = Self(rawValue: 1)
    public static let completeFileCopy = Self(rawValue: 2)
    public static let cancelFileCopy = Self(rawValue: 3)
}

/// START_FILE_COPY copy flags. Unknown bits are kept.
public struct FileCopyFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Replace an existing file.
    public static let overwrite = FileCopyFlags(rawValue: 0x1)
    /// Create missing directories of the path.
    public static let createPath = FileCopyFlags(rawValue: 0x2)
}

/// The fcopy body (type 7, "guest service interface"; 06 §8): a 36-byte header
/// (operation, two opaque service ids), then the operation's fields.
public struct FileCopyMessage: Hashable, Sendable {
    /// `hv_fcopy_hdr`.
    public static let headerSize = 36
    /// `hv_start_fcopy`.
    public static let startSize = 1088
    /// `hv_do_fcopy`.
    public static let writeSize = 6196
    /// `DATA_FRAGMENT`: the most data one WRITE_TO_FILE carries.
    public static let maximumFragment = 6144
    /// Bytes of each name field (`W_MAX_PATH` = 260 UTF-16 units).
    public static let nameFieldSize = 520

    /// What follows the header.
    public enum Content: Hashable, Sendable {
        case start(fileName: String, pathName: String, flags: FileCopyFlags, fileSize: UInt64)
        case write(offset: UInt64, data: [UInt8])
        /// COMPLETE and CANCEL carry only the header.
        case headerOnly
        /// An unknown operation: the bytes after the header.
        case unknown([UInt8])
    }

    public var operation: FileCopyOperation
    /// Opaque to the guest.
    public var serviceID0: GUID
    /// Opaque to the guest.
    public var serviceID1: GUID
    public var content: Content

    public init(operation: FileCopyOperation, serviceID0: GUID = .zero, serviceID1: GUID = .zero, content: Content) {
        self.operation = operation
        self.serviceID0 = serviceID0
        self.serviceID1 = serviceID1
        self.content = content
    }

    /// Reads a body. WRITE_TO_FILE needs its data present: `size` ≤ 6144 and that many bytes.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.headerSize)
        self.operation = FileCopyOperation(rawValue: try reader.readUInt32())
        self.serviceID0 = try reader.readGUID()
        self.serviceID1 = try reader.readGUID()
        switch self.operation {
        case .startFileCopy:
            try reader.require(Self.startSize - Self.headerSize)
            let file = UTF16Field.decode(try reader.readBytes(Self.nameFieldSize))
            let path = UTF16Field.decode(try reader.readBytes(Self.nameFieldSize))
            let flags = FileCopyFlags(rawValue: try reader.readUInt32())
            self.content = .start(fileName: file, pathName: path, flags: flags, fileSize: try reader.readUInt64())
        case .writeToFile:
            try reader.skip(4)
            let offset = try reader.readUInt64()
            let size = try reader.readUInt32()
            try WireError.check("fcopy size", size, limit: Self.maximumFragment)
            self.content = .write(offset: offset, data: Array(try reader.readBytes(Int(size))))
        case .completeFileCopy, .cancelFileCopy:
            self.content = .headerOnly
        default:
            self.content = .unknown(Array(reader.readRemaining()))
        }
    }

    /// Writes the body; WRITE_TO_FILE is written at its full 6196 bytes, data zero-padded.
    public func write(to writer: inout WireWriter) throws(WireError) {
        writer.writeUInt32(self.operation.rawValue)
        writer.writeGUID(self.serviceID0)
        writer.writeGUID(self.serviceID1)
        switch self.content {
        case .start(let file, let path, let flags, let size):
            try UTF16Field.write(file, size: Self.nameFieldSize, name: "fcopy file_name", to: &writer)
            try UTF16Field.write(path, size: Self.nameFieldSize, name: "fcopy path_name", to: &writer)
            writer.writeUInt32(flags.rawValue)
            writer.writeUInt64(size)
        case .write(let offset, let data):
            try WireError.check("fcopy size", data.count, limit: Self.maximumFragment)
            writer.writeZeros(4)
            writer.writeUInt64(offset)
            writer.writeUInt32(UInt32(data.count))
            writer.writeFixed(data, size: Self.maximumFragment)
        case .headerOnly:
            break
        case .unknown(let bytes):
            writer.writeBytes(bytes)
        }
    }

    /// The 8-bit name the Linux daemon derives from a UTF-16 field: code units ≥ 0x80 become `X`.
    public static func linuxDaemonName(_ name: String) -> String {
        String(decoding: name.utf16.map { $0 < 0x80 ? UInt8($0) : UInt8(ascii: "X") }, as: UTF8.self)
    }
}
