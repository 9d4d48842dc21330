import Synchronization
import VMBusChannel
import VMBusHost
import VMBusWire

/// The guest side of shutdown (06 §4): checks the full 2060-byte body, answers first, then
/// calls the handler with the action (Linux acts as if forced, whatever the force bit says).
public final class ShutdownGuest: ICGuestService {
    public let name = "hv_utils-shutdown"
    public var classID: GUID { DeviceClass.shutdown.classID }
    public let serviceVersions = ICVersions.linuxShutdown
    /// Whether hibernation is supported (otherwise a hibernate request fails).
    public let canHibernate: Bool
    let handler: @Sendable (ShutdownMessage.Action, ShutdownMessage) async -> Void

    /// - Parameter canHibernate: whether to accept hibernate requests; without it they are
    ///   answered with a failure and the handler is not called.
    /// - Parameter handler: runs after the answer went out; by default nothing happens (the
    ///   CLI logs, or runs `--on-shutdown`).
    public init(canHibernate: Bool = false, handler: @escaping @Sendable (ShutdownMessage.Action, ShutdownMessage) async -> Void = { _, _ in }) {
        self.canHibernate = canHibernate
        self.handler = handler
    }

    public func answer(_ message: inout ICMessage, version: ICVersion) -> ICDisposition {
        guard message.header.messageType == .shutdown else { return .reply(.fail) }
        var reader = WireReader(message.remainder)
        // Shorter than the whole body: dropped without an answer, as Linux does.
        guard message.remainder.count >= ShutdownMessage.wireSize, let request = try? ShutdownMessage(from: &reader) else {
            return .drop
        }
        let action = request.linuxAction
        switch action {
        case .powerOff, .reboot: break
        case .hibernate where self.canHibernate: break
        case .hibernate, .unsupported: return .reply(.fail)
        }
        let handler = self.handler
        return .replyThen(.ok) { await handler(action, request) }
    }
}

/// The host side of shutdown.
public final class ShutdownHost: Sendable {
    /// The integration-service device to register on the host bus.
    public let device: ICHostDevice

    /// - Parameter instance: the offer's instance GUID; by default the class GUID.
    public init(instance: GUID = DeviceClass.shutdown.classID) {
        self.device = ICHostDevice(
            classID: DeviceClass.shutdown.classID, instance: instance, serviceVersions: ICVersions.openVMMShutdown)
    }

    /// Asks the guest to power off, reboot or hibernate; returns the guest's status.
    public func request(_ flags: ShutdownFlags, message: String = "") async throws(ICError) -> ICStatus {
        var writer = WireWriter()
        do {
            try ShutdownMessage(flags: flags, displayMessage: message).write(to: &writer)
        } catch {
            throw ICError.badResponse("cannot encode: \(error)")
        }
        return try await self.device.transact(.shutdown, body: writer.bytes).header.status
    }
}
