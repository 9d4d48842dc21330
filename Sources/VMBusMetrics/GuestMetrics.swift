import VMBusGuest

/// A guest's counters: per open channel (the `in` ring is the one the guest reads), the
/// number of channels, and the host's misbehaviours it survived.
public struct GuestMetrics: MetricsSource {
    let bus: GuestBus
    let label: String

    /// - Parameter label: the value of the channels' `guest` label (`self` in `vmbus guest`).
    public init(bus: GuestBus, label: String = "self") {
        self.bus = bus
        self.label = label
    }

    public func collect(into snapshot: inout MetricsSnapshot) {
        let channels = self.bus.openChannels
        snapshot.add(.guestChannelsOpen, [], UInt64(channels.count))
        for entry in channels {
            let labels = ChannelLabels(
                guest: self.label, relid: entry.relid, classID: entry.offer.interfaceType, instance: entry.offer.interfaceInstance,
                subChannelIndex: entry.offer.subChannelIndex)
            snapshot.addChannel(labels, entry.channel.statistics)
        }
        snapshot.add(.hostMisbehaviours, [], UInt64(self.bus.misbehaviours.count))
    }
}
