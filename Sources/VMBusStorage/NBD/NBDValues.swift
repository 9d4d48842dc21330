/// The numbers of the NBD protocol (NetworkBlockDevice/nbd `doc/proto.md`, "Values"). Every
/// field is big-endian on the wire. Open sets are `RawRepresentable` structs, so a number this
/// server does not know still has a value to answer with; flag fields are `OptionSet`s that keep
/// unknown bits.
public enum NBDMagic {
    /// `NBDMAGIC`: the first 8 bytes the server sends (`INIT_PASSWD`).
    public static let greeting: UInt64 = 0x4e42_444d_4147_4943
    /// `IHAVEOPT`: after the greeting (newstyle), and before every option the client sends.
    public static let option: UInt64 = 0x4948_4156_454f_5054
    /// Before every reply to an option (fixed newstyle).
    public static let optionReply: UInt64 = 0x0003_e889_0455_65a9
    /// `NBD_REQUEST_MAGIC`: before every transmission request.
    public static let request: UInt32 = 0x2560_9513
    /// `NBD_SIMPLE_REPLY_MAGIC`: before every simple reply.
    public static let simpleReply: UInt32 = 0x6744_6698
}

/// The handshake flags the server sends after its greeting (16 bits).
public struct NBDHandshakeFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// `NBD_FLAG_FIXED_NEWSTYLE` (bit 0): options other than EXPORT_NAME are answered.
    public static let fixedNewstyle = NBDHandshakeFlags(rawValue: 1 << 0)
    /// `NBD_FLAG_NO_ZEROES` (bit 1): the 124 zero bytes after EXPORT_NAME's reply may be left out.
    public static let noZeroes = NBDHandshakeFlags(rawValue: 1 << 1)
}

/// The flags the client answers the handshake flags with (32 bits). Any bit the server did not
/// offer ends the connection.
public struct NBDClientFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `NBD_FLAG_C_FIXED_NEWSTYLE` (bit 0).
    public static let fixedNewstyle = NBDClientFlags(rawValue: 1 << 0)
    /// `NBD_FLAG_C_NO_ZEROES` (bit 1): leave out the 124 zero bytes after EXPORT_NAME's reply.
    public static let noZeroes = NBDClientFlags(rawValue: 1 << 1)
}

/// What an export offers (16 bits, sent with its size).
public struct NBDTransmissionFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// `NBD_FLAG_HAS_FLAGS` (bit 0): always set.
    public static let hasFlags = NBDTransmissionFlags(rawValue: 1 << 0)
    /// `NBD_FLAG_READ_ONLY` (bit 1): writes, trims and write-zeroes fail with EPERM.
    public static let readOnly = NBDTransmissionFlags(rawValue: 1 << 1)
    /// `NBD_FLAG_SEND_FLUSH` (bit 2): `NBD_CMD_FLUSH` is understood.
    public static let sendFlush = NBDTransmissionFlags(rawValue: 1 << 2)
    /// `NBD_FLAG_SEND_FUA` (bit 3): `NBD_CMD_FLAG_FUA` is honoured.
    public static let sendFUA = NBDTransmissionFlags(rawValue: 1 << 3)
    /// `NBD_FLAG_ROTATIONAL` (bit 4).
    public static let rotational = NBDTransmissionFlags(rawValue: 1 << 4)
    /// `NBD_FLAG_SEND_TRIM` (bit 5): `NBD_CMD_TRIM` is understood.
    public static let sendTrim = NBDTransmissionFlags(rawValue: 1 << 5)
    /// `NBD_FLAG_SEND_WRITE_ZEROES` (bit 6): `NBD_CMD_WRITE_ZEROES` and `NBD_CMD_FLAG_NO_HOLE`.
    public static let sendWriteZeroes = NBDTransmissionFlags(rawValue: 1 << 6)
    /// `NBD_FLAG_SEND_DF` (bit 7): structured replies only; never set here.
    public static let sendDF = NBDTransmissionFlags(rawValue: 1 << 7)
    /// `NBD_FLAG_CAN_MULTI_CONN` (bit 8): a flush on one connection covers writes completed on
    /// every connection, so a client may spread its requests over several.
    public static let canMultiConn = NBDTransmissionFlags(rawValue: 1 << 8)
    /// `NBD_FLAG_SEND_RESIZE` (bit 9).
    public static let sendResize = NBDTransmissionFlags(rawValue: 1 << 9)
    /// `NBD_FLAG_SEND_CACHE` (bit 10).
    public static let sendCache = NBDTransmissionFlags(rawValue: 1 << 10)
    /// `NBD_FLAG_SEND_FAST_ZERO` (bit 11).
    public static let sendFastZero = NBDTransmissionFlags(rawValue: 1 << 11)
}

