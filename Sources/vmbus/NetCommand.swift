import ArgumentParser

/// `vmbus net`: the synthetic NICs of a running host.
struct NetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "net",
        abstract: "Inspect the synthetic NICs of a running host (vmbus host --net).",
        subcommands: [NetStat.self]
    )
}

struct NetStat: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stat",
        abstract: "Per-queue packets, bytes, drops and malformed messages of each guest's NIC, like ethtool -S.",
        discussion: """
            rx is host → guest (frames from the backend lent to the guest in receive slots), tx \
            is guest → host. rx_dropped counts frames the guest had no free receive slot or no \
            packet filter for; malformed counts messages the guest got wrong (spec 11 §8). \
            tx_large counts TCP segments the guest sent whole (LSO) and rx_coalesced those it \
            received whole over several receive slots (RSC); the header line names the offloads \
            the host advertised and whether the guest turned RSC on.
            """
    )
    @OptionGroup var target: CtlTarget
    func run() throws { try self.target.request("net") }
}
