import VMBusWire

/// The server's side of the fixed-newstyle handshake, as a value: it takes what the client sent
/// and returns what to send and whether to go on, enter transmission or close. It does no I/O
/// (``NBDConnection`` reads and writes for it), so tests drive it directly.
///
/// Options answered: EXPORT_NAME, ABORT, LIST, INFO, GO. STARTTLS, STRUCTURED_REPLY, the meta
/// context options and every unknown option get `NBD_REP_ERR_UNSUP`.
struct NBDHandshake {
    /// How the handshake went into transmission.
    struct Session: Hashable, Sendable {
        /// Whether the client asked for `NBD_INFO_BLOCK_SIZE` with GO (it promised to honour
        /// the block sizes).
        var blockSizesAgreed: Bool
        /// Whether transmission began with EXPORT_NAME (rather than GO).
        var viaExportName: Bool
    }

    /// Why the handshake ended without transmission.
    enum End: Hashable, Sendable {
        /// The client sent ABORT.
        case aborted
        /// Client flags the server did not offer.
        case unknownClientFlags(UInt32)
        /// EXPORT_NAME for an export that does not exist (it cannot be refused politely).
        case unknownExport
        /// An option longer than ``NBDLimits/maximumOptionData``.
        case optionTooLong(UInt32)
        /// More than ``NBDLimits/maximumOptions`` options.
        case tooManyOptions
        /// An option header without `IHAVEOPT`.
        case badMagic

        /// Whether the client broke the protocol (rather than leaving).
        var isViolation: Bool { self != .aborted }
    }

    /// What the connection does next.
    enum Action: Hashable, Sendable {
        /// Send the bytes and read the next option.
        case reply([UInt8])
        /// Send the bytes; transmission starts right after them.
        case transmit([UInt8], Session)
        /// Send the bytes (possibly none), then close the connection.
        case close([UInt8], End)
    }

    let export: NBDExport
    /// The flags the handshake offers.
    static let handshakeFlags: NBDHandshakeFlags = [.fixedNewstyle, .noZeroes]
    private(set) var clientFlags: NBDClientFlags = []
    private var options = 0

    init(export: NBDExport) { self.export = export }

    // MARK: Sending

    /// The greeting the server sends first.
    static var greeting: [UInt8] {
        var writer = WireWriter(capacity: NBDGreeting.wireSize)
        NBDGreeting(flags: Self.handshakeFlags).write(to: &writer)
        return writer.bytes
    }

    // MARK: Receiving

    /// The client's flags (the 32 bits after the greeting).
    /// - Returns: `nil` to go on reading options, or ``Action/close(_:_:)`` for a flag that was
    ///   not offered ("the server MUST drop the TCP connection").
    mutating func receiveClientFlags(_ raw: UInt32) -> Action? {
        let flags = NBDClientFlags(rawValue: raw)
        guard flags.subtracting([.fixedNewstyle, .noZeroes]).isEmpty else { return .close([], .unknownClientFlags(raw)) }
        self.clientFlags = flags
        return nil
    }

    /// An option header whose data will not be read: its magic is wrong, or it claims more data
    /// than ``NBDLimits/maximumOptionData``. Both end the connection (the stream cannot be
    /// followed past an option that is not read); an oversized one is answered first.
    static func refuse(_ header: NBDOptionHeader?) -> Action {
        guard let header else { return .close([], .badMagic) }
        let reply = NBDOptionReply(option: header.option, error: .errorTooBig, message: "option data too long")
        return .close(reply.bytes, .optionTooLong(header.length))
    }

    /// An option and its data (`header.length` bytes, already read).
    mutating func receive(_ header: NBDOptionHeader, data: [UInt8]) -> Action {
        self.options += 1
        guard self.options <= NBDLimits.maximumOptions else { return .close([], .tooManyOptions) }
        let option = header.option
        switch option {
        case .exportName:
            return self.exportName(data)
        case .abort:
            // Any data is ignored, as the protocol asks.
            return .close(NBDOptionReply(option: option, type: .ack).bytes, .aborted)
        case .list:
            guard data.isEmpty else { return .reply(NBDOptionReply(option: option, error: .errorInvalid, message: "LIST takes no data").bytes) }
            var server = WireWriter()
            let name = Array(self.export.name.utf8)
            server.writeBigEndianUInt32(UInt32(name.count))
            server.writeBytes(name)
            return .reply(NBDOptionReply(option: option, type: .server, data: server.bytes).bytes + NBDOptionReply(option: option, type: .ack).bytes)
        case .info, .go:
            return self.infoOrGo(option, data)
        default:
            // STARTTLS (this server never offers TLS), STRUCTURED_REPLY (simple replies only),
            // the meta contexts (they need structured replies) and anything unknown.
            return .reply(NBDOptionReply(option: option, error: .errorUnsupported, message: "option not supported").bytes)
        }
    }

    // MARK: Options

    private func exportName(_ name: [UInt8]) -> Action {
        guard name == Array(self.export.name.utf8) else { return .close([], .unknownExport) }
        var writer = WireWriter(capacity: 134)
        writer.writeBigEndianUInt64(self.export.size)
        writer.writeBigEndianUInt16(self.export.flags.rawValue)
        if !self.clientFlags.contains(.noZeroes) { writer.writeZeros(124) }
        return .transmit(writer.bytes, Session(blockSizesAgreed: false, viaExportName: true))
    }

    private func infoOrGo(_ option: NBDOption, _ data: [UInt8]) -> Action {
        var reader = WireReader(data)
        let request: NBDExportRequest
        do {
            request = try NBDExportRequest(from: &reader)
        } catch {
            return .reply(NBDOptionReply(option: option, error: .errorInvalid, message: "malformed \(option == .go ? "GO" : "INFO") data").bytes)
        }
        guard request.name == Array(self.export.name.utf8) else {
            return .reply(NBDOptionReply(option: option, error: .errorUnknown, message: "no such export").bytes)
        }
        var replies = self.info(.export, for: option)
        if request.requests.contains(.name) { replies += self.info(.name, for: option) }
        if request.requests.contains(.blockSize) { replies += self.info(.blockSize, for: option) }
        replies += NBDOptionReply(option: option, type: .ack).bytes
        guard option == .go else { return .reply(replies) }
        return .transmit(replies, Session(blockSizesAgreed: request.requests.contains(.blockSize), viaExportName: false))
    }

    /// One `NBD_REP_INFO` reply.
    private func info(_ type: NBDInfoType, for option: NBDOption) -> [UInt8] {
        var writer = WireWriter(capacity: 14)
        writer.writeBigEndianUInt16(type.rawValue)
        switch type {
        case .export:
            writer.writeBigEndianUInt64(self.export.size)
            writer.writeBigEndianUInt16(self.export.flags.rawValue)
        case .name:
            writer.writeBytes(self.export.name.utf8)
        case .blockSize:
            writer.writeBigEndianUInt32(self.export.minimumBlockSize)
            writer.writeBigEndianUInt32(self.export.preferredBlockSize)
            writer.writeBigEndianUInt32(self.export.maximumBlockSize)
        default:
            // Only the three types above are ever asked for here.
            break
        }
        return NBDOptionReply(option: option, type: .info, data: writer.bytes).bytes
    }
}
