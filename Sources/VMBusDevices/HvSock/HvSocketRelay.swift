import Foundation
import VMBusMemory
import VMBusWire

/// Why a relay could not start.
public struct HvSocketRelayError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// Hyper-V sockets as Unix sockets in a directory — the "hybrid vsock" convention of
/// Firecracker and Cloud Hypervisor, so existing tools work unchanged:
///
/// - `DIR/vsock` — connect, write `CONNECT <port>\n`, read `OK <local port>\n`, then the socket
///   *is* a stream to the other side's `port` (the local port is this end's vsock port). On
///   failure the relay writes `ERROR <reason>\n` and closes.
/// - `DIR/vsock_<port>` — when the other side connects to `port` and a Unix socket of that
///   name exists, the relay connects to it and joins the two; with no such socket the
///   connection is refused (host side) or left unopened (guest side), as with nobody listening.
///
/// Works on either side: attach ``HvSocketHost``s (one per guest bus) or an ``HvSocketGuest``.
/// Outgoing connections go to the newest attached endpoint that is still connected.
public final class HvSocketRelay: Sendable {
    /// Where the relay's sockets are: `vsock` for clients, `vsock_<port>` for the other side's
    /// connections.
    public let directory: String
    let server: StreamSocket
    let endpoints = Locked<[any HvSocketEndpoint]>([])
    let listeners = Locked<[HvSocketListener]>([])
    let log: @Sendable (String) -> Void
    let connectTimeout: Duration?

    /// The socket clients send `CONNECT <port>` to.
    public var connectPath: String { self.directory + "/vsock" }

    /// The socket the relay connects to for the other side's connections to `port`.
    public func portPath(_ port: UInt32) -> String { self.directory + "/vsock_\(port)" }

    /// Creates `directory` if needed and listens on `directory/vsock`.
    /// - Parameter directory: where the relay's sockets go, created if missing: `vsock` for
    ///   clients, `vsock_<port>` for the other side's connections.
    /// - Parameter connectTimeout: how long a client's `CONNECT` waits for the other side to
    ///   accept; `nil` waits as long as the endpoint does.
    /// - Parameter log: one line per connection and per failure.
    public init(
        directory: String, connectTimeout: Duration? = nil, log: @escaping @Sendable (String) -> Void = { _ in }
    ) throws(HvSocketRelayError) {
        self.directory = directory
        self.log = log
        self.connectTimeout = connectTimeout
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw HvSocketRelayError(description: "cannot create \(directory): \(error.localizedDescription)")
        }
        do {
            self.server = try StreamSocket.listen(.unix(directory + "/vsock"))
        } catch {
            throw HvSocketRelayError(description: "\(error)")
        }
        let server = self.server
        ThreadName.start("hvsock-relay") { [weak self] in
            while let client = try? server.accept() {
                guard let self else { break }
                ThreadName.start("hvsock-relay-client") { self.serve(client) }
            }
        }
    }

    /// Stops: no new connections either way (joined ones run to their end); removes the socket.
    public func stop() {
        self.server.shutdown()
        LocalSocket.removeFile(path: self.connectPath)
        for listener in self.listeners.withLock({ $0 }) { listener.close() }
    }

    /// Serves `endpoint`: its peer's connections reach `vsock_<port>` sockets, and it becomes
    /// the target of `CONNECT` while it is the newest connected one.
    public func attach(_ endpoint: any HvSocketEndpoint) {
        let listener = endpoint.listenAll { [directory] service in
            guard let port = service.vsockPort else { return false }
            return FileManager.default.fileExists(atPath: directory + "/vsock_\(port)")
        }
        self.endpoints.withLock { list in
            list.removeAll { !$0.isConnected }
            list.append(endpoint)
        }
        self.listeners.withLock { $0.append(listener) }
        Task {
            while let stream = try? await listener.accept() {
                let port = stream.service.vsockPort ?? 0
                ThreadName.start("hvsock-relay-in") { self.deliver(stream, port: port) }
            }
            // The endpoint is gone (its listener closed): forget it.
            self.listeners.withLock { list in list.removeAll { $0 === listener } }
            self.endpoints.withLock { list in list.removeAll { $0 === endpoint } }
        }
    }

    /// The other side connected to `port`: join it to `vsock_<port>`.
    func deliver(_ stream: HvSocketStream, port: UInt32) {
        let path = self.portPath(port)
        guard let socket = try? StreamSocket.connect(.unix(path)) else {
            self.log("hvsock relay: nobody accepts on \(path); closing the connection to port \(port)")
            blockingWait { await stream.close() }
            return
        }
        self.log("hvsock relay: connection to port \(port) joined to \(path)")
        HvSocketPump.start(socket, stream)
    }

    /// A client of `vsock`: read its `CONNECT` line, connect, answer, join.
    func serve(_ client: StreamSocket) {
        let port: UInt32
        switch Self.readConnectLine(client) {
        case .success(let value): port = value
        case .failure(let error):
            self.refuse(client, "\(error.description)")
            return
        }
        guard let endpoint = self.endpoints.withLock({ $0.last { $0.isConnected } }) else {
            self.refuse(client, "no connected peer")
            return
        }
        let timeout = self.connectTimeout
        let result = blockingWait { () -> Result<HvSocketStream, HvSocketError> in
            do throws(HvSocketError) { return .success(try await endpoint.connect(port: port, timeout: timeout)) } catch {
                return .failure(error)
            }
        }
        switch result {
        case .success(let stream):
            let local = stream.localPort.map { "\($0)" } ?? "0"
            guard (try? client.write(Array("OK \(local)\n".utf8)[...])) != nil else {
                blockingWait { await stream.close() }
                return
            }
            self.log("hvsock relay: CONNECT \(port) joined")
            HvSocketPump.start(client, stream)
        case .failure(.timedOut):
            // A guest with no listener leaves the offer unopened (Linux does): no refusal
            // comes, so say what the silence most likely means.
            self.refuse(client, "port \(port): no answer in time (nobody listening on that port?)")
        case .failure(let error):
            self.refuse(client, "port \(port): \(error)")
        }
    }

    func refuse(_ client: StreamSocket, _ why: String) {
        self.log("hvsock relay: \(why)")
        try? client.write(Array("ERROR \(why)\n".utf8)[...])
        client.shutdown()
    }

    /// Reads `CONNECT <port>\n` byte by byte, so nothing the client sends after it is taken.
    static func readConnectLine(_ client: StreamSocket) -> Result<UInt32, HvSocketRelayError> {
        var line: [UInt8] = []
        var byte = [UInt8](repeating: 0, count: 1)
        while line.count <= 64 {
            guard let n = try? DescriptorIO.readSome(client.fileDescriptor, into: &byte, count: 1), n == 1 else {
                return .failure(HvSocketRelayError(description: "the client closed before CONNECT"))
            }
            if byte[0] == UInt8(ascii: "\n") { break }
            line.append(byte[0])
        }
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespaces)
        let parts = text.split(separator: " ")
        guard parts.count == 2, parts[0] == "CONNECT", let port = UInt32(parts[1]) else {
            return .failure(HvSocketRelayError(description: "expected 'CONNECT <port>', got '\(text.prefix(64))'"))
        }
        return .success(port)
    }
}

