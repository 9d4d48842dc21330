import ArgumentParser

/// `vmbus disk`: the synthetic SCSI controllers of a running host.
struct DiskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disk",
        abstract: "Inspect the disks of a running host (vmbus host --disk).",
        subcommands: [DiskStat.self]
    )
}

struct DiskStat: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stat",
        abstract: "The disks, and per guest and queue: SCSI requests, bytes, failures and latency percentiles.",
        discussion: """
            One line per disk (LUN, backing file, size, read-only), then per connected guest its \
            storage protocol version and one line per queue (the primary channel is queue 0, \
            sub-channels follow): requests counts every SCSI command; reads, writes, flushes \
            (SYNCHRONIZE CACHE) and discards (UNMAP) those that touched the disk; failed those \
            answered with CHECK CONDITION; malformed the packets that broke the protocol (spec \
            10 §8: the host then stops that channel and shows why). Latency is from the \
            request's arrival to its completion's send, in microseconds, as power-of-two bucket \
            bounds ("p99<128": the 99th percentile is under 128 µs).
            """
    )
    @OptionGroup var target: CtlTarget
    func run() throws { try self.target.request("disk") }
}
