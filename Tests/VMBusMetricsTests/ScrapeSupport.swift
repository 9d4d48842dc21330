import Glibc
import VMBusMemory
import VMBusMetrics

/// An HTTP answer as a plain client reads it.
struct HTTPAnswer {
    var status: Int
    var head: String
    var body: String
}

/// Sends `request` bytes to the server over a plain TCP socket and reads until it closes.
func exchange(_ server: MetricsServer, _ request: [UInt8], halfClose: Bool = true) throws -> HTTPAnswer {
    let socket = try StreamSocket.connect(.tcp(host: server.address.host, port: server.address.port))
    try socket.setTimeouts(.seconds(10))
    if !request.isEmpty { try socket.write(request[...]) }
    if halfClose { socket.shutdownWrite() }
    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = try socket.read(into: &buffer)
        if count == 0 { break }
        received += buffer[0..<count]
    }
    let text = String(decoding: received, as: UTF8.self)
    guard let split = text.range(of: "\r\n\r\n") else { return HTTPAnswer(status: 0, head: text, body: "") }
    let head = String(text[..<split.lowerBound])
    let status = head.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
    return HTTPAnswer(status: status, head: head, body: String(text[split.upperBound...]))
}

/// `GET path` as curl would send it.
func get(_ server: MetricsServer, _ path: String = "/metrics") throws -> HTTPAnswer {
    try exchange(server, Array("GET \(path) HTTP/1.1\r\nHost: \(server.address)\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n".utf8))
}

/// The samples of an exposition, `name{labels}` → value (comments skipped).
func samples(_ exposition: String) -> [String: Double] {
    var result: [String: Double] = [:]
    for line in exposition.split(separator: "\n") where !line.hasPrefix("#") {
        guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
        result[String(line[..<space])] = value
    }
    return result
}

/// The value of the one sample of `name` whose labels include every pair in `labels`.
func value(_ exposition: String, _ name: String, _ labels: [String: String]) -> Double? {
    let found = samples(exposition).filter { key, _ in
        guard key == name || key.hasPrefix(name + "{") else { return false }
        return labels.allSatisfy { key.contains("\($0.key)=\"\($0.value)\"") }
    }
    return found.count == 1 ? found.first!.value : nil
}