/// An option the client sends during the handshake (32 bits).
public struct NBDOption: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `NBD_OPT_EXPORT_NAME` (1): choose an export and start transmission; cannot fail politely.
    public static let exportName = NBDOption(rawValue: 1)
    /// `NBD_OPT_ABORT` (2): the client ends the session.
    public static let abort = NBDOption(rawValue: 2)
    /// `NBD_OPT_LIST` (3): list the exports.
    public static let list = NBDOption(rawValue: 3)
    /// `NBD_OPT_STARTTLS` (5).
    public static let startTLS = NBDOption(rawValue: 5)
    /// `NBD_OPT_INFO` (6): describe an export.
    public static let info = NBDOption(rawValue: 6)
    /// `NBD_OPT_GO` (7): describe an export and start transmission.
    public static let go = NBDOption(rawValue: 7)
    /// `NBD_OPT_STRUCTURED_REPLY` (8).
    public static let structuredReply = NBDOption(rawValue: 8)
    /// `NBD_OPT_LIST_META_CONTEXT` (9).
    public static let listMetaContext = NBDOption(rawValue: 9)
    /// `NBD_OPT_SET_META_CONTEXT` (10).
    public static let setMetaContext = NBDOption(rawValue: 10)
}

/// The type of a reply to an option (32 bits); errors have bit 31 set.
public struct NBDOptionReplyType: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Whether this is an error reply (bit 31).
    public var isError: Bool { self.rawValue & 0x8000_0000 != 0 }

    /// `NBD_REP_ACK` (1): the option succeeded; the last reply to it.
    public static let ack = NBDOptionReplyType(rawValue: 1)
    /// `NBD_REP_SERVER` (2): one export, in answer to LIST.
    public static let server = NBDOptionReplyType(rawValue: 2)
    /// `NBD_REP_INFO` (3): one piece of information, in answer to INFO and GO.
    public static let info = NBDOptionReplyType(rawValue: 3)
    /// `NBD_REP_ERR_UNSUP` (2^31 + 1): the option is not known here.
    public static let errorUnsupported = NBDOptionReplyType(rawValue: 0x8000_0001)
    /// `NBD_REP_ERR_POLICY` (2^31 + 2).
    public static let errorPolicy = NBDOptionReplyType(rawValue: 0x8000_0002)
    /// `NBD_REP_ERR_INVALID` (2^31 + 3): the option's data is malformed.
    public static let errorInvalid = NBDOptionReplyType(rawValue: 0x8000_0003)
    /// `NBD_REP_ERR_PLATFORM` (2^31 + 4).
    public static let errorPlatform = NBDOptionReplyType(rawValue: 0x8000_0004)
    /// `NBD_REP_ERR_TLS_REQD` (2^31 + 5).
    public static let errorTLSRequired = NBDOptionReplyType(rawValue: 0x8000_0005)
    /// `NBD_REP_ERR_UNKNOWN` (2^31 + 6): no export has that name.
    public static let errorUnknown = NBDOptionReplyType(rawValue: 0x8000_0006)
    /// `NBD_REP_ERR_SHUTDOWN` (2^31 + 7).
    public static let errorShutdown = NBDOptionReplyType(rawValue: 0x8000_0007)
    /// `NBD_REP_ERR_BLOCK_SIZE_REQD` (2^31 + 8).
    public static let errorBlockSizeRequired = NBDOptionReplyType(rawValue: 0x8000_0008)
    /// `NBD_REP_ERR_TOO_BIG` (2^31 + 9): the option (or its answer) is too large.
    public static let errorTooBig = NBDOptionReplyType(rawValue: 0x8000_0009)
}

