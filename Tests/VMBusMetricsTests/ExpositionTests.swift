import Testing
import VMBusChannel
import VMBusHost
import VMBusMemory
import VMBusWire
@testable import VMBusMetrics

/// The text a scrape renders for known statistics.
@Suite struct ExpositionTests {
    static let labels = ChannelLabels(
        guest: "3", relid: 7, classID: DeviceClass.scsi.classID, instance: GUID(data1: 0xAB, data2: 1, data3: 2, data4: 3),
        subChannelIndex: 1)

    static func statistics(_ scale: UInt64) -> ChannelStatistics {
        var stats = ChannelStatistics()
        stats.incoming.packets = 10 * scale
        stats.incoming.bytes = 640 * scale
        stats.incoming.interrupts = 4 * scale
        stats.incoming.intrInFull = 1 * scale
        stats.outgoing.packets = 9 * scale
        stats.outgoing.bytes = 576 * scale
        stats.outgoing.events = 3 * scale
        stats.outgoing.outFullTotal = 5 * scale
        stats.outgoing.outFullFirst = 2 * scale
        stats.outgoing.intrOutEmpty = 6 * scale
        stats.blockedSends = 7 * scale
        stats.rejectedCompletions = 8 * scale
        stats.completedRequests = 11 * scale
        return stats
    }

    @Test func aChannelsCountersRenderWithHelpTypeAndLabels() throws {
        let current = Locked<ChannelStatistics?>(Self.statistics(1))
        let exporter = MetricsExporter(sources: [
            ClosureMetricsSource { snapshot in
                if let stats = current.load() { snapshot.addChannel(Self.labels, stats) }
            }
        ])
        let text = String(decoding: exporter.scrape(), as: UTF8.self)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.contains("# HELP vmbus_channel_packets_total Packets written to (out) or read from (in) the channel's rings."))
        #expect(lines.contains("# TYPE vmbus_channel_packets_total counter"))
        #expect(lines.contains("# TYPE vmbus_channel_blocked_sends_total counter"))
        let series = #"guest="3",relid="7",class="scsi",instance=""# + "\(Self.labels.instance)" + #"",subchannel="1""#
        #expect(lines.contains("vmbus_channel_packets_total{\(series),direction=\"in\"} 10"), "\(text)")
        #expect(lines.contains("vmbus_channel_packets_total{\(series),direction=\"out\"} 9"))
        #expect(lines.contains("vmbus_channel_bytes_total{\(series),direction=\"in\"} 640"))
        #expect(lines.contains("vmbus_channel_interrupts_total{\(series),direction=\"in\"} 4"))
        #expect(lines.contains("vmbus_channel_signals_total{\(series),direction=\"out\"} 3"))
        #expect(lines.contains("vmbus_channel_ring_full_total{\(series)} 5"))
        #expect(lines.contains("vmbus_channel_ring_full_episodes_total{\(series)} 2"))
        #expect(lines.contains("vmbus_channel_intr_out_empty_total{\(series)} 6"))
        #expect(lines.contains("vmbus_channel_intr_in_full_total{\(series)} 1"))
        #expect(lines.contains("vmbus_channel_blocked_sends_total{\(series)} 7"))
        #expect(lines.contains("vmbus_channel_rejected_completions_total{\(series)} 8"))
        #expect(lines.contains("vmbus_channel_completed_requests_total{\(series)} 11"))
        #expect(lines.contains("vmbus_metrics_scrapes_total 1"))

        // The next scrape follows the statistics up.
        current.store(Self.statistics(3))
        let later = String(decoding: exporter.scrape(), as: UTF8.self)
        #expect(later.contains("vmbus_channel_packets_total{\(series),direction=\"in\"} 30\n"), "\(later)")
        #expect(later.contains("vmbus_channel_completed_requests_total{\(series)} 33\n"))

        // A channel opened again under the same labels starts from its own counts.
        current.store(Self.statistics(2))
        let reopened = String(decoding: exporter.scrape(), as: UTF8.self)
        #expect(reopened.contains("vmbus_channel_packets_total{\(series),direction=\"in\"} 20\n"), "\(reopened)")

        // A closed channel's series go.
        current.store(nil)
        let closed = String(decoding: exporter.scrape(), as: UTF8.self)
        #expect(!closed.contains("vmbus_channel_"), "\(closed)")
        #expect(closed.contains("vmbus_metrics_scrapes_total 4\n"))
    }

    @Test func violationKindsNameTheRingError() {
        #expect(ProtocolViolation.Kind(ringError: .truncatedDescriptor(available: 3)).rawValue == "ring_truncated_descriptor")
        #expect(ProtocolViolation.Kind(ringError: .packetTooLarge(length: 9, limit: 8)).rawValue == "ring_packet_too_large")
    }

    @Test func addressesDefaultToLoopback() throws {
        let bare = try #require(MetricsAddress("9464"))
        #expect(bare.host == "127.0.0.1" && bare.port == 9464 && bare.isLoopback)
        #expect(MetricsAddress("0.0.0.0:9464")?.isLoopback == false)
        #expect(MetricsAddress("[::1]:80")?.host == "::1" && MetricsAddress("[::1]:80")?.isLoopback == true)
        #expect(MetricsAddress("localhost:1")?.isLoopback == true)
        #expect(MetricsAddress("::1:80") == nil)
        #expect(MetricsAddress("70000") == nil)
        #expect(MetricsAddress(":80") == nil)
        #expect(MetricsAddress("127.0.0.1") == nil)
    }

    @Test func requestHeadsParse() {
        func parse(_ text: String) -> HTTPRequestHead.Parse { HTTPRequestHead.parse(Array(text.utf8)[...]) }
        #expect(parse("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n") == .complete(HTTPRequestHead(method: "GET", path: "/metrics")))
        #expect(parse("GET /metrics HTTP/1.0\n\n") == .complete(HTTPRequestHead(method: "GET", path: "/metrics")))
        #expect(parse("GET /metrics HTTP/1.1\r\nHost: a\r\n") == .incomplete)
        #expect(parse("GET /met") == .incomplete)
        #expect(parse("\u{16}\u{03}\u{01}\u{02}\n") == .malformed)
        #expect(parse("GET metrics HTTP/1.1\r\n\r\n") == .malformed)
        #expect(parse("get /metrics HTTP/1.1\r\n\r\n") == .malformed)
        #expect(parse("GET /metrics SPDY/3\r\n\r\n") == .malformed)
    }
}
