import VMBusWire

/// A service's side of one hvsock stream, as a value: what to answer to the bytes the peer
/// sent, and to its end of stream. A stream served through a handler
/// (``HvSocketHost/serve(port:_:)``) can be carried into another host process by a takeover
/// (docs/SERVICING.md): whenever the stream waits for the peer's next bytes, the handler is
/// the whole of the service's state, so saving it — and the stream's flags — is saving the
/// connection.
public protocol HvSocketStreamHandler: Sendable {
    /// The name saved state knows the handler by: the new host must serve one of that name.
    static var name: String { get }
    /// A handler for a new connection.
    init()
    /// A handler as ``save()`` left it.
    /// - Throws: `SavedStateError` for bytes this handler did not write.
    init(restoring state: [UInt8]) throws(SavedStateError)
    /// The peer sent `bytes`: what to write back (empty: nothing).
    mutating func received(_ bytes: ArraySlice<UInt8>) -> [UInt8]
    /// The peer shut its side down: the last bytes to write before closing.
    mutating func finished() -> [UInt8]
    /// The handler's state.
    func save() -> [UInt8]
}

/// Echo: writes back everything it reads. Stateless.
public struct HvSocketEchoHandler: HvSocketStreamHandler {
    public static let name = "echo"
    public init() {}
    public init(restoring state: [UInt8]) throws(SavedStateError) {
        guard state.isEmpty else { throw SavedStateError("echo keeps no state, \(state.count) bytes were saved") }
    }
    public mutating func received(_ bytes: ArraySlice<UInt8>) -> [UInt8] { Array(bytes) }
    public mutating func finished() -> [UInt8] { [] }
    public func save() -> [UInt8] { [] }
}

/// Discard: reads to the end, then answers the byte count as 8 little-endian bytes.
public struct HvSocketDiscardHandler: HvSocketStreamHandler {
    public static let name = "discard"
    /// Bytes read so far.
    public private(set) var total: UInt64 = 0
    public init() {}
    public init(restoring state: [UInt8]) throws(SavedStateError) {
        var reader = WireReader(state[...])
        guard state.count == 8, let total = try? reader.readUInt64() else {
            throw SavedStateError("discard state is 8 bytes, \(state.count) were saved")
        }
        self.total = total
    }
    public mutating func received(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        self.total += UInt64(bytes.count)
        return []
    }
    public mutating func finished() -> [UInt8] { self.save() }
    public func save() -> [UInt8] {
        var writer = WireWriter(capacity: 8)
        writer.writeUInt64(self.total)
        return writer.bytes
    }
}
