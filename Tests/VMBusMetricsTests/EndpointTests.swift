import Testing
import VMBusChannel
import VMBusDevices
import VMBusGuest
import VMBusHost
import VMBusLoopback
import VMBusMemory
import VMBusMetrics
import VMBusWire

/// The endpoint scraped by a plain HTTP client, over a bus carrying echo traffic.
@Suite struct EndpointTests {
    /// A loopback bus with one echo device, and an endpoint serving its host's counters.
    static func echoEndpoint(
        configuration: MetricsServer.Configuration = MetricsServer.Configuration()
    ) throws -> (LoopbackBus, EchoClient, MetricsServer) {
        let bus = try LoopbackBus()
        let device = EchoDevice(instance: GUID(data1: 0xE0, data2: 0x5EED, data3: 0, data4: 0), maximumSubChannels: 0)
        device.attach(to: bus.host)
        bus.host.register(device)
        let client = EchoClient(pages: RingPages(each: 4))
        bus.guest.register(client)
        let host = bus.host
        let exporter = MetricsExporter(sources: [HostMetrics { [("1", host)] }])
        let server = try MetricsServer(exporter: exporter, address: MetricsAddress(port: 0), configuration: configuration)
        server.start()
        return (bus, client, server)
    }

    @Test func echoTrafficShowsAndGrowsInTheScrape() async throws {
        let (bus, client, server) = try Self.echoEndpoint()
        defer { server.stop() }
        #expect(server.address.isLoopback && server.address.port != 0)
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        let relid = try #require(client.devices.first?.relid)
        for round in 0..<20 { _ = try await client.echo([UInt8](repeating: UInt8(round), count: 100), device: relid) }

        // A channel's reader publishes its counters once per batch: the last answer can reach
        // the guest a moment before the batch that read its request is published.
        let echo = ["guest": "1", "relid": "\(relid)", "class": "echo"]
        var first = try get(server)
        #expect(await pollUntil(timeout: .seconds(10)) {
            first = (try? get(server)) ?? first
            return (value(first.body, "vmbus_channel_packets_total", echo.merging(["direction": "in"]) { $1 }) ?? 0) >= 20
        })
        #expect(first.status == 200, "\(first.head)")
        #expect(first.head.contains("Content-Type: text/plain; version=0.0.4"))
        let inbound = try #require(value(first.body, "vmbus_channel_packets_total", echo.merging(["direction": "in"]) { $1 }), "\(first.body)")
        let outbound = try #require(value(first.body, "vmbus_channel_packets_total", echo.merging(["direction": "out"]) { $1 }))
        // The host read the 20 requests and wrote the 20 answers.
        #expect(inbound >= 20 && outbound >= 20, "\(first.body)")
        #expect((value(first.body, "vmbus_channel_bytes_total", echo.merging(["direction": "in"]) { $1 }) ?? 0) >= 20 * 100)
        #expect(value(first.body, "vmbus_host_guests", [:]) == 1)
        #expect(value(first.body, "vmbus_host_channels_open", ["guest": "1"]) == 1)

        for round in 0..<30 { _ = try await client.echo([UInt8](repeating: UInt8(round), count: 100), device: relid) }
        var second = try get(server)
        #expect(await pollUntil(timeout: .seconds(10)) {
            second = (try? get(server)) ?? second
            return (value(second.body, "vmbus_channel_packets_total", echo.merging(["direction": "in"]) { $1 }) ?? 0) >= inbound + 30
        }, "\(second.body)")
        let scrapes = try #require(value(second.body, "vmbus_metrics_scrapes_total", [:]))
        #expect(scrapes >= 3)
        #expect(bus.host.violations.isEmpty)
    }

    @Test func badRequestsAreRefusedAndTheServerGoesOn() throws {
        let (_, _, server) = try Self.echoEndpoint(
            configuration: MetricsServer.Configuration(maximumRequestBytes: 1024, timeout: .milliseconds(300)))
        defer { server.stop() }
        #expect(try get(server, "/").status == 404)
        #expect(try get(server, "/metrics/../etc").status == 404)
        #expect(try exchange(server, Array("POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc".utf8)).status == 405)
        #expect(try exchange(server, Array("\u{16}\u{03}\u{01} not http\r\n\r\n".utf8)).status == 400)
        // A head that never ends within the limit.
        let huge = "GET /metrics HTTP/1.1\r\nX-Filler: " + String(repeating: "a", count: 4000) + "\r\n\r\n"
        #expect(try exchange(server, Array(huge.utf8)).status == 431)
        // A client that connects and sends nothing is cut off after the timeout.
        #expect(try exchange(server, [], halfClose: false).status == 408)
        // One that stops half-way through its head, too.
        #expect(try exchange(server, Array("GET /metr".utf8), halfClose: false).status == 408)

        let after = try get(server)
        #expect(after.status == 200)
        for reason in ["not_found", "bad_method", "malformed", "too_large"] {
            #expect((value(after.body, "vmbus_metrics_bad_requests_total", ["reason": reason]) ?? 0) >= 1, "\(reason): \(after.body)")
        }
        #expect(value(after.body, "vmbus_metrics_bad_requests_total", ["reason": "timeout"]) == 2)
        #expect(value(after.body, "vmbus_metrics_bad_requests_total", ["reason": "not_found"]) == 2)
    }

    /// A client that holds its connection open does not keep others from being answered.
    @Test func aStalledClientDoesNotBlockAScrape() throws {
        let (_, _, server) = try Self.echoEndpoint(configuration: MetricsServer.Configuration(timeout: .seconds(30)))
        defer { server.stop() }
        let stalled = try StreamSocket.connect(.tcp(host: server.address.host, port: server.address.port))
        try stalled.write(Array("GET /metrics HTTP/1.1\r\n".utf8)[...])
        let answer = try get(server)
        #expect(answer.status == 200)
        withExtendedLifetime(stalled) {}
    }
}

