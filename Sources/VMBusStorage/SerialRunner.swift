import VMBusMemory

/// Runs a body on one thread at a time, again if asked while running: a channel's interrupt
/// handler, called from the doorbell thread and from disk workers alike, never runs twice at
/// once, and a kick that comes while it runs is never lost.
final class SerialRunner: Sendable {
    struct Flags {
        var running = false
        var again = false
    }
    let flags = Locked(Flags())

    func kick(_ body: () -> Void) {
        let start = self.flags.withLock { flags in
            if flags.running {
                flags.again = true
                return false
            }
            flags.running = true
            return true
        }
        guard start else { return }
        while true {
            body()
            let more = self.flags.withLock { flags in
                if flags.again {
                    flags.again = false
                    return true
                }
                flags.running = false
                return false
            }
            guard more else { return }
        }
    }
}
