/// An fcopy operation (06 §8). An open set.
public struct FileCopyOperation: RawRepresentable, Hashable, Sendable {
    /// The u32 at body offset 0.
    public var rawValue: UInt32
    /// Wraps any wire value, named or not.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// 0 START_FILE_COPY: create (or truncate) the target file.
    public static let startFileCopy = Self(rawValue: 0)
    /// 1 WRITE_TO_FILE: write a fragment at an offset.
    public static let writeToFile = Self(rawValue: 1)
    /// 2 COMPLETE_FCOPY: close the file.
    public static let completeFileCopy = Self(rawValue: 2)
    /// 3 CANCEL_FCOPY: abandon the copy (Linux: not implemented, HV_E_FAIL).
    public static let cancelFileCopy = Self(rawValue: 3)
}

/// START_FILE_COPY `copy_flags` (06 §8). Unknown bits are kept.
public struct FileCopyFlags: OptionSet, Hashable, Sendable {
    /// The u32 at body offset 1076.
    public var rawValue: UInt32
    /// Wraps any wire value; unknown bits survive.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// 0x1 OVER_WRITE: replace an existing file (else HV_ERROR_ALREADY_EXISTS).
    public static let overwrite = FileCopyFlags(rawValue: 0x1)
    /// 0x2 CREATE_PATH: create missing directories of the path (else HV_E_FAIL).
    public static let createPath = FileCopyFlags(rawValue: 0x2)
}

/// The fcopy body (type 7, "guest service interface"; 06 §8): the 36-byte `hv_fcopy_hdr`
/// (operation u32, two opaque service ids), then the operation's fields.
///
/// | Operation | Layout after the header | Body |
/// |---|---|---|
/// | START_FILE_COPY | file_name [520] @36, path_name [520] @556, copy_flags u32 @1076, file_size u64 @1080 | 1088 |
/// | WRITE_TO_FILE | pad u32 @36, offset u64 @40, size u32 @48 (≤ 6144), data [6144] @52 | 6196 |
/// | COMPLETE_FCOPY, CANCEL_FCOPY | — | 36 |
///
/// Each known operation requires its whole fixed-size structure; trailing bytes are ignored.
public struct FileCopyMessage: Hashable, Sendable {
    /// `hv_fcopy_hdr`.
    public static let headerSize = 36
    /// `hv_start_fcopy`.
    public static let startSize = 1088
    /// `hv_do_fcopy`.
    public static let writeSize = 6196
    /// `DATA_FRAGMENT`: the most data one WRITE_TO_FILE carries.
    public static let maximumFragment = 6144
    /// Bytes of each name field (`W_MAX_PATH` = 260 UTF-16 units, NUL included).
    public static let nameFieldSize = 520

    /// What follows the header.
    public enum Content: Hashable, Sendable {
        /// START_FILE_COPY: names decoded up to their first NUL.
        case start(fileName: String, pathName: String, flags: FileCopyFlags, fileSize: UInt64)
        /// WRITE_TO_FILE: the first `size` bytes of the data field.
        case write(offset: UInt64, data: [UInt8])
        /// COMPLETE and CANCEL carry only the header.
        case headerOnly
        /// An unknown operation: every byte after the header, as sent.
        case unknown([UInt8])
    }

    /// `operation`.
    public var operation: FileCopyOperation
    /// `service_id0`: opaque to the guest.
    public var serviceID0: GUID
    /// `service_id1`: opaque to the guest.
    public var serviceID1: GUID
    /// The operation's fields.
    public var content: Content

    /// A body. The content should match the operation; ``write(to:)`` writes what it is given.
    public init(operation: FileCopyOperation, serviceID0: GUID = .zero, serviceID1: GUID = .zero, content: Content) {
        self.operation = operation
        self.serviceID0 = serviceID0
        self.serviceID1 = serviceID1
        self.content = content
    }

    /// Reads a body.
    /// - Throws: ``WireError/truncated(needed:available:)`` when the operation's structure is
    ///   cut (36 bytes for the header, 1088 for START, 6196 for WRITE);
    ///   ``WireError/limitExceeded(name:value:limit:)`` for a WRITE `size` above 6144.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.headerSize)
        self.operation = FileCopyOperation(rawValue: try reader.readUInt32())
        self.serviceID0 = try reader.readGUID()
        self.serviceID1 = try reader.readGUID()
        switch self.operation {
        case .startFileCopy:
            try reader.require(Self.startSize - Self.headerSize)
            let file = UTF16Field.decode(try reader.readBytes(Self.nameFieldSize), fieldSize: Self.nameFieldSize)
            let path = UTF16Field.decode(try reader.readBytes(Self.nameFieldSize), fieldSize: Self.nameFieldSize)
            let flags = FileCopyFlags(rawValue: try reader.readUInt32())
            self.content = .start(fileName: file, pathName: path, flags: flags, fileSize: try reader.readUInt64())
        case .writeToFile:
            try reader.require(Self.writeSize - Self.headerSize)
            try reader.skip(4)
            let offset = try reader.readUInt64()
            let size = try reader.readUInt32()
            guard let count = Int(exactly: size), count <= Self.maximumFragment else {
                throw WireError.limitExceeded(
                    name: "fcopy size", value: UInt64(size), limit: UInt64(Self.maximumFragment))
            }
            self.content = .write(offset: offset, data: Array(try reader.readBytes(Self.maximumFragment).prefix(count)))
        case .completeFileCopy, .cancelFileCopy:
            self.content = .headerOnly
        default:
            self.content = .unknown(Array(reader.readRemaining()))
        }
    }

    /// Appends the body; WRITE_TO_FILE is written at its full 6196 bytes, data zero-padded.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` for a name over 259 units or
    ///   data over 6144 bytes.
    public func write(to writer: inout WireWriter) throws(WireError) {
        // Encode the variable parts first so that a failure leaves `writer` untouched.
        var tail = WireWriter(capacity: Self.writeSize - Self.headerSize)
        switch self.content {
        case .start(let file, let path, let flags, let size):
            try UTF16Field.write(file, size: Self.nameFieldSize, name: "fcopy file_name", to: &tail)
            try UTF16Field.write(path, size: Self.nameFieldSize, name: "fcopy path_name", to: &tail)
            tail.writeUInt32(flags.rawValue)
            tail.writeUInt64(size)
        case .write(let offset, let data):
            try WireError.check("fcopy size", data.count, limit: Self.maximumFragment)
            tail.writeZeros(4)
            tail.writeUInt64(offset)
            // Exact: at most 6144.
            tail.writeUInt32(UInt32(data.count))
            tail.writeFixed(data, size: Self.maximumFragment)
        case .headerOnly:
            break
        case .unknown(let bytes):
            tail.writeBytes(bytes)
        }
        writer.writeUInt32(self.operation.rawValue)
        writer.writeGUID(self.serviceID0)
        writer.writeGUID(self.serviceID1)
        writer.writeBytes(tail.bytes)
    }

    /// The 8-bit name the Linux daemon derives from a UTF-16 field: code units ≥ 0x80 become
    /// `X` (06 §8).
    public static func linuxDaemonName(_ name: String) -> String {
        String(decoding: name.utf16.map { $0 < 0x80 ? UInt8(truncatingIfNeeded: $0) : UInt8(ascii: "X") }, as: UTF8.self)
    }
}