/// The guests' mistakes, counted by kind.
@Suite struct ViolationMetricsTests {
    @Test func aCorruptRingAndAMalformedMessageAreCountedByKind() async throws {
        let bus = try LoopbackBus()
        for n in 0..<2 {
            let device = EchoDevice(instance: GUID(data1: 0xE0 + UInt32(n), data2: 0x5EED, data3: 0, data4: 0), maximumSubChannels: 0)
            device.attach(to: bus.host)
            bus.host.register(device)
        }
        let client = EchoClient(pages: RingPages(each: 4))
        bus.guest.register(client)
        let host = bus.host
        let exporter = MetricsExporter(sources: [HostMetrics { [("1", host)] }])
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        let relid = try #require(client.devices.first?.relid)
        let before = exporter.collect()
        #expect(before.value(.channelsOpen, ["1"]) == 2)
        #expect(!before.samples.contains { $0.family == .protocolViolations })

        // The guest writes an impossible write index into the ring the host reads.
        let ring = try #require(bus.guest.ringLocation(relid))
        try bus.memory.memory.storeUInt32(0xFFFF_FFF0, at: ring.outgoingControl + RingControlPage.writeIndexOffset)
        bus.host.channel(relid)?.interrupt()
        #expect(await pollUntil(timeout: .seconds(10)) { bus.host.violationCounts[ProtocolViolation.Kind(rawValue: "ring_invalid_index")] == 1 })
        // And a message that does not decode.
        bus.host.receive([0xFF, 0xFF, 0xFF, 0x7F][...])
        let text = String(decoding: exporter.scrape(), as: UTF8.self)
        #expect(text.contains(#"vmbus_host_protocol_violations_total{guest="1",kind="ring_invalid_index"} 1"#), "\(text)")
        #expect(text.contains(#"vmbus_host_protocol_violations_total{guest="1",kind="malformed_message"} 1"#), "\(text)")
    }
}
