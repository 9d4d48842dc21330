import Prometheus
import VMBusMemory

/// Turns the sources' snapshots into the Prometheus text format, through a
/// `PrometheusCollectorRegistry` (swift-prometheus).
///
/// Pull, not push: the data path keeps its counters as it always has (``ChannelStatistics``,
/// the devices' statistics), and nothing here runs until a scrape. Each ``scrape()`` reads
/// every source, brings the registry's series up to the values read (a counter grows by the
/// difference since the last scrape; a series that went back below its last value, a channel
/// closed and opened again, restarts from the new value, which Prometheus reads as a counter
/// reset), drops the series no source reported (closed channels, gone guests) and renders the
/// registry.
///
/// The registry is also a swift-metrics backend: bootstrap `MetricsSystem` with ``factory``
/// and whatever the program records through swift-metrics is served at the same endpoint.
public final class MetricsExporter: Sendable {
    private struct SeriesKey: Hashable {
        var name: String
        var labelValues: [String]
    }

    private enum Series {
        case counter(Counter, last: UInt64)
        case gauge(Gauge)
    }

    private struct State {
        var series: [SeriesKey: Series] = [:]
        var scrapes: UInt64 = 0
        var refused: [String: UInt64] = [:]
    }

    /// Where the series live; share it to serve other metrics beside these.
    public let registry: PrometheusCollectorRegistry
    let sources: [any MetricsSource]
    /// Serialises scrapes: one brings the series up to date and renders them while no other
    /// changes them.
    private let state = Locked(State())

    public init(sources: [any MetricsSource], registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.sources = sources
        self.registry = registry
    }

    /// A swift-metrics factory recording into ``registry``.
    public var factory: PrometheusMetricsFactory { PrometheusMetricsFactory(registry: self.registry) }

    /// What every source reports now.
    public func collect() -> MetricsSnapshot {
        var snapshot = MetricsSnapshot()
        for source in self.sources { source.collect(into: &snapshot) }
        return snapshot
    }

    /// Reads every source and renders the registry: the body of a `GET /metrics` answer.
    public func scrape() -> [UInt8] {
        // Collected under the lock too: two scrapes that read in one order and applied in the
        // other would take the older values for a counter reset.
        return self.state.withLock { state in
            var snapshot = self.collect()
            state.scrapes += 1
            snapshot.add(.scrapes, [], state.scrapes)
            for (reason, count) in state.refused.sorted(by: { $0.key < $1.key }) { snapshot.add(.badRequests, [reason], count) }
            self.update(&state, with: snapshot)
            return self.registry.emitToBuffer()
        }
    }

    /// Counts a request the endpoint refused (shown at the next scrape).
    func refused(_ reason: String) {
        self.state.withLock { $0.refused[reason, default: 0] += 1 }
    }

    private func update(_ state: inout State, with snapshot: MetricsSnapshot) {
        var seen = Set<SeriesKey>()
        for sample in snapshot.samples {
            let key = SeriesKey(name: sample.family.name, labelValues: sample.labelValues)
            // A source reporting the same series twice: the first value stands.
            guard seen.insert(key).inserted else { continue }
            switch (sample.family.kind, state.series[key]) {
            case (.counter, .counter(let counter, let last)?):
                if sample.value >= last {
                    counter.increment(by: Int64(clamping: sample.value - last))
                } else {
                    counter.reset()
                    counter.increment(by: Int64(clamping: sample.value))
                }
                state.series[key] = .counter(counter, last: sample.value)
            case (.counter, _):
                let counter = self.registry.makeCounter(descriptor: Self.descriptor(sample.family), labels: Self.labels(sample))
                counter.increment(by: Int64(clamping: sample.value))
                state.series[key] = .counter(counter, last: sample.value)
            case (.gauge, .gauge(let gauge)?):
                gauge.set(Double(sample.value))
            case (.gauge, _):
                let gauge = self.registry.makeGauge(descriptor: Self.descriptor(sample.family), labels: Self.labels(sample))
                gauge.set(Double(sample.value))
                state.series[key] = .gauge(gauge)
            }
        }
        for (key, series) in state.series where !seen.contains(key) {
            switch series {
            case .counter(let counter, _): self.registry.unregisterCounter(counter)
            case .gauge(let gauge): self.registry.unregisterGauge(gauge)
            }
            state.series[key] = nil
        }
    }

    private static func descriptor(_ family: MetricFamily) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: family.name, unitName: "", helpText: family.help)
    }

    private static func labels(_ sample: MetricSample) -> [(String, String)] {
        Array(zip(sample.family.labels, sample.labelValues))
    }
}
