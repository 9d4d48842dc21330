import VMBusWire

// The NBD messages with fixed layouts (NetworkBlockDevice/nbd `doc/proto.md`, "Handshake" and
// "Transmission"), each reader next to its writer. NBD is big-endian, like SCSI: the cursors'
// big-endian helpers (VMBusWire's `BigEndian.swift`) read and write every field.

/// The server's first message: `NBDMAGIC`, `IHAVEOPT`, handshake flags (18 bytes).
public struct NBDGreeting: Hashable, Sendable {
    public static let wireSize = 18
    public var flags: NBDHandshakeFlags

    public init(flags: NBDHandshakeFlags) { self.flags = flags }

    public init(from reader: inout WireReader) throws(WireError) {
        let magic = try reader.readBigEndianUInt64()
        guard magic == NBDMagic.greeting else { throw WireError.invalidField(name: "NBDMAGIC", value: magic) }
        let option = try reader.readBigEndianUInt64()
        guard option == NBDMagic.option else { throw WireError.invalidField(name: "IHAVEOPT", value: option) }
        self.flags = NBDHandshakeFlags(rawValue: try reader.readBigEndianUInt16())
    }

    public func write(to writer: inout WireWriter) {
        writer.writeBigEndianUInt64(NBDMagic.greeting)
        writer.writeBigEndianUInt64(NBDMagic.option)
        writer.writeBigEndianUInt16(self.flags.rawValue)
    }
}

/// The header of an option the client sends: `IHAVEOPT`, option, data length (16 bytes). The
/// data (`length` bytes) follows.
public struct NBDOptionHeader: Hashable, Sendable {
    public static let wireSize = 16
    public var option: NBDOption
    public var length: UInt32

    public init(option: NBDOption, length: UInt32) {
        self.option = option
        self.length = length
    }

    /// - Throws: ``WireError/invalidField(name:value:)`` for a magic other than `IHAVEOPT`,
    ///   ``WireError/truncated(needed:available:)``.
    public init(from reader: inout WireReader) throws(WireError) {
        let magic = try reader.readBigEndianUInt64()
        guard magic == NBDMagic.option else { throw WireError.invalidField(name: "IHAVEOPT", value: magic) }
        self.option = NBDOption(rawValue: try reader.readBigEndianUInt32())
        self.length = try reader.readBigEndianUInt32()
    }

    public func write(to writer: inout WireWriter) {
        writer.writeBigEndianUInt64(NBDMagic.option)
        writer.writeBigEndianUInt32(self.option.rawValue)
        writer.writeBigEndianUInt32(self.length)
    }
}

/// A reply to an option: magic, option, reply type, data length, data (20 bytes + data).
public struct NBDOptionReply: Hashable, Sendable {
    public static let headerSize = 20
    public var option: NBDOption
    public var type: NBDOptionReplyType
    public var data: [UInt8]

    public init(option: NBDOption, type: NBDOptionReplyType, data: [UInt8] = []) {
        self.option = option
        self.type = type
        self.data = data
    }

    /// An error reply carrying a message for the user.
    public init(option: NBDOption, error: NBDOptionReplyType, message: String) {
        self.init(option: option, type: error, data: Array(message.utf8.prefix(NBDLimits.maximumString)))
    }

    /// - Throws: ``WireError/invalidField(name:value:)`` for a wrong magic,
    ///   ``WireError/limitExceeded(name:value:limit:)`` for data above `maximumData`,
    ///   ``WireError/truncated(needed:available:)``.
    public init(from reader: inout WireReader, maximumData: Int = NBDLimits.maximumOptionData) throws(WireError) {
        let magic = try reader.readBigEndianUInt64()
        guard magic == NBDMagic.optionReply else { throw WireError.invalidField(name: "reply magic", value: magic) }
        self.option = NBDOption(rawValue: try reader.readBigEndianUInt32())
        self.type = NBDOptionReplyType(rawValue: try reader.readBigEndianUInt32())
        let length = try reader.readBigEndianUInt32()
        guard length <= maximumData else {
            throw WireError.limitExceeded(name: "option reply length", value: UInt64(length), limit: UInt64(maximumData))
        }
        self.data = Array(try reader.readBytes(Int(length)))
    }

    public func write(to writer: inout WireWriter) {
        writer.writeBigEndianUInt64(NBDMagic.optionReply)
        writer.writeBigEndianUInt32(self.option.rawValue)
        writer.writeBigEndianUInt32(self.type.rawValue)
        // Server-built data: export names and messages, each capped at the string limit.
        writer.writeBigEndianUInt32(UInt32(self.data.count))
        writer.writeBytes(self.data)
    }

    /// The encoded reply.
    public var bytes: [UInt8] {
        var writer = WireWriter(capacity: Self.headerSize + self.data.count)
        self.write(to: &writer)
        return writer.bytes
    }
}

/// The data of `NBD_OPT_INFO` and `NBD_OPT_GO`: a 32-bit name length, the name, a 16-bit count
/// of information requests, and that many 16-bit `NBD_INFO` types.
public struct NBDExportRequest: Hashable, Sendable {
    /// The export name's bytes (UTF-8 by the protocol; compared as bytes).
    public var name: [UInt8]
    public var requests: [NBDInfoType]

    public init(name: [UInt8], requests: [NBDInfoType]) {
        self.name = name
        self.requests = requests
    }

