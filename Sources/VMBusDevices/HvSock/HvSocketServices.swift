import VMBusWire

/// Two small hvsock services for tests, demos and benchmarks (the classic echo and discard
/// ports): echo writes back everything it reads; discard reads to the end, then answers the
/// byte count as 8 little-endian bytes. Both are served through handlers
/// (``HvSocketEchoHandler``, ``HvSocketDiscardHandler``), so a takeover carries their
/// connections.
public enum HvSocketServices {
    /// The echo service's vsock port (the classic echo port).
    public static let echoPort: UInt32 = 7
    /// The discard service's vsock port (the classic discard port).
    public static let discardPort: UInt32 = 9

    /// Serves echo and discard on `host` until its listeners close.
    public static func start(on host: HvSocketHost) {
        host.serve(port: Self.echoPort, HvSocketEchoHandler.self)
        host.serve(port: Self.discardPort, HvSocketDiscardHandler.self)
    }
}
