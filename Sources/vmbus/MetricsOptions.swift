import ArgumentParser
import Metrics
import VMBusGuest
import VMBusLocal
import VMBusMemory
import VMBusMetrics

/// `--metrics [ADDR:]PORT` on `vmbus host` and `vmbus guest`: the Prometheus endpoint
/// (docs/METRICS.md).
struct MetricsOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Serve counters in the Prometheus text format at http://ADDR:PORT/metrics: PORT alone listens on 127.0.0.1 (port 0 picks one); give an address to listen elsewhere.",
            valueName: "[ADDR:]PORT"))
    var metrics: String?

    static let bootstrapped = Locked(false)

    func validate() throws {
        if let metrics = self.metrics, MetricsAddress(metrics) == nil {
            throw ValidationError("--metrics takes PORT, ADDR:PORT or [IPv6]:PORT")
        }
    }

    /// Starts the endpoint over `sources` (nil without --metrics), and makes it the process's
    /// swift-metrics backend.
    /// - Parameter retryFor: how long to keep trying a port that is taken (a host taking over
    ///   waits for the old one to exit).
    func serve(_ sources: [any MetricsSource], retryFor: Duration = .zero, log: @escaping @Sendable (String) -> Void) throws
        -> MetricsServer?
    {
        guard let text = self.metrics, let address = MetricsAddress(text) else { return nil }
        let exporter = MetricsExporter(sources: sources)
        // Anything in this process that records through swift-metrics lands at the same endpoint
        // (the first endpoint's: swift-metrics takes one backend per process).
        if Self.bootstrapped.withLock({ done in defer { done = true }; return !done }) { MetricsSystem.bootstrap(exporter.factory) }
        let deadline = ContinuousClock.now + retryFor
        let pause = WakeSignal()
        var server: MetricsServer?
        while server == nil {
            do {
                server = try MetricsServer(exporter: exporter, address: address, configuration: MetricsServer.Configuration(log: log))
            } catch {
                guard ContinuousClock.now < deadline else { throw CLIError("--metrics: \(error)") }
                pause.wait(timeout: .milliseconds(100))
            }
        }
        guard let server else { return nil }
        if !address.isLoopback { log("metrics: listening on \(address), which is not loopback: other machines can read the counters") }
        server.start()
        return server
    }

    /// What `vmbus host` reports: its buses, and the CLI's NICs and disks.
    static func hostSources(host: LocalHost, network: HostNetwork?, storage: HostStorage?) -> [any MetricsSource] {
        var sources: [any MetricsSource] = [
            HostMetrics {
                host.guests.compactMap { guest in host.bus(guest: guest.id).map { ("\(guest.id)", $0) } }
            }
        ]
        if let storage {
            sources.append(StorageMetrics { storage.devices.withLock { $0.values.map { ("\($0.guest)", $0.device) } } })
        }
        if let network {
            sources.append(NetworkMetrics { network.devices.withLock { $0.values.map { ("\($0.guest)", $0.device) } } })
        }
        return sources
    }
}
