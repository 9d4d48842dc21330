import VMBusMemory
import Foundation
import VMBusChannel
import VMBusHost
import VMBusWire

/// A command a guest service runs (VSS hooks, shutdown actions): an executable and its
/// arguments, never a shell string, with a time limit.
public struct HookCommand: Hashable, Sendable {
    /// The program to run: a path, not looked up in `PATH` and not run through a shell.
    public var executable: String
    /// Its arguments, passed as they are.
    public var arguments: [String]
    /// How long it may run before it is sent SIGTERM (then SIGKILL two seconds later).
    public var timeout: Duration

    /// - Parameter executable: the program's path.
    /// - Parameter arguments: its arguments.
    /// - Parameter timeout: how long it may run; 60 s by default.
    public init(executable: String, arguments: [String] = [], timeout: Duration = .seconds(60)) {
        self.executable = executable
        self.arguments = arguments
        self.timeout = timeout
    }

    /// Runs the command without holding a thread of the concurrency pool: the child is
    /// waited for on a thread of its own, so a slow or stuck hook (a VSS freeze may legitimately
    /// take minutes) cannot starve the other services of a 2-core guest. `true` if it exited 0
    /// within the timeout; a late one is sent SIGTERM, then SIGKILL two seconds later.
    public func run() async -> Bool {
        await withCheckedContinuation { (done: CheckedContinuation<Bool, Never>) in
            ThreadName.start("vmbus-hook") { done.resume(returning: self.runBlocking()) }
        }
    }

    /// ``run()`` for callers that may block their thread (not from a task).
    public func runBlocking() -> Bool {
        ChildProcess.run(executable: self.executable, arguments: self.arguments, timeout: self.timeout).succeeded
    }
}

/// The guest side of VSS (06 §7): FREEZE and THAW run the configured hooks (pre-freeze,
/// post-thaw) with their time limits — a stuck hook is killed, it cannot hold the channel —
/// HOT_BACKUP answers "no auto-recovery", the rest succeed without action.
public final class VSSGuest: ICGuestService {
    public let name = "hv_vss"
    public var classID: GUID { DeviceClass.backup.classID }
    public let serviceVersions = ICVersions.linuxVSS
    public var frameworkVersions: [ICVersion] { ICVersions.linuxFrameworkV3Only }
    public let maximumPacketLength = 8192
    /// Run on FREEZE: the freeze succeeds only if it exits 0 within its time limit.
    public let preFreeze: HookCommand?
    /// Run on THAW: the thaw succeeds only if it exits 0 within its time limit.
    public let postThaw: HookCommand?
    let log = Locked<[VSSOperation]>([])

    /// - Parameter preFreeze: the hook FREEZE runs; none by default.
    /// - Parameter postThaw: the hook THAW runs; none by default.
    public init(preFreeze: HookCommand? = nil, postThaw: HookCommand? = nil) {
        self.preFreeze = preFreeze
        self.postThaw = postThaw
    }

    /// Operations served so far.
    public var operations: [VSSOperation] { self.log.withLock { $0 } }

    /// The hook a request runs, with the request, if it runs one.
    func hook(for message: ICMessage) -> (VSSOperation, HookCommand)? {
        guard message.header.messageType == .vss else { return nil }
        var reader = WireReader(message.remainder)
        switch (try? VSSMessage(from: &reader))?.operation {
        case .freeze?: return self.preFreeze.map { (.freeze, $0) }
        case .thaw?: return self.postThaw.map { (.thaw, $0) }
        default: return nil
        }
    }

    /// FREEZE and THAW wait for their hook without blocking a thread of the pool.
    public func respond(to message: inout ICMessage, version: ICVersion) async -> ICDisposition {
        guard let (operation, hook) = self.hook(for: message) else { return self.answer(&message, version: version) }
        self.log.withLock { $0.append(operation) }
        return .reply(await hook.run() ? .ok : .fail)
    }

    /// The synchronous answer; FREEZE and THAW run their hooks blocking this thread (the
    /// driver calls ``respond(to:version:)`` instead).
    public func answer(_ message: inout ICMessage, version: ICVersion) -> ICDisposition {
        guard message.header.messageType == .vss else { return .drop }
        var reader = WireReader(message.remainder)
        guard let request = try? VSSMessage(from: &reader) else { return .drop }
        self.log.withLock { $0.append(request.operation) }
        switch request.operation {
        case .freeze: return .reply(self.preFreeze?.runBlocking() == false ? .fail : .ok)
        case .thaw: return .reply(self.postThaw?.runBlocking() == false ? .fail : .ok)
        case .hotBackup:
            var bytes = Array(message.remainder)
            var writer = WireWriter()
            VSSMessage(operation: .hotBackup, flags: VSSMessage.hotBackupNoAutoRecovery).write(to: &writer)
            bytes.replaceSubrange(0..<writer.count, with: writer.bytes)
            message.remainder = bytes[...]
            return .reply(.ok)
        case .getDMInfo:
            var bytes = Array(message.remainder)
            var writer = WireWriter()
            VSSMessage(operation: .getDMInfo, flags: 0).write(to: &writer)
            bytes.replaceSubrange(0..<writer.count, with: writer.bytes)
            message.remainder = bytes[...]
            return .reply(.ok)
        case .create, .delete, .backupComplete, .autoRecover: return .reply(.ok)
        default: return .reply(.fail)
        }
    }
}

/// The host side of VSS: the backup handshake.
public final class VSSHost: Sendable {
    /// The integration-service device to register on the host bus.
    public let device: ICHostDevice

    /// - Parameter instance: the offer's instance GUID; by default the class GUID.
    public init(instance: GUID = DeviceClass.backup.classID) {
        self.device = ICHostDevice(
            classID: DeviceClass.backup.classID, instance: instance, serviceVersions: [ICVersion(5, 0)],
            frameworkVersions: [ICVersion(3, 0)], timeout: .seconds(15 * 60))
    }

    /// Sends one operation; returns the guest's status and the flags it answered.
    public func send(_ operation: VSSOperation) async throws(ICError) -> (status: ICStatus, flags: UInt32) {
        var writer = WireWriter()
        VSSMessage(operation: operation).write(to: &writer)
        let answer = try await self.device.transact(.vss, body: writer.bytes)
        var reader = WireReader(answer.body)
        let body = try? VSSMessage(from: &reader)
        return (answer.header.status, body?.flags ?? 0)
    }

    /// The backup handshake: hot-backup check, freeze, (the snapshot would be taken here),
    /// thaw, backup complete. Returns the statuses in order.
    public func backup() async throws(ICError) -> [(VSSOperation, ICStatus)] {
        var results: [(VSSOperation, ICStatus)] = []
        for operation in [VSSOperation.hotBackup, .freeze, .thaw, .backupComplete] {
            let (status, _) = try await self.send(operation)
            results.append((operation, status))
            // A failed freeze still needs a thaw; anything else failing ends the backup.
            if !status.isSuccess && operation != .freeze { break }
        }
        return results
    }
}
