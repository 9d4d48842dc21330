import Foundation
import Testing
import VMBusDevices
import VMBusMemory
import VMBusWire

/// A file-copy guest that walks `path_name` the way Linux's `hv_fcopy_uio_daemon` does (06 §8):
/// with CREATE_PATH it creates only the components a `/` follows, one `mkdir` each; the file
/// is then `path_name + "/" + file_name`. It records each START's directory as it came off the
/// wire.
final class LinuxRuleFileCopyGuest: ICGuestService {
    let name = "linux-rule-fcopy"
    var classID: GUID { DeviceClass.fileCopy.classID }
    let serviceVersions = ICVersions.linuxFileCopy
    var frameworkVersions: [ICVersion] { ICVersions.linuxFrameworkV3Only }
    let maximumPacketLength = 16384
    let root: String
    let directories = Locked<[String]>([])
    let target = Locked<String?>(nil)

    init(root: String) { self.root = root }

    func answer(_ message: inout ICMessage, version: ICVersion) -> ICDisposition {
        var reader = WireReader(message.remainder)
        guard let request = try? FileCopyMessage(from: &reader) else { return .drop }
        switch request.content {
        case .start(let file, let path, let flags, _):
            self.directories.withLock { $0.append(path) }
            return .reply(self.start(file, path, flags))
        case .write(let offset, let data):
            guard let target = self.target.withLock({ $0 }), let handle = FileHandle(forWritingAtPath: target) else {
                return .reply(.fail)
            }
            defer { try? handle.close() }
            do {
                try handle.seek(toOffset: offset)
                try handle.write(contentsOf: data)
            } catch { return .reply(.fail) }
            return .reply(.ok)
        case .headerOnly:
            self.target.withLock { $0 = nil }
            return .reply(request.operation == .completeFileCopy ? .ok : .fail)
        case .unknown:
            return .reply(.fail)
        }
    }

    func start(_ file: String, _ path: String, _ flags: FileCopyFlags) -> ICStatus {
        let manager = FileManager.default
        var component = path.startIndex
        while let slash = path[component...].firstIndex(of: "/") {
            defer { component = path.index(after: slash) }
            if slash == component { continue }  // a leading or doubled '/'
            let prefix = self.root + "/" + path[..<slash]
            if manager.fileExists(atPath: prefix) { continue }
            guard flags.contains(.createPath), (try? manager.createDirectory(atPath: prefix, withIntermediateDirectories: false)) != nil
            else { return .fail }
        }
        let target = self.root + "/" + path + "/" + file
        if manager.fileExists(atPath: target) && !flags.contains(.overwrite) { return .alreadyExists }
        guard manager.createFile(atPath: target, contents: nil) else { return .fail }
        self.target.withLock { $0 = target }
        return .ok
    }
}

@Suite struct FileCopyDestinationTests {
    func root() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fcopy-dest-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test(arguments: [
        ("dir1/dir2/dir3/f.txt", "dir1/dir2/dir3/", "f.txt"),
        ("f.txt", "./", "f.txt"),
        ("/f.txt", "/", "f.txt"),
        ("/srv/in/big.iso", "/srv/in/", "big.iso"),
        ("inbox/", "inbox/", "notes.txt"),  // a directory: the source's name
        ("/", "/", "notes.txt"),
        ("a//", "a//", "notes.txt"),
    ])
    func aGuestPathSplitsIntoADirectoryEndingInASlashAndAName(_ path: String, _ directory: String, _ name: String) throws {
        let destination = try FileCopyDestination(guestPath: path, sourcePath: "/home/me/notes.txt")
        #expect(destination.directory == directory)
        #expect(destination.name == name)
        #expect(destination.path == directory + name)
    }

    @Test func pathsThatNameNoFileAreRefused() {
        #expect(throws: FileCopyDestination.Error.emptyPath) { try FileCopyDestination(guestPath: "", sourcePath: "a") }
        #expect(throws: FileCopyDestination.Error.noFileName("in/")) { try FileCopyDestination(guestPath: "in/", sourcePath: "/") }
        #expect(throws: FileCopyDestination.Error.invalidName("..")) { try FileCopyDestination(guestPath: "in/..", sourcePath: "a") }
        #expect(throws: FileCopyDestination.Error.invalidName(".")) { try FileCopyDestination(guestPath: "in/", sourcePath: "x/.") }
    }

    @Test func namesOutsideASCIIAreFlagged() throws {
        #expect(try FileCopyDestination(guestPath: "in/plain.txt", sourcePath: "a").isASCII)
        #expect(try !FileCopyDestination(guestPath: "in/résumé.txt", sourcePath: "a").isASCII)
        #expect(try !FileCopyDestination(guestPath: "données/a.txt", sourcePath: "a").isASCII)
        #expect(try !FileCopyDestination(guestPath: "in/", sourcePath: "/tmp/日本.txt").isASCII)
    }