/// Forwards a local listening socket to a port on the other side: every client of `address`
/// gets its own hvsock connection to `port` (e.g. a guest's `tcp:127.0.0.1:8080` to a host
/// service). A connection that fails closes the client.
public final class HvSocketForwarder: Sendable {
    /// The local socket whose clients are forwarded.
    public let address: StreamAddress
    /// The vsock port on the other side each client is connected to.
    public let port: UInt32
    let server: StreamSocket

    /// Listens on `address` now; serves `endpoint`.
    public init(
        listen address: StreamAddress, port: UInt32, endpoint: any HvSocketEndpoint,
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) throws(HvSocketRelayError) {
        self.address = address
        self.port = port
        do {
            self.server = try StreamSocket.listen(address)
        } catch {
            throw HvSocketRelayError(description: "\(error)")
        }
        let server = self.server
        ThreadName.start("hvsock-forward") {
            while let client = try? server.accept() {
                ThreadName.start("hvsock-forward-client") {
                    let result = blockingWait { () -> Result<HvSocketStream, HvSocketError> in
                        do throws(HvSocketError) { return .success(try await endpoint.connect(port: port, timeout: nil)) } catch {
                            return .failure(error)
                        }
                    }
                    switch result {
                    case .success(let stream): HvSocketPump.start(client, stream)
                    case .failure(let error):
                        log("hvsock forward \(address) → port \(port): \(error)")
                        client.shutdown()
                    }
                }
            }
        }
    }

    /// The TCP port listened on (after asking for port 0).
    public var localPort: Int? { self.server.localPort }

    /// Stops accepting (joined connections run to their end).
    public func stop() {
        self.server.shutdown()
        if case .unix(let path) = self.address { LocalSocket.removeFile(path: path) }
    }
}
