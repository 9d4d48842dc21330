import Foundation
import VMBusChannel
import VMBusHost
import VMBusMemory
import VMBusWire

/// The guest side of file copy (06 §8): one transfer at a time, written to a temporary file
/// beside the target and renamed over it on COMPLETE, removed on CANCEL or on any failure, so a
/// target path only ever holds a whole file.
///
/// Differences from Linux's daemon, on purpose: names keep their full Unicode (Linux turns
/// code units ≥ 0x80 into `X`), CANCEL removes the partial file and answers success (Linux
/// answers HV_E_FAIL and leaves it), and with a `root` every path is confined below it.
public final class FileCopyGuest: ICGuestService {
    public let name = "hv_fcopy"
    public var classID: GUID { DeviceClass.fileCopy.classID }
    public let serviceVersions = ICVersions.linuxFileCopy
    public var frameworkVersions: [ICVersion] { ICVersions.linuxFrameworkV3Only }
    public let maximumPacketLength = 16384
    /// Paths are taken below this directory when set.
    public let root: String?

    struct Transfer {
        var temporary: String
        var target: String
        var handle: FileHandle
        var overwrite: Bool
    }
    let current = Locked<Transfer?>(nil)

    /// - Parameter root: when set, every path the host sends is taken below this directory, and a
    ///   path with a `..` component is refused.
    public init(root: String? = nil) { self.root = root }

    public func answer(_ message: inout ICMessage, version: ICVersion) -> ICDisposition {
        guard message.header.messageType == .fileCopy else { return .reply(.fail) }
        var reader = WireReader(message.remainder)
        guard let request = try? FileCopyMessage(from: &reader) else { return .drop }
        switch (request.operation, request.content) {
        case (.startFileCopy, .start(let file, let path, let flags, _)): return .reply(self.start(file, path, flags))
        case (.writeToFile, .write(let offset, let data)): return .reply(self.write(offset, data))
        case (.completeFileCopy, _): return .reply(self.complete())
        case (.cancelFileCopy, _):
            self.abandon()
            return .reply(.ok)
        default: return .reply(.fail)
        }
    }

    func start(_ file: String, _ path: String, _ flags: FileCopyFlags) -> ICStatus {
        self.abandon()  // a new START ends whatever was in progress
        guard !file.isEmpty, !file.contains("/"), file != ".", file != ".." else { return .invalidArgument }
        var directory = path
        if let root = self.root {
            // Confined: no component may climb out of the root.
            guard !path.split(separator: "/").contains("..") else { return .invalidArgument }
            directory = root + "/" + path
        }
        let manager = FileManager.default
        let type = (try? manager.attributesOfItem(atPath: directory))?[.type] as? FileAttributeType
        if type == nil {
            guard flags.contains(.createPath) else { return .fail }
            do { try manager.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch { return Self.status(error) }
        } else if type != .typeDirectory {
            return .fail
        }
        let target = directory + "/" + file
        if manager.fileExists(atPath: target) && !flags.contains(.overwrite) { return .alreadyExists }
        let temporary = directory + "/.\(file).vmbus-fcopy-\(getpid())"
        guard manager.createFile(atPath: temporary, contents: nil), let handle = FileHandle(forWritingAtPath: temporary) else {
            return .fail
        }
        self.current.withLock { $0 = Transfer(temporary: temporary, target: target, handle: handle, overwrite: flags.contains(.overwrite)) }
        return .ok
    }

    func write(_ offset: UInt64, _ data: [UInt8]) -> ICStatus {
        guard let transfer = self.current.withLock({ $0 }) else { return .fail }
        do {
            try transfer.handle.seek(toOffset: offset)
            try transfer.handle.write(contentsOf: data)
            return .ok
        } catch {
            self.abandon()
            return Self.status(error)
        }
    }

    func complete() -> ICStatus {
        guard let transfer = self.current.withLock({ state -> Transfer? in
            defer { state = nil }
            return state
        }) else { return .fail }
        do {
            try transfer.handle.synchronize()
            try transfer.handle.close()
            // The target may have appeared since START: only overwrite when allowed.
            if !transfer.overwrite && FileManager.default.fileExists(atPath: transfer.target) {
                try? FileManager.default.removeItem(atPath: transfer.temporary)
                return .alreadyExists
            }
            try FileSystem.rename(transfer.temporary, over: transfer.target)
            return .ok
        } catch {
            try? FileManager.default.removeItem(atPath: transfer.temporary)
            return Self.status(error)
        }
    }

    /// Drops a transfer in progress and its temporary file.
    func abandon() {
        guard let transfer = self.current.withLock({ state -> Transfer? in
            defer { state = nil }
            return state
        }) else { return }
        try? transfer.handle.close()
        try? FileManager.default.removeItem(atPath: transfer.temporary)
    }

    /// The spec's status for a file-system error (06 §1.5).
    public static func status(_ error: any Error) -> ICStatus {
        if case .system(_, let errno)? = error as? MemoryError {
            return errno == ENOSPC ? .diskFull : (errno == EEXIST ? .alreadyExists : .fail)
        }
        let code = (error as NSError).code
        if code == Int(ENOSPC) || code == CocoaError.fileWriteOutOfSpace.rawValue { return .diskFull }
        if code == Int(EEXIST) || code == CocoaError.fileWriteFileExists.rawValue { return .alreadyExists }
        return .fail
    }
}

/// The host side of file copy: START, WRITE fragments of 6 KiB, COMPLETE (or CANCEL).
public final class FileCopyHost: Sendable {
    /// The integration-service device to register on the host bus.
    public let device: ICHostDevice

