import VMBusMemory
import VMBusChannel
import VMBusHost
import VMBusWire

/// The discard device, swift-vmbus's own sink for one-way throughput: the host reads and drops
/// every packet, answering only those that request a completion (so a sender learns when
/// everything before arrived — packets are read in order).
public enum Discard {
    /// Its class GUID (owned by this project).
    public static let classID = GUID("9c54a7b3-4f5e-4d0d-8b8e-2f1c0a6e0a02") ?? .zero
}

/// The host side of the discard device.
public final class DiscardDevice: HostDevice {
    public let offer: HostOffer
    let served = Locked<[UInt32: Task<Void, Never>]>([:])

    /// - Parameter wantsMonitor: ask for monitored notification (MNF).
    public init(instance: GUID, wantsMonitor: Bool = false) {
        self.offer = HostOffer(interfaceType: Discard.classID, interfaceInstance: instance, wantsMonitor: wantsMonitor)
    }

    public func opened(_ channel: Channel, info: HostChannelInfo) {
        let task = Task {
            _ = try? await channel.receive { packet in
                guard packet.descriptor.flags.contains(.completionRequested) else { return }
                try await channel.send(completion: [][...], transactionID: packet.descriptor.transactionID)
            }
        }
        self.served.withLock { $0[info.relid] = task }
    }

    public func closed(relid: UInt32) {
        _ = self.served.withLock { $0.removeValue(forKey: relid) }
    }
}
