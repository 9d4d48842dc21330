import VMBusMemory

/// What a driver brought up, by primary relid, together with the sub-channel offers that
/// arrived while a device was still being brought up.
///
/// A driver that asks for sub-channels during bring-up (storvsc, netvsc) can see their offers
/// before bring-up ends — the host answers the request on the channel and offers on the
/// control path, in either order. Offers for a device not yet added are kept and handed back
/// by ``add(_:relid:)``; offers and the end of bring-up take one lock, so none is missed.
public final class BoundDevices<Value: Sendable>: Sendable {
    struct State {
        var values: [UInt32: Value] = [:]
        var early: [UInt32: [UInt32]] = [:]
    }

    let state = Locked(State())

    /// An empty table.
    public init() {}

    /// Records a device that is up; returns the sub-channels offered for it meanwhile, to open
    /// now.
    public func add(_ value: Value, relid: UInt32) -> [UInt32] {
        self.state.withLock { state in
            state.values[relid] = value
            return state.early.removeValue(forKey: relid) ?? []
        }
    }

    /// Bring-up failed: forgets the offers kept for the device.
    public func failed(relid: UInt32) {
        self.state.withLock { _ = $0.early.removeValue(forKey: relid) }
    }

    /// Removes a device and any offers kept for it.
    public func remove(relid: UInt32) -> Value? {
        self.state.withLock { state in
            state.early.removeValue(forKey: relid)
            return state.values.removeValue(forKey: relid)
        }
    }

    /// A sub-channel was offered for `primary`: its device if it is up (open the sub-channel
    /// now), else `nil` (the offer is kept for ``add(_:relid:)``).
    public func subChannelOffered(_ relid: UInt32, of primary: UInt32) -> Value? {
        self.state.withLock { state in
            if let value = state.values[primary] { return value }
            state.early[primary, default: []].append(relid)
            return nil
        }
    }

    /// Every device, by relid.
    public var all: [Value] { self.state.withLock { state in state.values.keys.sorted().compactMap { state.values[$0] } } }

    /// The device of the lowest relid.
    public var first: Value? { self.state.withLock { state in state.values.keys.min().flatMap { state.values[$0] } } }
}
