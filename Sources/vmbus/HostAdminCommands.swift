import VMBusAdmin
import VMBusHost
import VMBusLocal

extension AdminServer {
    /// `net` and `disk` (`vmbus net stat`, `vmbus disk stat`): the counters of the CLI's own
    /// NIC and disks. Registered even when the host has none, so the client learns which
    /// option would have offered them.
    func registerStatistics(host: LocalHost, network: HostNetwork?, storage: HostStorage?) {
        self.register("net") { request, session in
            guard let network else { throw CLIError("the host offers no synthetic NIC (start it with --net)") }
            for line in network.statistics(bus: Self.bus(host, request.guest)) { session.output(line) }
        }
        self.register("disk") { request, session in
            guard let storage else { throw CLIError("the host serves no disks (start it with --disk)") }
            for line in storage.statistics(bus: Self.bus(host, request.guest)) { session.output(line) }
        }
    }

    /// The bus of the guest named, or nil (every guest) for "0" or anything not a guest number.
    static func bus(_ host: LocalHost, _ guest: String) -> HostBus? {
        Int(guest).flatMap { $0 > 0 ? host.bus(guest: $0) : nil }
    }
}