    /// - Parameter instance: the offer's instance GUID; by default the class GUID.
    public init(instance: GUID = DeviceClass.fileCopy.classID) {
        self.device = ICHostDevice(
            classID: DeviceClass.fileCopy.classID, instance: instance, serviceVersions: [ICVersion(1, 1)],
            frameworkVersions: [ICVersion(3, 0)])
    }

    /// Why a copy failed.
    public enum CopyError: Error, Hashable, Sendable, CustomStringConvertible {
        /// The guest answered this status to this step.
        case refused(step: String, ICStatus)
        /// The exchange failed below the file-copy protocol: no channel, a timeout, a malformed answer.
        case transport(ICError)
        /// The guest closed the file-copy channel (or went away) during `step`, with `offset`
        /// bytes of the file sent: the copy is incomplete.
        case channelClosed(step: String, offset: Int)
        /// The request could not be encoded (a name or directory too long for its UTF-16 field);
        /// nothing was sent for this step.
        case source(String)
        /// The host is being replaced (a takeover): nothing was sent; copy again.
        case hostReplaced

        public var description: String {
            switch self {
            case .refused(let step, let status):
                let meaning: String
                switch status {
                case .alreadyExists: meaning = "the file exists (use overwrite)"
                case .diskFull: meaning = "the guest's disk is full"
                case .invalidArgument: meaning = "invalid name"
                default: meaning = "failed"
                }
                return "\(step): \(meaning) (status \(status))"
            case .transport(let error): return "\(error)"
            case .channelClosed(let step, let offset):
                return "the guest closed the file-copy channel during '\(step)' after \(offset) bytes: the copy is incomplete"
            case .source(let why): return "source: \(why)"
            case .hostReplaced: return "the host is being replaced (a takeover is in progress): nothing was sent; copy again"
            }
        }
    }

    /// One request of the copy; `offset` is how much of the file went before it.
    func step(_ name: String, at offset: Int, _ message: FileCopyMessage) async throws(CopyError) {
        var writer = WireWriter()
        do { try message.write(to: &writer) } catch { throw CopyError.source("\(error)") }
        let answer: ICMessage
        do {
            answer = try await self.device.transact(.fileCopy, body: writer.bytes)
        } catch .notConnected where self.device.openCount > 0 {
            throw CopyError.channelClosed(step: name, offset: offset)
        } catch {
            throw CopyError.transport(error)
        }
        guard answer.header.status.isSuccess else { throw CopyError.refused(step: name, answer.header.status) }
    }

    /// Copies `data` to `destination` in the guest: its directory goes out with the trailing
    /// `/` that Linux's daemon needs to create every missing component (``FileCopyDestination``).
    /// - Parameters:
    ///   - data: the file's contents.
    ///   - destination: where in the guest, as a directory and a name.
    ///   - flags: overwrite, create the missing directories.
    ///   - progress: called after each fragment with (bytes sent, total).
    /// - Throws: ``CopyError`` with the step the guest refused, or the transport's failure.
    public func copy(
        _ data: [UInt8], to destination: FileCopyDestination, flags: FileCopyFlags = [],
        progress: (Int, Int) -> Void = { _, _ in }
    ) async throws(CopyError) {
        try await self.copy(data, name: destination.name, directory: destination.directory, flags: flags, progress: progress)
    }

    /// Copies `data` to `directory/name` in the guest.
    /// - Parameters:
    ///   - data: the file's contents.
    ///   - name: the file's name in `directory`.
    ///   - directory: the guest directory, as the guest's daemon reads it (Linux's creates missing
    ///     components only for a path ending in `/`; ``FileCopyDestination`` adds it).
    ///   - flags: overwrite, create the missing directories.
    ///   - cancelAfter: send CANCEL instead of COMPLETE once this many bytes went (tests, aborts).
    ///   - progress: called after each fragment with (bytes sent, total).
    public func copy(
        _ data: [UInt8], name: String, directory: String, flags: FileCopyFlags = [], cancelAfter: Int? = nil,
        progress: (Int, Int) -> Void = { _, _ in }
    ) async throws(CopyError) {
        // A takeover waits for the copy to end (the device settles), so a copy is never split
        // between two host processes.
        guard self.device.beginOperation() else { throw CopyError.hostReplaced }
        defer { self.device.endOperation() }
        // A copy is one request per 6 KiB fragment, each sent when the last is answered: run
        // it where the channel's answers arrive (the doorbell's thread, on substrates that have
        // one), so that each answer resumes it there instead of waking another thread. It
        // does no I/O of its own: `data` is in memory.
        try await withTaskExecutorPreference(self.device.taskExecutor) { () async throws(CopyError) in
            try await self.send(data, name: name, directory: directory, flags: flags, cancelAfter: cancelAfter, progress: progress)
        }
    }

    func send(
        _ data: [UInt8], name: String, directory: String, flags: FileCopyFlags, cancelAfter: Int?,
        progress: (Int, Int) -> Void
    ) async throws(CopyError) {
        try await self.step("start", at: 0, FileCopyMessage(
            operation: .startFileCopy,
            content: .start(fileName: name, pathName: directory, flags: flags, fileSize: UInt64(data.count))))
        var offset = 0
        while offset < data.count {
            if let cancelAfter, offset >= cancelAfter {
                try await self.step("cancel", at: offset, FileCopyMessage(operation: .cancelFileCopy, content: .headerOnly))
                return
            }
            let end = min(offset + FileCopyMessage.maximumFragment, data.count)
            try await self.step("write", at: offset, FileCopyMessage(
                operation: .writeToFile, content: .write(offset: UInt64(offset), data: Array(data[offset..<end]))))
            offset = end
            progress(offset, data.count)
        }
        try await self.step("complete", at: data.count, FileCopyMessage(operation: .completeFileCopy, content: .headerOnly))
    }
}
