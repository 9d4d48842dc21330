import VMBusWire

/// The error a parse throws, or `nil` if it succeeds. Typed throws keep the error a
/// `WireError`, so tests can match its case without casting; closures must be written
/// `{ () throws(WireError) in … }` because Swift 6 infers `any Error` for closures.
func wireError<T>(_ body: () throws(WireError) -> T) -> WireError? {
    switch Result(catching: body) {
    case .success: return nil
    case .failure(let error): return error
    }
}

/// Whether an error is `.truncated`, whatever the counts.
func isTruncated(_ error: WireError?) -> Bool {
    if case .truncated = error { return true }
    return false
}

/// The bytes a `write(to:)` produces (no channel-message header), for building inputs —
/// hostile ones included — from valid values.
func written(_ write: (inout WireWriter) throws(WireError) -> Void) throws(WireError) -> [UInt8] {
    var writer = WireWriter()
    try write(&writer)
    return writer.bytes
}
