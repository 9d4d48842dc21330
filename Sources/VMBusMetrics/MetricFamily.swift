/// One metric as Prometheus shows it: a name in its conventions (`vmbus_` prefix, the unit in
/// the name, `_total` on counters), its `# HELP` text and its type. Every series of a family
/// carries the same label names, in the same order.
public struct MetricFamily: Hashable, Sendable {
    /// Counters only grow (a new channel's start again from 0); gauges go up and down.
    public enum Kind: Hashable, Sendable {
        case counter
        case gauge
    }

    public var name: String
    public var help: String
    public var kind: Kind
    /// The label names every sample of this family gives, in order.
    public var labels: [String]

    public init(_ name: String, _ kind: Kind, labels: [String], help: String) {
        self.name = name
        self.kind = kind
        self.labels = labels
        self.help = help
    }
}

/// The labels that name a channel: the guest (its number on the host), the relid, the device
/// class (a name where one is known, else its GUID), the offer's instance GUID and the
/// sub-channel index (0 for a primary).
let channelLabels = ["guest", "relid", "class", "instance", "subchannel"]

extension MetricFamily {
    // MARK: Channels (ChannelStatistics, both rings)

    public static let channelPackets = MetricFamily(
        "vmbus_channel_packets_total", .counter, labels: channelLabels + ["direction"],
        help: "Packets written to (out) or read from (in) the channel's rings.")
    public static let channelBytes = MetricFamily(
        "vmbus_channel_bytes_total", .counter, labels: channelLabels + ["direction"],
        help: "Bytes of packets written (out) or read (in), descriptors and padding included.")
    public static let channelInterrupts = MetricFamily(
        "vmbus_channel_interrupts_total", .counter, labels: channelLabels + ["direction"],
        help: "Signals received from the peer for the ring read (in) or written (out).")
    public static let channelSignals = MetricFamily(
        "vmbus_channel_signals_total", .counter, labels: channelLabels + ["direction"],
        help: "Signals sent to the peer for the ring written (out) or read (in).")
    public static let channelRingFull = MetricFamily(
        "vmbus_channel_ring_full_total", .counter, labels: channelLabels,
        help: "Writes that found the outgoing ring full.")
    public static let channelRingFullEpisodes = MetricFamily(
        "vmbus_channel_ring_full_episodes_total", .counter, labels: channelLabels,
        help: "Writes that were the first to find the outgoing ring full since the last write that fit.")
    public static let channelOutEmptySignals = MetricFamily(
        "vmbus_channel_intr_out_empty_total", .counter, labels: channelLabels,
        help: "Signals owed because a write turned the outgoing ring from empty to non-empty.")
    public static let channelInFullSignals = MetricFamily(
        "vmbus_channel_intr_in_full_total", .counter, labels: channelLabels,
        help: "Signals owed because reading freed the space the peer's pending_send_sz asked for.")
    public static let channelBlockedSends = MetricFamily(
        "vmbus_channel_blocked_sends_total", .counter, labels: channelLabels,
        help: "Sends that waited for room in the outgoing ring (pending_send_sz set).")
    public static let channelRejectedCompletions = MetricFamily(
        "vmbus_channel_rejected_completions_total", .counter, labels: channelLabels,
        help: "Completions whose transaction id was not outstanding (requestor misses), dropped.")
    public static let channelCompletedRequests = MetricFamily(
        "vmbus_channel_completed_requests_total", .counter, labels: channelLabels,
        help: "Requests answered through the channel's requestor.")

    // MARK: Buses

    public static let guestsConnected = MetricFamily(
        "vmbus_host_guests", .gauge, labels: [], help: "Guests connected to the host now.")
    public static let channelsOpen = MetricFamily(
        "vmbus_host_channels_open", .gauge, labels: ["guest"], help: "Channels the guest has open now.")
    public static let protocolViolations = MetricFamily(
        "vmbus_host_protocol_violations_total", .counter, labels: ["guest", "kind"],
        help: "Guest mistakes that closed a channel or dropped the connection, by kind (ring_* kinds: a ring the guest corrupted).")

    public static let guestChannelsOpen = MetricFamily(
        "vmbus_guest_channels_open", .gauge, labels: [], help: "Channels this guest has open now.")
    public static let hostMisbehaviours = MetricFamily(
        "vmbus_guest_host_misbehaviours_total", .counter, labels: [],
        help: "Host protocol violations this guest refused and survived.")

    // MARK: Storage (storvsp, per queue)

    static let storageLabels = ["guest", "instance", "queue"]
    public static let storageRequests = MetricFamily(
        "vmbus_storage_requests_total", .counter, labels: storageLabels,
        help: "SCSI commands completed (every EXECUTE_SRB).")
    public static let storageOperations = MetricFamily(
        "vmbus_storage_operations_total", .counter, labels: storageLabels + ["op"],
        help: "Reads, writes, flushes (FUA writes included) and discards among the commands.")
    public static let storageBytes = MetricFamily(
        "vmbus_storage_bytes_total", .counter, labels: storageLabels + ["direction"],
        help: "Bytes read from (read) or written to (write) the disks.")
    public static let storageFailed = MetricFamily(
        "vmbus_storage_failed_requests_total", .counter, labels: storageLabels,
        help: "SCSI commands that completed with a failure (CHECK CONDITION, an SRB error).")
    public static let storageMalformed = MetricFamily(
        "vmbus_storage_malformed_packets_total", .counter, labels: storageLabels,
        help: "Storage packets refused as breaking the protocol.")

    // MARK: Network (netvsp, per queue)

    static let networkLabels = ["guest", "instance", "queue"]
    public static let networkPackets = MetricFamily(
        "vmbus_network_packets_total", .counter, labels: networkLabels + ["direction"],
        help: "Frames the guest sent (tx) or received (rx).")
    public static let networkBytes = MetricFamily(
        "vmbus_network_bytes_total", .counter, labels: networkLabels + ["direction"],
        help: "Bytes of frames the guest sent (tx) or received (rx).")
    public static let networkDropped = MetricFamily(
        "vmbus_network_dropped_total", .counter, labels: networkLabels + ["direction"],
        help: "Frames dropped on the way to (rx) or from (tx) the guest.")
    public static let networkMalformed = MetricFamily(
        "vmbus_network_malformed_packets_total", .counter, labels: networkLabels,
        help: "Network packets refused as breaking the protocol.")
    public static let networkLargeSends = MetricFamily(
        "vmbus_network_large_sends_total", .counter, labels: networkLabels,
        help: "Large sends (LSO) the guest handed over, before segmentation.")
    public static let networkCoalesced = MetricFamily(
        "vmbus_network_coalesced_total", .counter, labels: networkLabels,
        help: "Frames received coalesced (RSC) into larger ones for the guest.")

    // MARK: The endpoint itself

    public static let scrapes = MetricFamily(
        "vmbus_metrics_scrapes_total", .counter, labels: [], help: "Scrapes of this endpoint answered.")
    public static let badRequests = MetricFamily(
        "vmbus_metrics_bad_requests_total", .counter, labels: ["reason"],
        help: "Requests to this endpoint refused (not_found, bad_method, malformed, too_large, timeout, busy).")
}
