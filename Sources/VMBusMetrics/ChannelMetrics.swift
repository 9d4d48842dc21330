import VMBusChannel
import VMBusDevices
import VMBusWire

/// How a channel is named in labels.
public struct ChannelLabels: Hashable, Sendable {
    public var guest: String
    public var relid: UInt32
    public var classID: GUID
    public var instance: GUID
    public var subChannelIndex: UInt16

    public init(guest: String, relid: UInt32, classID: GUID, instance: GUID, subChannelIndex: UInt16) {
        self.guest = guest
        self.relid = relid
        self.classID = classID
        self.instance = instance
        self.subChannelIndex = subChannelIndex
    }

    /// The values of the channel labels, in ``MetricFamily`` order.
    var values: [String] {
        [self.guest, "\(self.relid)", Self.className(self.classID), "\(self.instance)", "\(self.subChannelIndex)"]
    }

    /// A well-known class by its short name (`scsi`, `network`, `heartbeat`, …), this
    /// project's test devices by theirs, anything else by its GUID.
    public static func className(_ classID: GUID) -> String {
        if let known = DeviceClass.lookup(classID) { return known.name }
        if classID == Echo.classID { return "echo" }
        if classID == Discard.classID { return "discard" }
        return "\(classID)"
    }
}

extension MetricsSnapshot {
    /// Adds every counter of one channel. Reading ``Channel/statistics`` takes the channel's
    /// lock once; its reader publishes its counters once per batch, so none of this costs
    /// anything per packet.
    public mutating func addChannel(_ labels: ChannelLabels, _ statistics: ChannelStatistics) {
        let base = labels.values
        for (direction, ring) in [("in", statistics.incoming), ("out", statistics.outgoing)] {
            self.add(.channelPackets, base + [direction], ring.packets)
            self.add(.channelBytes, base + [direction], ring.bytes)
            self.add(.channelInterrupts, base + [direction], ring.interrupts)
            self.add(.channelSignals, base + [direction], ring.events)
        }
        self.add(.channelRingFull, base, statistics.outgoing.outFullTotal)
        self.add(.channelRingFullEpisodes, base, statistics.outgoing.outFullFirst)
        self.add(.channelOutEmptySignals, base, statistics.outgoing.intrOutEmpty)
        self.add(.channelInFullSignals, base, statistics.incoming.intrInFull)
        self.add(.channelBlockedSends, base, statistics.blockedSends)
        self.add(.channelRejectedCompletions, base, statistics.rejectedCompletions)
        self.add(.channelCompletedRequests, base, statistics.completedRequests)
    }
}
