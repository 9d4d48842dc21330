import Foundation
import Testing
import VMBusMemory

/// `vmbus host --metrics` and `vmbus guest --metrics`: the endpoints of real processes,
/// scraped while the guest runs echo traffic.
@Suite(.serialized) struct MetricsProcessTests {
    /// `GET /metrics` over a plain socket: the status line and the body.
    static func scrape(_ port: Int, path: String = "/metrics") throws -> (status: String, body: String) {
        let socket = try StreamSocket.connect(.tcp(host: "127.0.0.1", port: port))
        try socket.setTimeouts(.seconds(10))
        try socket.write(Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)[...])
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = try socket.read(into: &buffer)
            if count == 0 { break }
            received += buffer[0..<count]
        }
        let text = String(decoding: received, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        return (parts[0].components(separatedBy: "\r\n")[0], parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    /// The sum of every sample of `name` whose line holds all of `fragments`.
    static func total(_ body: String, _ name: String, _ fragments: [String]) -> Double {
        body.split(separator: "\n").filter { line in
            line.hasPrefix(name + "{") && fragments.allSatisfy { line.contains($0) }
        }.compactMap { line in line.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
    }

    /// Scrapes until the echo channels' packet count passes `above` (20 s at most); the last count.
    static func packets(_ port: Int, _ fragments: [String], above: Double) async throws -> Double {
        var count = 0.0
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            count = try await offThePool { Self.total(try Self.scrape(port).body, "vmbus_channel_packets_total", fragments) }
            if count > above { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        return count
    }

    @Test func aRunningHostsEchoCountersAreScrapedAndGrow() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-metrics-\(UInt32.random(in: 0...UInt32.max)).sock").path
        let host = try Spawned(["host", "--listen", path, "--device", "echo", "--metrics", "0", "--log-level", "warning"])
        #expect(await host.line() == "vmbus host: admin socket \(path).admin")
        let announced = try #require(await host.line())
        let prefix = "vmbus host: metrics http://127.0.0.1:"
        #expect(announced.hasPrefix(prefix) && announced.hasSuffix("/metrics"), "\(announced)")
        let port = try #require(Int(announced.dropFirst(prefix.count).dropLast("/metrics".count)))
        #expect(await host.line() == "vmbus host: listening on \(path)")

        let idle = try await offThePool { try Self.scrape(port) }
        #expect(idle.status == "HTTP/1.1 200 OK")
        #expect(idle.body.contains("# TYPE vmbus_host_guests gauge\nvmbus_host_guests 0.0\n"), "\(idle.body)")

        let guest = try Spawned(["guest", "--connect", path, "--traffic", "--traffic-rate", "500", "--memory", "32M", "--metrics", "0"])
        #expect(await guest.line()?.hasPrefix("guest: connected") == true)
        let guestLine = try #require(await guest.line())
        let guestPrefix = "guest: metrics http://127.0.0.1:"
        #expect(guestLine.hasPrefix(guestPrefix), "\(guestLine)")
        let guestPort = try #require(Int(guestLine.dropFirst(guestPrefix.count).dropLast("/metrics".count)))
        let echo = ["guest=\"1\"", "class=\"echo\"", "direction=\"in\""]
        let first = try await Self.packets(port, echo, above: 0)
        let later = try await Self.packets(port, echo, above: first)
        #expect(first > 0 && later > first, "packets in: \(first) then \(later)")
        let body = try await offThePool { try Self.scrape(port).body }
        #expect(Self.total(body, "vmbus_channel_bytes_total", ["guest=\"1\"", "class=\"echo\"", "direction=\"out\""]) > 0)
        #expect(body.contains("vmbus_host_guests 1.0\n"))
        #expect(try await offThePool { try Self.scrape(port, path: "/nothing").status } == "HTTP/1.1 404 Not Found")
        // The guest's own endpoint: the same channel from its side.
        let sent = try await Self.packets(guestPort, ["guest=\"self\"", "class=\"echo\"", "direction=\"out\""], above: 0)
        #expect(sent > 0)
        #expect(try await offThePool { try Self.scrape(guestPort).body }.contains("vmbus_guest_channels_open 1.0\n"))

        // A real client, where the machine has one.
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/curl") {
            let curl = try Spawned(["-sS", "-f", "http://127.0.0.1:\(port)/metrics"], executable: URL(fileURLWithPath: "/usr/bin/curl"))
            let (status, output, errors) = await curl.finish()
            #expect(status == 0 && output.contains("# HELP vmbus_channel_packets_total"), "\(errors)")
        }

        guest.kill(SIGTERM)
        #expect(await guest.finish().status == 0)
        host.kill(SIGTERM)
        #expect(await host.finish().status == 0)
    }

    @Test func aBadAddressIsRefused() async throws {
        let result = try await Spawned(["host", "--listen", "/tmp/unused.sock", "--metrics", "localhost"]).finish()
        #expect(result.status != 0 && result.errors.contains("--metrics takes PORT, ADDR:PORT or [IPv6]:PORT"), "\(result.errors)")
    }
}
