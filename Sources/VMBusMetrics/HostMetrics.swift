import VMBusHost

/// The host's counters: per open channel of every connected guest, the number of guests and of
/// open channels, and the guests' protocol violations by kind.
///
/// ```swift
/// let exporter = MetricsExporter(sources: [HostMetrics { [("1", bus)] }])
/// ```
public struct HostMetrics: MetricsSource {
    let buses: @Sendable () -> [(guest: String, bus: HostBus)]

    /// - Parameter buses: the buses to report now, each with the label its guest goes by
    ///   (called at every scrape, so guests that come and go are followed).
    public init(buses: @escaping @Sendable () -> [(guest: String, bus: HostBus)]) {
        self.buses = buses
    }

    public func collect(into snapshot: inout MetricsSnapshot) {
        let buses = self.buses()
        snapshot.add(.guestsConnected, [], UInt64(buses.count))
        for (guest, bus) in buses {
            let channels = bus.openChannels
            snapshot.add(.channelsOpen, [guest], UInt64(channels.count))
            for entry in channels {
                let labels = ChannelLabels(
                    guest: guest, relid: entry.relid, classID: entry.offer.interfaceType, instance: entry.offer.interfaceInstance,
                    subChannelIndex: entry.offer.subChannelIndex)
                snapshot.addChannel(labels, entry.channel.statistics)
            }
            for (kind, count) in bus.violationCounts.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                snapshot.add(.protocolViolations, [guest, kind.rawValue], count)
            }
        }
    }
}
