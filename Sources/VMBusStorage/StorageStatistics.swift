/// Request latencies in power-of-two buckets of nanoseconds: constant space, one add per
/// request, percentiles good to a factor of two (what `vmbus disk stat` shows).
public struct LatencyHistogram: Hashable, Sendable {
    /// Bucket i counts latencies in [2^i, 2^(i+1)) ns (bucket 0 also 0 ns).
    public private(set) var buckets = [UInt64](repeating: 0, count: 40)
    public private(set) var count: UInt64 = 0

    public init() {}

    public mutating func record(nanoseconds: UInt64) {
        let index = nanoseconds == 0 ? 0 : min(63 - nanoseconds.leadingZeroBitCount, self.buckets.count - 1)
        self.buckets[index] += 1
        self.count += 1
    }

    /// Nanoseconds from `start` to now: what ``record(nanoseconds:)`` takes.
    public static func nanoseconds(since start: ContinuousClock.Instant) -> UInt64 {
        let (seconds, attoseconds) = (ContinuousClock.now - start).components
        return UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
    }

    public mutating func merge(_ other: LatencyHistogram) {
        for index in self.buckets.indices { self.buckets[index] += other.buckets[index] }
        self.count += other.count
    }

    /// The upper bound of the bucket holding the `fraction` quantile (0.5: the median), in
    /// nanoseconds; `nil` with no samples.
    public func percentile(_ fraction: Double) -> UInt64? {
        guard self.count > 0 else { return nil }
        let rank = UInt64((Double(self.count) * min(max(fraction, 0), 1)).rounded(.up))
        var seen: UInt64 = 0
        for (index, bucket) in self.buckets.enumerated() {
            seen += bucket
            if seen >= max(rank, 1) { return UInt64(1) << UInt64(index + 1) }
        }
        return UInt64(1) << UInt64(self.buckets.count)
    }
}

/// One storage queue's (channel's) counters, host or guest side.
public struct StorageQueueStatistics: Hashable, Sendable {
    /// SCSI commands completed (every EXECUTE_SRB).
    public var requests: UInt64 = 0
    public var reads: UInt64 = 0
    public var writes: UInt64 = 0
    public var bytesRead: UInt64 = 0
    public var bytesWritten: UInt64 = 0
    public var flushes: UInt64 = 0
    public var discards: UInt64 = 0
    /// Commands that completed with a failure (CHECK CONDITION, an SRB error).
    public var failed: UInt64 = 0
    /// Packets refused as breaking the protocol (10 §8).
    public var malformed: UInt64 = 0
    /// Why the channel was last stopped, if it was.
    public var lastFault: String?
    /// From a request's arrival to its completion's send (host), or its send to its
    /// completion (guest).
    public var latency = LatencyHistogram()

    public init() {}

    public mutating func merge(_ other: StorageQueueStatistics) {
        self.requests += other.requests
        self.reads += other.reads
        self.writes += other.writes
        self.bytesRead += other.bytesRead
        self.bytesWritten += other.bytesWritten
        self.flushes += other.flushes
        self.discards += other.discards
        self.failed += other.failed
        self.malformed += other.malformed
        self.lastFault = other.lastFault ?? self.lastFault
        self.latency.merge(other.latency)
    }
}
