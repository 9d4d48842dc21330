import VMBusDevices
import VMBusMemory
import VMBusWire

/// Runs a request of a service that a Linux guest answers through a user-space daemon (KVP,
/// VSS): an unanswered negotiation or a silent service is explained as the daemon not
/// running, not as a bare timeout.
func daemonService<R>(_ service: String, _ daemon: String, _ body: () async throws -> R) async throws -> R {
    do {
        return try await body()
    } catch ICError.negotiationUnanswered {
        throw AdminError(
            "\(service) is not running in the guest: it opened the \(service) channel but never answered version "
                + "negotiation (on Linux, start \(daemon))")
    } catch ICError.timedOut {
        throw AdminError("the guest's \(service) service did not answer in time (on Linux, is \(daemon) running?)")
    }
}

/// A guest's health as `status` shows it.
func describe(_ health: GuestHealth) -> String {
    switch health {
    case .healthy(let last): return "healthy (last answer \(secondsSince(last)) s ago)"
    case .lost(let last?): return "unhealthy (no answer for \(secondsSince(last)) s)"
    case .lost(nil): return "unhealthy (no answer yet)"
    case .notRunning: return "not running (the heartbeat service is closed or not negotiated)"
    }
}

/// Seconds since a reference time (100 ns units), to a tenth.
func secondsSince(_ time: UInt64) -> Double {
    Double((SystemClock.referenceTime() &- time) / 1_000_000) / 10
}

/// A VSS step as `backup` names it.
func vssName(_ operation: VSSOperation) -> String {
    switch operation {
    case .hotBackup: return "hot-backup check"
    case .freeze: return "freeze"
    case .thaw: return "thaw"
    case .backupComplete: return "backup complete"
    default: return "operation \(operation.rawValue)"
    }
}
