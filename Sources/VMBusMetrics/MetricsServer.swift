import Foundation
import Glibc
import VMBusMemory

/// A minimal HTTP/1.1 endpoint serving ``MetricsExporter/scrape()`` at `GET /metrics` in the
/// Prometheus text format (`text/plain; version=0.0.4`), over plain TCP.
///
/// ```swift
/// let server = try MetricsServer(exporter: exporter, address: MetricsAddress(port: 9464))
/// server.start()
/// // curl http://127.0.0.1:9464/metrics
/// server.stop()
/// ```
///
/// Made for a scraper on the same machine, and safe against one that misbehaves: each
/// connection gets its own thread, at most ``Configuration/maximumConnections`` at once (more
/// are answered 503 without waiting); a request head larger than
/// ``Configuration/maximumRequestBytes`` is refused with 431; a client that sends or reads
/// too slowly is cut off after ``Configuration/timeout``. Any other path is 404, any method
/// but GET and HEAD 405. Every answer closes its connection. None of this touches the bus:
/// the host's data path never waits for the endpoint.
public final class MetricsServer: Sendable {
    public struct Configuration: Sendable {
        /// The most bytes of request head (request line and headers) read from a client.
        public var maximumRequestBytes: Int
        /// How long a client has to send its request, and to take each piece of the answer.
        public var timeout: Duration
        /// Connections served at once.
        public var maximumConnections: Int
        /// One line per listener failure.
        public var log: @Sendable (String) -> Void

        public init(
            maximumRequestBytes: Int = 8192, timeout: Duration = .seconds(5), maximumConnections: Int = 8,
            log: @escaping @Sendable (String) -> Void = { _ in }
        ) {
            self.maximumRequestBytes = maximumRequestBytes
            self.timeout = timeout
            self.maximumConnections = maximumConnections
            self.log = log
        }
    }

    private struct State {
        var clients: [ObjectIdentifier: StreamSocket] = [:]
        var started = false
        var stopped = false
    }

    public let exporter: MetricsExporter
    public let configuration: Configuration
    /// The address listened at, with the port the system chose for port 0.
    public let address: MetricsAddress
    private let listener: StreamSocket
    private let state = Locked(State())

    /// Listens at `address` (connections wait in the backlog until ``start()``).
    /// - Throws: ``MetricsServerError/listen(_:_:)`` when the socket cannot be made (the port
    ///   is taken, the address is not this machine's).
    public init(exporter: MetricsExporter, address: MetricsAddress, configuration: Configuration = Configuration())
        throws(MetricsServerError)
    {
        self.exporter = exporter
        self.configuration = configuration
        do {
            self.listener = try StreamSocket.listen(.tcp(host: address.host, port: address.port), backlog: 16)
        } catch {
            throw MetricsServerError.listen(address, error)
        }
        self.address = MetricsAddress(host: address.host, port: self.listener.localPort ?? address.port)
    }

    /// The URL a scraper reads.
    public var url: String { "http://\(self.address)/metrics" }

    /// Starts answering, on a thread of its own.
    public func start() {
        guard self.state.withLock({ state in
            defer { state.started = true }
            return !state.started && !state.stopped
        }) else { return }
        ThreadName.start("metrics-accept") { [self] in self.acceptLoop() }
    }

    /// Stops listening and cuts off the clients being served.
    public func stop() {
        let clients = self.state.withLock { state in
            state.stopped = true
            return Array(state.clients.values)
        }
        self.listener.shutdown()
        for client in clients { client.shutdown() }
    }

    private func acceptLoop() {
        let pause = WakeSignal()
        while true {
            let client: StreamSocket
            do {
                client = try self.listener.accept()
            } catch {
                // After stop() accept fails for good; anything else (out of descriptors) passes.
                if self.state.withLock({ $0.stopped }) { return }
                self.configuration.log("metrics: accept on \(self.address) failed: \(error)")
                pause.wait(timeout: .milliseconds(100))
                continue
            }
            let admitted = self.state.withLock { state in
                guard !state.stopped, state.clients.count < self.configuration.maximumConnections else { return false }
                state.clients[ObjectIdentifier(client)] = client
                return true
            }
            guard admitted else {
                // Never blocks: a client that does not read loses this answer, nothing more.
                self.exporter.refused("busy")
                client.sendIfRoom(Self.response(503, "Service Unavailable", body: Array("too many connections\n".utf8))[...])
                continue
            }
            ThreadName.start("metrics-client") { [self] in
                self.serve(client)
                _ = self.state.withLock { $0.clients.removeValue(forKey: ObjectIdentifier(client)) }
            }
        }
    }

