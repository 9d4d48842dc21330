/// Waits for work that tells nobody when it ends — a command on a disk thread, a reader
/// reaching its park, a copy's last fragment — by looking every `interval` until `done` says
/// so or `timeout` passes. For rare waits (a takeover's steps), never for a data path.
/// - Returns: whether `done` returned `true` in time.
public func pollUntil(timeout: Duration, every interval: Duration = .milliseconds(1), _ done: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while !done() {
        guard ContinuousClock.now < deadline else { return false }
        try? await Task.sleep(for: interval)
    }
    return true
}
