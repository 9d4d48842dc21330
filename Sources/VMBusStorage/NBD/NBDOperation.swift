/// What the server does with one transmission request, decided from the request and the export
/// alone (no I/O), so every check is testable without a socket.
///
/// The checks, in order: the command is known and advertised, its flags apply to it, the
/// export is writable (for writes, trims and write-zeroes), the length is within the maximum
/// block size, and the range lies inside the export. Errors follow the protocol's "Error
/// values": EPERM on a read-only export, ENOSPC for a write or write-zeroes past the end,
/// EINVAL for everything else.
enum NBDOperation: Hashable, Sendable {
    /// Read `length` bytes at `offset` (any alignment).
    case read(offset: UInt64, length: Int)
    /// Read the `length` bytes of data that follow, and write them at `offset`.
    case write(offset: UInt64, length: Int, fua: Bool)
    /// Write `length` zero bytes at `offset`; `mayTrim`: a hole is allowed (no `NO_HOLE`).
    case writeZeroes(offset: UInt64, length: Int, fua: Bool, mayTrim: Bool)
    /// Discard the whole sectors inside `length` bytes at `offset`.
    case trim(offset: UInt64, length: UInt64, fua: Bool)
    case flush
    /// `NBD_CMD_DISC`: finish what is in flight, then close.
    case disconnect
    /// Reply success at once: a request of length 0 (the protocol leaves its meaning open and
    /// asks only that the server not disconnect).
    case succeed(discardPayload: Int)
    /// Reply with `error`, after reading and dropping a write's `discardPayload` bytes.
    case reject(NBDError, discardPayload: Int)
    /// A write whose data is longer than 32 MiB (``NBDLimits/maximumPayload``): the connection
    /// ends before anything is read or allocated, as the protocol allows for payloads above
    /// that. (A write above a smaller configured maximum block size is read, dropped and
    /// answered with EINVAL.)
    case tooLarge(length: UInt32)

    /// The operation for `request` on `export`.
    init(_ request: NBDRequest, export: NBDExport) {
        let length = UInt64(request.length)
        let payload = request.command == .write ? Int(request.length) : 0
        if request.command == .write && length > UInt64(NBDLimits.maximumPayload) {
            self = .tooLarge(length: request.length)
            return
        }
        let flags = request.flags
        func reject(_ error: NBDError) -> NBDOperation { .reject(error, discardPayload: payload) }
        // The range, its end computed without overflow.
        let (end, overflow) = request.offset.addingReportingOverflow(length)
        let inside = !overflow && end <= export.size
        let fua = flags.contains(.fua)

        switch request.command {
        case .disconnect:
            self = .disconnect
        case .flush:
            guard flags.subtracting(.fua).isEmpty, request.offset == 0, length == 0 else { self = reject(.invalid); return }
            self = .flush
        case .read:
            // FUA is accepted on any command (clients are known to set it everywhere).
            guard flags.subtracting(.fua).isEmpty else { self = reject(.invalid); return }
            guard length <= UInt64(export.maximumBlockSize), inside else { self = reject(.invalid); return }
            self = length == 0 ? .succeed(discardPayload: 0) : .read(offset: request.offset, length: Int(length))
        case .write:
            guard flags.subtracting(.fua).isEmpty else { self = reject(.invalid); return }
            guard !export.isReadOnly else { self = reject(.permission); return }
            guard length <= UInt64(export.maximumBlockSize) else { self = reject(.invalid); return }
            guard inside else { self = reject(.noSpace); return }
            self = length == 0 ? .succeed(discardPayload: 0) : .write(offset: request.offset, length: Int(length), fua: fua)
        case .writeZeroes:
            guard export.flags.contains(.sendWriteZeroes) || export.isReadOnly else { self = reject(.invalid); return }
            // FAST_ZERO is not advertised, so the protocol asks for EINVAL.
            guard flags.subtracting([.fua, .noHole]).isEmpty else { self = reject(.invalid); return }
            guard !export.isReadOnly else { self = reject(.permission); return }
            guard length <= UInt64(export.maximumBlockSize) else { self = reject(.invalid); return }
            guard inside else { self = reject(.noSpace); return }
            self =
                length == 0
                ? .succeed(discardPayload: 0)
                : .writeZeroes(offset: request.offset, length: Int(length), fua: fua, mayTrim: !flags.contains(.noHole))
        case .trim:
            guard export.flags.contains(.sendTrim) || export.isReadOnly else { self = reject(.invalid); return }
            guard flags.subtracting(.fua).isEmpty else { self = reject(.invalid); return }
            guard !export.isReadOnly else { self = reject(.permission); return }
            guard inside else { self = reject(.invalid); return }
            self = length == 0 ? .succeed(discardPayload: 0) : .trim(offset: request.offset, length: length, fua: fua)
        default:
            // CACHE, BLOCK_STATUS (needs structured replies), anything unknown: "The server
            // SHOULD return EINVAL if it receives an unknown command".
            self = reject(.invalid)
        }
    }
}

extension NBDOperation {
    /// The same request refused with ESHUTDOWN because the server is stopping (a write's data
    /// still has to be read past). Disconnects and oversized writes stay what they are.
    var refusedForShutdown: NBDOperation {
        switch self {
        case .disconnect, .tooLarge: return self
        case .write(_, let length, _): return .reject(.shutdown, discardPayload: length)
        case .succeed(let payload), .reject(_, let payload): return .reject(.shutdown, discardPayload: payload)
        case .read, .writeZeroes, .trim, .flush: return .reject(.shutdown, discardPayload: 0)
        }
    }
}

extension NBDError {
    /// The error a client sees for a device's failure.
    init(_ error: BlockDeviceError, writing: Bool) {
        switch error {
        case .outOfRange: self = writing ? .noSpace : .invalid
        case .readOnly: self = .permission
        case .invalidLength, .unsupported: self = .invalid
        case .failed: self = .io
        case .closed: self = .shutdown
        }
    }
}
