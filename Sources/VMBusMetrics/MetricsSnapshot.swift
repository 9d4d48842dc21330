/// One value of one series, as a source read it.
public struct MetricSample: Sendable {
    public var family: MetricFamily
    /// Values for ``MetricFamily/labels``, in the same order.
    public var labelValues: [String]
    public var value: UInt64
}

/// What the sources hand over at one scrape: every sample they could read, in order.
public struct MetricsSnapshot: Sendable {
    public private(set) var samples: [MetricSample] = []

    public init() {}

    /// Adds a sample; `labelValues` must match the family's label names one for one (a bug in
    /// the caller otherwise, so it traps).
    public mutating func add(_ family: MetricFamily, _ labelValues: [String], _ value: UInt64) {
        precondition(labelValues.count == family.labels.count, "\(family.name) takes labels \(family.labels)")
        self.samples.append(MetricSample(family: family, labelValues: labelValues, value: value))
    }

    /// The value of one series, if a source gave it (tests, tools).
    public func value(_ family: MetricFamily, _ labelValues: [String]) -> UInt64? {
        self.samples.last { $0.family == family && $0.labelValues == labelValues }?.value
    }
}

/// Something whose counters appear at the metrics endpoint. ``collect(into:)`` runs at scrape
/// time, on the endpoint's thread: it reads counters that the data path keeps anyway (the
/// channels' and devices' statistics) and must not block for long.
public protocol MetricsSource: Sendable {
    func collect(into snapshot: inout MetricsSnapshot)
}

/// A source made of a closure.
public struct ClosureMetricsSource: MetricsSource {
    let body: @Sendable (inout MetricsSnapshot) -> Void
    public init(_ body: @escaping @Sendable (inout MetricsSnapshot) -> Void) { self.body = body }
    public func collect(into snapshot: inout MetricsSnapshot) { self.body(&snapshot) }
}
