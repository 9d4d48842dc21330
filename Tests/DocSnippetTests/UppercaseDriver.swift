// The guest driver of the article "Writing a guest driver" (Sources/VMBusGuest/Docs.docc). The
// article quotes this file; ArticleSnippetTests fails when the two differ.
import VMBusChannel
import VMBusGuest
import VMBusMemory
import VMBusWire

/// The guest side: opens each uppercase device's channel and sends it text.
final class UppercaseDriver: GuestDriver {
    let name = "uppercase"
    var classes: [GUID] { [Uppercase.classID] }

    private struct Bound {
        var channel: Channel
        var reader: Task<Void, Never>
    }
    private let bound = Locked<[UInt32: Bound]>([:])

    func probe(_ device: GuestDevice, bus: GuestBus) async throws {
        let channel = try await bus.open(device.relid, pages: .utility)
        // The reader hands each completion to the request waiting for it.
        let reader = Task { _ = try? await channel.receive { _ in } }
        self.bound.withLock { $0[device.relid] = Bound(channel: channel, reader: reader) }
    }

    func remove(_ device: GuestDevice, bus: GuestBus) async {
        guard let bound = self.bound.withLock({ $0.removeValue(forKey: device.relid) }) else { return }
        bound.channel.close(.closedLocally)
        await bound.reader.value
    }

    /// Sends `text` to the first bound device and returns its answer.
    func uppercase(_ text: String) async throws -> String {
        guard let channel = self.bound.withLock({ $0.values.first?.channel }) else {
            throw BusError.notConnected
        }
        let bytes = Array(text.utf8)
        let answer = try await channel.request(bytes[...])
        // Payloads travel padded to 8 bytes: keep what was sent.
        return String(decoding: answer.prefix(bytes.count), as: UTF8.self)
    }
}