    /// Reads the whole option data; nothing may be left over.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` for a name above the protocol's
    ///   4096-byte string limit, ``WireError/truncated(needed:available:)``,
    ///   ``WireError/trailingBytes(count:)``.
    public init(from reader: inout WireReader) throws(WireError) {
        let nameLength = try reader.readBigEndianUInt32()
        guard nameLength <= NBDLimits.maximumString else {
            throw WireError.limitExceeded(name: "export name length", value: UInt64(nameLength), limit: UInt64(NBDLimits.maximumString))
        }
        self.name = Array(try reader.readBytes(Int(nameLength)))
        let count = try reader.readBigEndianUInt16()
        // Checked before the loop: the count must match what is left exactly.
        try reader.require(Int(count) * 2)
        var requests: [NBDInfoType] = []
        requests.reserveCapacity(Int(count))
        for _ in 0..<count { requests.append(NBDInfoType(rawValue: try reader.readBigEndianUInt16())) }
        self.requests = requests
        try reader.expectEnd()
    }

    public func write(to writer: inout WireWriter) {
        writer.writeBigEndianUInt32(UInt32(self.name.count))
        writer.writeBytes(self.name)
        writer.writeBigEndianUInt16(UInt16(self.requests.count))
        for request in self.requests { writer.writeBigEndianUInt16(request.rawValue) }
    }
}

/// A transmission request: magic, flags, type, cookie, offset, length (28 bytes). A write's
/// `length` bytes of data follow.
public struct NBDRequest: Hashable, Sendable {
    public static let wireSize = 28
    public var flags: NBDCommandFlags
    public var command: NBDCommand
    /// The client's handle for the request, echoed in the reply.
    public var cookie: UInt64
    public var offset: UInt64
    public var length: UInt32

    public init(flags: NBDCommandFlags = [], command: NBDCommand, cookie: UInt64, offset: UInt64, length: UInt32) {
        self.flags = flags
        self.command = command
        self.cookie = cookie
        self.offset = offset
        self.length = length
    }

    /// - Throws: ``WireError/invalidField(name:value:)`` for a magic other than
    ///   `NBD_REQUEST_MAGIC`, ``WireError/truncated(needed:available:)``.
    public init(from reader: inout WireReader) throws(WireError) {
        let magic = try reader.readBigEndianUInt32()
        guard magic == NBDMagic.request else { throw WireError.invalidField(name: "request magic", value: UInt64(magic)) }
        self.flags = NBDCommandFlags(rawValue: try reader.readBigEndianUInt16())
        self.command = NBDCommand(rawValue: try reader.readBigEndianUInt16())
        self.cookie = try reader.readBigEndianUInt64()
        self.offset = try reader.readBigEndianUInt64()
        self.length = try reader.readBigEndianUInt32()
    }

    public func write(to writer: inout WireWriter) {
        writer.writeBigEndianUInt32(NBDMagic.request)
        writer.writeBigEndianUInt16(self.flags.rawValue)
        writer.writeBigEndianUInt16(self.command.rawValue)
        writer.writeBigEndianUInt64(self.cookie)
        writer.writeBigEndianUInt64(self.offset)
        writer.writeBigEndianUInt32(self.length)
    }
}

/// A simple reply: magic, error, cookie (16 bytes). A successful read's data follows.
public struct NBDSimpleReply: Hashable, Sendable {
    public static let wireSize = 16
    public var error: NBDError
    public var cookie: UInt64

    public init(error: NBDError, cookie: UInt64) {
        self.error = error
        self.cookie = cookie
    }

    /// - Throws: ``WireError/invalidField(name:value:)`` for a wrong magic,
    ///   ``WireError/truncated(needed:available:)``.
    public init(from reader: inout WireReader) throws(WireError) {
        let magic = try reader.readBigEndianUInt32()
        guard magic == NBDMagic.simpleReply else { throw WireError.invalidField(name: "reply magic", value: UInt64(magic)) }
        self.error = NBDError(rawValue: try reader.readBigEndianUInt32())
        self.cookie = try reader.readBigEndianUInt64()
    }

    public func write(to writer: inout WireWriter) {
        writer.writeBigEndianUInt32(NBDMagic.simpleReply)
        writer.writeBigEndianUInt32(self.error.rawValue)
        writer.writeBigEndianUInt64(self.cookie)
    }

    /// The encoded reply.
    public var bytes: [UInt8] {
        var writer = WireWriter(capacity: Self.wireSize)
        self.write(to: &writer)
        return writer.bytes
    }
}

/// The protocol's and this server's limits on what a client may send.
public enum NBDLimits {
    /// Strings (export names, messages): "MUST be no longer than 4096 bytes".
    public static let maximumString = 4096
    /// Option data this server reads; a longer option gets `NBD_REP_ERR_TOO_BIG` and the
    /// connection ends (its data is never read). INFO and GO need at most 4 + 4096 + 2 + 2n.
    public static let maximumOptionData = 64 * 1024
    /// Options one connection may send before it is closed (a client looping on INFO).
    public static let maximumOptions = 1024
    /// The most data one read or write carries (`2^25`): what the protocol says every server
    /// should accept, advertised as the maximum block size. A write claiming more ends the
    /// connection before anything is allocated; a longer read or write-zeroes fails with EINVAL.
    public static let maximumPayload = 32 * 1024 * 1024
}
