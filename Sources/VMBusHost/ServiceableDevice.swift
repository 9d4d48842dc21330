import VMBusChannel
import VMBusWire

/// A device whose open channels can be carried into another host process (a takeover,
/// docs/SERVICING.md): its channels are held at a packet boundary, it finishes what it keeps
/// outside them, it saves what the new process's device needs, and that device takes the
/// channels back without the guest noticing more than a pause.
///
/// A device that is not serviceable may still be registered; a takeover is refused only while
/// one of its channels is open.
public protocol ServiceableDevice: HostDevice {
    /// Called before any channel is held: finish work that needs the channels running to end
    /// (a file copy's remaining fragments and their answers) and start no more of it until
    /// ``resumeAfterSettle()``. `false` if that cannot happen in time. The guest sees no pause
    /// during this: nothing is held yet.
    func settle(timeout: Duration) async -> Bool
    /// The takeover failed (or ended, in the process that stays): start such work again.
    func resumeAfterSettle()
    /// Called once every channel of the bus is held: finish (or park) whatever the device does
    /// outside its readers — answers waiting for ring room, requests it sent and waits on — so
    /// that nothing of it lives only in this process. `false` if that cannot happen in time.
    func quiesce(timeout: Duration) async -> Bool
    /// The takeover failed: carry on as before ``quiesce(timeout:)``.
    func resumeAfterQuiesce()
    /// The device's own state for one of its open channels (`[]` for a stateless device).
    func saveState(relid: UInt32) throws(SavedStateError) -> [UInt8]
    /// In the new process: a channel saved by ``saveState(relid:)`` is open again — the same
    /// rings, read on from the next packet. Start serving it; do not block.
    func restored(_ channel: Channel, info: HostChannelInfo, state: [UInt8]) throws(SavedStateError)
}

extension ServiceableDevice {
    public func settle(timeout: Duration) async -> Bool { true }
    public func resumeAfterSettle() {}
    public func quiesce(timeout: Duration) async -> Bool { true }
    public func resumeAfterQuiesce() {}
    public func saveState(relid: UInt32) throws(SavedStateError) -> [UInt8] { [] }
    /// A stateless device serves a restored channel as a newly opened one.
    public func restored(_ channel: Channel, info: HostChannelInfo, state: [UInt8]) throws(SavedStateError) {
        self.opened(channel, info: info)
    }
}