    /// `--create-path` with nested directories against Linux's rule: the directory goes out
    /// with its trailing `/`, so every missing component is created and the copy lands.
    @Test func nestedCreatePathWorksWithLinuxsDaemonRule() async throws {
        let root = try self.root()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let guest = LinuxRuleFileCopyGuest(root: root)
        let host = FileCopyHost()
        let (bus, _) = try await icBus(host: [host.device], guest: [guest])
        defer { withExtendedLifetime(bus) {} }

        // The emulation is faithful: without the trailing '/', the last directory is never
        // made and START fails, leaving dir1/dir2 behind (what `ctl copy` used to send).
        await #expect(throws: FileCopyHost.CopyError.refused(step: "start", .fail)) {
            try await host.copy([1], name: "f.txt", directory: "old1/old2/old3", flags: .createPath)
        }
        #expect(FileManager.default.fileExists(atPath: root + "/old1/old2"))
        #expect(!FileManager.default.fileExists(atPath: root + "/old1/old2/old3"))

        let data = [UInt8]((0..<10_000).map { UInt8(truncatingIfNeeded: $0) })
        let destination = try FileCopyDestination(guestPath: "dir1/dir2/dir3/f.txt", sourcePath: "/src/f.bin")
        try await host.copy(data, to: destination, flags: .createPath)
        #expect(guest.directories.withLock { $0.last } == "dir1/dir2/dir3/")
        #expect(FileManager.default.contents(atPath: root + "/dir1/dir2/dir3/f.txt").map { [UInt8]($0) } == data)
    }

    /// The same destinations against our guest, which takes the directory with or without the
    /// trailing '/'.
    @Test func ourGuestTakesEveryDestinationForm() async throws {
        let root = try self.root()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let host = FileCopyHost()
        let (bus, _) = try await icBus(host: [host.device], guest: [FileCopyGuest(root: root)])
        defer { withExtendedLifetime(bus) {} }

        for (path, expected) in [("dir1/dir2/dir3/f.txt", "dir1/dir2/dir3/f.txt"), ("inbox/", "inbox/notes.txt"),
                                 ("top.txt", "top.txt"), ("/abs/a.txt", "abs/a.txt"), ("ünï/çødé.txt", "ünï/çødé.txt")] {
            let destination = try FileCopyDestination(guestPath: path, sourcePath: "/home/me/notes.txt")
            try await host.copy(Array(path.utf8), to: destination, flags: .createPath)
            #expect(FileManager.default.contents(atPath: root + "/" + expected).map { [UInt8]($0) } == Array(path.utf8), "\(path)")
        }
        // The directory without its '/' still works here.
        try await host.copy([9], name: "g.txt", directory: "x/y/z", flags: .createPath)
        #expect(FileManager.default.fileExists(atPath: root + "/x/y/z/g.txt"))
    }

    /// A takeover settles the file-copy service first: a copy in progress runs to its end
    /// (settling returns only then), and a copy asked for meanwhile is refused before it sends
    /// anything; once settling is undone, copies work again.
    @Test func settlingLetsACopyFinishAndRefusesNewOnes() async throws {
        let root = try self.root()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let host = FileCopyHost()
        let (bus, _) = try await icBus(host: [host.device], guest: [FileCopyGuest(root: root)])
        defer { withExtendedLifetime(bus) {} }
        let data = (0..<(2 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 >> 3) }
        let (started, startedContinuation) = AsyncStream<Void>.makeStream()
        let finished = Locked(false)
        let copy = Task {
            var told = false
            try await host.copy(data, name: "big.bin", directory: "in", flags: .createPath) { sent, _ in
                if !told {
                    told = true
                    startedContinuation.yield()
                }
            }
            finished.withLock { $0 = true }
        }
        for await _ in started { break }
        #expect(await host.device.settle(timeout: .seconds(60)))
        #expect(finished.withLock { $0 }, "settling returned before the copy ended")
        try await copy.value
        #expect(FileManager.default.contents(atPath: root + "/in/big.bin").map { [UInt8]($0) } == data)
        await #expect(throws: FileCopyHost.CopyError.hostReplaced) {
            try await host.copy([1, 2, 3], name: "late.bin", directory: "in")
        }
        #expect(!FileManager.default.fileExists(atPath: root + "/in/late.bin"))
        host.device.resumeAfterSettle()
        try await host.copy([1, 2, 3], name: "late.bin", directory: "in")
        #expect(FileManager.default.contents(atPath: root + "/in/late.bin").map { [UInt8]($0) } == [1, 2, 3])
    }
}
