// The host device of the article "Writing a host device" (Sources/VMBusHost/Docs.docc). The
// article quotes this file; ArticleSnippetTests fails when the two differ.
import VMBusChannel
import VMBusHost
import VMBusMemory
import VMBusWire

/// The uppercase device's identity: a class GUID of your own, as for any device that is not
/// one of Hyper-V's classes.
enum Uppercase {
    static let classID = GUID("5d2b6f1e-8c3a-4e57-9b1d-0f7a4c2e9d11") ?? .zero
}

/// The host side: answers every request with its payload in upper case.
final class UppercaseDevice: HostDevice {
    let offer: HostOffer
    /// One reader task per open channel, by relid.
    private let readers = Locked<[UInt32: Task<Void, Never>]>([:])

    init(instance: GUID) {
        self.offer = HostOffer(interfaceType: Uppercase.classID, interfaceInstance: instance)
    }

    func opened(_ channel: Channel, info: HostChannelInfo) {
        let reader = Task {
            // Runs until the channel closes; a failed send ends it early.
            _ = try? await channel.receive { packet in
                guard packet.descriptor.type == .dataInBand,
                    packet.descriptor.flags.contains(.completionRequested)
                else { return }
                let answer = packet.payload.map { byte in
                    (0x61...0x7A).contains(byte) ? byte - 0x20 : byte
                }
                try await channel.send(completion: answer[...], transactionID: packet.descriptor.transactionID)
            }
        }
        self.readers.withLock { $0[info.relid] = reader }
    }

    func closed(relid: UInt32) {
        _ = self.readers.withLock { $0.removeValue(forKey: relid) }
    }
}
