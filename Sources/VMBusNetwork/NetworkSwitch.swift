import VMBusMemory

/// A learning Ethernet switch in memory: each port is a ``NetworkBackend`` a NIC can use.
/// A frame goes to the port its destination MAC was last seen on, or to every other port
/// (broadcast, multicast, not yet learnt). `vmbus host --net switch` joins the NICs of all
/// its guests this way.
public final class NetworkSwitch: Sendable {
    struct State {
        var ports: [Int: SwitchPort] = [:]
        var nextPort = 0
        var table: [MACAddress: Int] = [:]
    }
    let state = Locked(State())
    public let mtu: Int

    public init(mtu: Int = 1500) { self.mtu = mtu }

    /// A new port, reporting `macAddress` to its NIC.
    public func makePort(macAddress: MACAddress) -> SwitchPort {
        self.state.withLock { state in
            let port = SwitchPort(switch: self, id: state.nextPort, macAddress: macAddress, mtu: self.mtu)
            state.ports[state.nextPort] = port
            state.nextPort += 1
            return port
        }
    }

    func forward(_ frame: Span<UInt8>, from source: Int) {
        guard frame.count >= 14 else { return }
        var bytes: [UInt8] = []
        bytes.append(span: frame)
        let destination = MACAddress(Array(bytes[0..<6]))
        let sender = MACAddress(Array(bytes[6..<12]))
        let targets: [SwitchPort] = self.state.withLock { state in
            // Only unicast sources are learnt (a multicast source is a malformed frame).
            if sender.bytes[0] & 1 == 0 { state.table[sender] = source }
            if destination.bytes[0] & 1 == 0, let port = state.table[destination], port != source, let target = state.ports[port] {
                return [target]
            }
            return state.ports.filter { $0.key != source }.map(\.value)
        }
        // Delivered outside the lock: a delivery may run the receiving guest's handler on
        // this thread (in process), which may send back through the switch.
        let batch = FrameBatch(frame: bytes)
        for target in targets { _ = target.slot.sink.withLock({ $0 })?.deliver(batch, from: 0) }
    }

    func remove(_ id: Int) {
        self.state.withLock { state in
            state.ports[id] = nil
            state.table = state.table.filter { $0.value != id }
        }
    }
}

/// One port of a ``NetworkSwitch``.
public final class SwitchPort: NetworkBackend {
    public let macAddress: MACAddress
    public let mtu: Int
    let id: Int
    let slot = SinkSlot()
    let owner: NetworkSwitch

    init(switch owner: NetworkSwitch, id: Int, macAddress: MACAddress, mtu: Int) {
        self.owner = owner
        self.id = id
        self.macAddress = macAddress
        self.mtu = mtu
    }

    public func send(_ frame: Span<UInt8>) { self.owner.forward(frame, from: self.id) }
    public func attach(_ sink: (any FrameSink)?) { self.slot.sink.withLock { $0 = sink } }

    public func close() {
        self.owner.remove(self.id)
        self.slot.sink.withLock { $0 = nil }
    }
}
