/// Where the metrics endpoint listens: `PORT` (on 127.0.0.1) or `ADDR:PORT` (`[v6]:PORT` for
/// IPv6). Only an address given in full may be other than loopback, so a bare port never
/// exposes the counters beyond this machine.
public struct MetricsAddress: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    /// 0 picks a free port (see ``MetricsServer/port``).
    public var port: Int

    public init(host: String = "127.0.0.1", port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `PORT`, `ADDR:PORT` or `[ADDR]:PORT`; `nil` for anything else.
    public init?(_ text: String) {
        if let port = Int(text) {
            guard (0...65535).contains(port) else { return nil }
            self.init(port: port)
            return
        }
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            return nil  // an IPv6 address needs its brackets
        }
        guard !host.isEmpty else { return nil }
        self.init(host: host, port: port)
    }

    /// Whether only this machine can reach the address: 127.0.0.0/8, ::1 or `localhost`.
    public var isLoopback: Bool {
        if self.host == "localhost" || self.host == "::1" { return true }
        let parts = self.host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    public var description: String { self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)" }
}
