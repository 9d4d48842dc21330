import VMBusChannel
import VMBusHost
import VMBusMemory
import VMBusWire

/// The guest side of time synchronisation (06 §5): answers every sample, records the host's
/// time against the reference counter, and estimates host time now. Setting the system clock
/// is the caller's explicit choice (``init(onSync:)``).
public final class TimeSyncGuest: ICGuestService {
    public let name = "hv_utils-timesync"
    public var classID: GUID { DeviceClass.timeSync.classID }
    public let serviceVersions = ICVersions.linuxTimeSync
    struct State {
        var hostTime: UInt64?
        var referenceTime: UInt64 = 0
        var samples = 0
    }
    let state = Locked(State())
    let onSync: (@Sendable (UInt64) -> Void)?

    /// - Parameter onSync: called with the estimated host FILETIME on every SYNC request (to
    ///   set the clock — an explicit opt-in); `nil` to only track.
    public init(onSync: (@Sendable (UInt64) -> Void)? = nil) { self.onSync = onSync }

    /// The host's time now (FILETIME, 100 ns since 1601), from the last sample.
    public var hostTimeNow: UInt64? {
        self.state.withLock { state in
            state.hostTime.map { $0 &+ (SystemClock.referenceTime() &- state.referenceTime) }
        }
    }

    /// Host time minus this machine's wall clock, in 100 ns units.
    public var offset: Int64? {
        self.hostTimeNow.map { Int64(bitPattern: $0 &- SystemClock.fileTimeNow()) }
    }

    /// Samples received.
    public var samples: Int { self.state.withLock { $0.samples } }

    public func answer(_ message: inout ICMessage, version: ICVersion) -> ICDisposition {
        guard message.header.messageType == .timeSync else { return .reply(.fail) }
        var reader = WireReader(message.remainder)
        let hostTime: UInt64
        let reference: UInt64
        let flags: TimeSyncFlags
        if version >= ICVersion(4, 0) {
            guard let body = try? TimeSyncMessageV4(from: &reader) else { return .drop }
            (hostTime, reference, flags) = (body.parentTime, body.vmReferenceTime, body.flags)
        } else {
            guard let body = try? TimeSyncMessageV3(from: &reader) else { return .drop }
            (hostTime, reference, flags) = (body.parentTime, SystemClock.referenceTime(), body.flags)
        }
        self.state.withLock { state in
            state.hostTime = hostTime
            state.referenceTime = reference
            state.samples += 1
        }
        if flags == .sync, let onSync = self.onSync, let now = self.hostTimeNow {
            return .replyThen(.ok) { onSync(now) }
        }
        return .reply(.ok)
    }
}

/// The host side of time synchronisation.
public final class TimeSyncHost: Sendable {
    /// The integration-service device to register on the host bus.
    public let device: ICHostDevice

    /// - Parameter instance: the offer's instance GUID; by default the class GUID.
    /// - Parameter versions: the service versions offered (OpenVMM: 4.0 only; Windows 1.0, 3.0, 4.0).
    public init(instance: GUID = DeviceClass.timeSync.classID, versions: [ICVersion] = ICVersions.windowsTimeSync) {
        self.device = ICHostDevice(classID: DeviceClass.timeSync.classID, instance: instance, serviceVersions: versions)
    }

    /// Sends a SYNC as soon as each open of the channel is negotiated — the first message
    /// after every open, as Hyper-V does and as Linux relies on after a reboot or restore
    /// (06 §5) — then a SAMPLE every `interval` (OpenVMM: 5 s) until that channel closes;
    /// again after every re-open. Cancel the task to stop.
    @discardableResult
    public func start(interval: Duration = .seconds(5)) -> Task<Void, Never> {
        Task { [self] in
            await self.device.whileOpen {
                var flags = TimeSyncFlags.sync
                while !Task.isCancelled {
                    try? await self.send(flags)
                    flags = .sample
                    try? await Task.sleep(for: interval)
                }
            }
        }
    }

    /// Sends the host's time now, as a SYNC (set the clock) or a SAMPLE.
    public func send(_ flags: TimeSyncFlags = .sample) async throws(ICError) {
        let (_, version) = try await self.device.ready()
        var writer = WireWriter()
        if version >= ICVersion(4, 0) {
            TimeSyncMessageV4(parentTime: SystemClock.fileTimeNow(), vmReferenceTime: SystemClock.referenceTime(), flags: flags)
                .write(to: &writer)
        } else {
            TimeSyncMessageV3(parentTime: SystemClock.fileTimeNow(), flags: flags).write(to: &writer)
        }
        let answer = try await self.device.transact(.timeSync, body: writer.bytes)
        guard answer.header.status.isSuccess else { throw ICError.badResponse("status \(answer.header.status)") }
    }
}