/// A piece of information a client asks for with INFO or GO, and the server sends in an
/// `NBD_REP_INFO` reply (16 bits).
public struct NBDInfoType: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// `NBD_INFO_EXPORT` (0): size and transmission flags; always sent.
    public static let export = NBDInfoType(rawValue: 0)
    /// `NBD_INFO_NAME` (1): the export's canonical name.
    public static let name = NBDInfoType(rawValue: 1)
    /// `NBD_INFO_DESCRIPTION` (2).
    public static let description = NBDInfoType(rawValue: 2)
    /// `NBD_INFO_BLOCK_SIZE` (3): minimum, preferred and maximum block sizes.
    public static let blockSize = NBDInfoType(rawValue: 3)
}

/// A transmission request's type (16 bits).
public struct NBDCommand: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// `NBD_CMD_READ` (0).
    public static let read = NBDCommand(rawValue: 0)
    /// `NBD_CMD_WRITE` (1): *length* bytes of data follow the request.
    public static let write = NBDCommand(rawValue: 1)
    /// `NBD_CMD_DISC` (2): finish what is in flight, then close; no reply.
    public static let disconnect = NBDCommand(rawValue: 2)
    /// `NBD_CMD_FLUSH` (3).
    public static let flush = NBDCommand(rawValue: 3)
    /// `NBD_CMD_TRIM` (4).
    public static let trim = NBDCommand(rawValue: 4)
    /// `NBD_CMD_CACHE` (5).
    public static let cache = NBDCommand(rawValue: 5)
    /// `NBD_CMD_WRITE_ZEROES` (6).
    public static let writeZeroes = NBDCommand(rawValue: 6)
    /// `NBD_CMD_BLOCK_STATUS` (7).
    public static let blockStatus = NBDCommand(rawValue: 7)
}

/// A transmission request's flags (16 bits).
public struct NBDCommandFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// `NBD_CMD_FLAG_FUA` (bit 0): durable before the reply.
    public static let fua = NBDCommandFlags(rawValue: 1 << 0)
    /// `NBD_CMD_FLAG_NO_HOLE` (bit 1): write-zeroes must allocate, not punch a hole.
    public static let noHole = NBDCommandFlags(rawValue: 1 << 1)
    /// `NBD_CMD_FLAG_DF` (bit 2): structured reads only.
    public static let dontFragment = NBDCommandFlags(rawValue: 1 << 2)
    /// `NBD_CMD_FLAG_REQ_ONE` (bit 3): block status only.
    public static let requestOne = NBDCommandFlags(rawValue: 1 << 3)
    /// `NBD_CMD_FLAG_FAST_ZERO` (bit 4): only with `NBD_FLAG_SEND_FAST_ZERO`.
    public static let fastZero = NBDCommandFlags(rawValue: 1 << 4)
}

/// The error field of a reply (32 bits): the protocol's own numbers, which happen to match
/// Linux's errno values. Zero is success.
public struct NBDError: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Success.
    public static let none = NBDError(rawValue: 0)
    /// `NBD_EPERM` (1): a write, trim or write-zeroes on a read-only export.
    public static let permission = NBDError(rawValue: 1)
    /// `NBD_EIO` (5): the device failed.
    public static let io = NBDError(rawValue: 5)
    /// `NBD_ENOMEM` (12).
    public static let noMemory = NBDError(rawValue: 12)
    /// `NBD_EINVAL` (22): an unknown command or flag, a read or trim beyond the end, a length
    /// above the maximum block size.
    public static let invalid = NBDError(rawValue: 22)
    /// `NBD_ENOSPC` (28): a write or write-zeroes beyond the end.
    public static let noSpace = NBDError(rawValue: 28)
    /// `NBD_EOVERFLOW` (75).
    public static let overflow = NBDError(rawValue: 75)
    /// `NBD_ENOTSUP` (95).
    public static let notSupported = NBDError(rawValue: 95)
    /// `NBD_ESHUTDOWN` (108): the server (or its device) is going away.
    public static let shutdown = NBDError(rawValue: 108)
}
