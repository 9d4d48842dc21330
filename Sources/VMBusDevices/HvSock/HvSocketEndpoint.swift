import VMBusWire

/// One side's Hyper-V sockets — ``HvSocketHost`` on a host bus, ``HvSocketGuest`` on a guest
/// bus — as relays and forwarders use them: connect out, and take the other side's
/// connections.
public protocol HvSocketEndpoint: AnyObject, Sendable {
    /// Connects to the other side's listener on `port` (the side's default timeout when `nil`).
    func connect(port: UInt32, timeout: Duration?) async throws(HvSocketError) -> HvSocketStream
    /// Listens on `port`.
    func listen(port: UInt32) -> HvSocketListener
    /// Takes the other side's connections to every service no ``listen(port:)`` covers and
    /// `filter` accepts (the others are refused or left unopened, as with nobody listening).
    /// One at a time: a second call replaces the first.
    func listenAll(accepting filter: @escaping @Sendable (GUID) -> Bool) -> HvSocketListener
    /// Whether the bus underneath is connected (negotiated, not yet gone).
    var isConnected: Bool { get }
}

/// A catch-all listener and the services it takes.
struct CatchAll: Sendable {
    let listener: HvSocketListener
    let filter: @Sendable (GUID) -> Bool

    /// The listener, if it takes `service`.
    func take(_ service: GUID) -> HvSocketListener? { self.filter(service) ? self.listener : nil }
}