    /// Reads one request from `client` and answers it.
    private func serve(_ client: StreamSocket) {
        do { try client.setTimeouts(self.configuration.timeout) } catch { return }
        let deadline = ContinuousClock.now + self.configuration.timeout
        let limit = self.configuration.maximumRequestBytes
        var buffer = [UInt8](repeating: 0, count: limit)
        var filled = 0
        while true {
            switch HTTPRequestHead.parse(buffer[0..<filled]) {
            case .complete(let head):
                self.answer(head, client)
                return
            case .malformed:
                self.refuse(client, 400, "Bad Request", reason: "malformed")
                return
            case .incomplete:
                if filled == limit {
                    self.refuse(client, 431, "Request Header Fields Too Large", reason: "too_large")
                    return
                }
                // A client dribbling a byte at a time gets no more than the deadline in all.
                if ContinuousClock.now >= deadline {
                    self.refuse(client, 408, "Request Timeout", reason: "timeout")
                    return
                }
                let count: Int
                do {
                    count = try client.read(into: &buffer, at: filled, count: limit - filled)
                } catch {
                    if case .system(_, let code) = error, code == EAGAIN || code == EWOULDBLOCK {
                        self.refuse(client, 408, "Request Timeout", reason: "timeout")
                    }
                    return
                }
                // The client left before finishing its request: nobody to answer.
                if count == 0 { return }
                filled += count
            }
        }
    }

    private func answer(_ head: HTTPRequestHead, _ client: StreamSocket) {
        guard head.method == "GET" || head.method == "HEAD" else {
            self.refuse(client, 405, "Method Not Allowed", reason: "bad_method", extraHeaders: "Allow: GET, HEAD\r\n")
            return
        }
        guard head.path == "/metrics" else {
            self.refuse(client, 404, "Not Found", reason: "not_found")
            return
        }
        let body = self.exporter.scrape()
        let response = Self.response(200, "OK", contentType: "text/plain; version=0.0.4; charset=utf-8", body: body, omitBody: head.method == "HEAD")
        try? client.write(response[...])
        Self.finish(client)
    }

    private func refuse(_ client: StreamSocket, _ status: Int, _ text: String, reason: String, extraHeaders: String = "") {
        self.exporter.refused(reason)
        try? client.write(Self.response(status, text, body: Array("\(status) \(text)\n".utf8), extraHeaders: extraHeaders)[...])
        Self.finish(client)
    }

    /// Ends the answer: a half-close, then what the client still sends is read and dropped
    /// (up to 64 KiB, within the timeout) until it closes. Closing on unread bytes would
    /// reset the connection, and the client could lose the answer with it.
    private static func finish(_ client: StreamSocket) {
        client.shutdownWrite()
        var scratch = [UInt8](repeating: 0, count: 4096)
        var drained = 0
        while drained < 64 << 10, let count = try? client.read(into: &scratch), count > 0 { drained += count }
    }

    static func response(
        _ status: Int, _ text: String, contentType: String = "text/plain; charset=utf-8", body: [UInt8], omitBody: Bool = false,
        extraHeaders: String = ""
    ) -> [UInt8] {
        let head = "HTTP/1.1 \(status) \(text)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n"
            + extraHeaders + "Connection: close\r\n\r\n"
        return Array(head.utf8) + (omitBody ? [] : body)
    }
}

/// Why a ``MetricsServer`` could not start.
public enum MetricsServerError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The listening socket could not be made.
    case listen(MetricsAddress, MemoryError)

    public var description: String {
        switch self {
        case .listen(let address, let error): return "cannot listen at \(address): \(error)"
        }
    }
}
