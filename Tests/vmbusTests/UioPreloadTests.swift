import Foundation
import Testing

/// `libvmbus-uio-preload.so` lets a uio program written for a real kernel drive
/// `vmbus host --uio-export` unchanged: its sysfs and /dev paths resolve into the export, the
/// node answers uio's 4-byte reads and writes, and map 0 is the channel's rings.
@Suite(.serialized) struct UioPreloadTests {
    /// SwiftPM puts the dynamic library product and the probe next to the vmbus binary.
    static let library = vmbusBinary().deletingLastPathComponent().appendingPathComponent("libvmbus-uio-preload.so")
    static let probe = vmbusBinary().deletingLastPathComponent().appendingPathComponent("uio-probe")

    init() throws {
        try #require(FileManager.default.isExecutableFile(atPath: vmbusBinary().path), "vmbus binary not built")
        try #require(FileManager.default.fileExists(atPath: Self.library.path), "libvmbus-uio-preload.so not built")
        try #require(FileManager.default.isExecutableFile(atPath: Self.probe.path), "uio-probe not built")
    }

    /// A running `vmbus host --uio-export` serving file copy, and its paths.
    struct Host {
        let directory: String
        let socket: String
        let process: Spawned

        init() async throws {
            self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-preload-\(UInt32.random(in: 0...UInt32.max))").path
            self.socket = self.directory + ".sock"
            self.process = try Spawned(["host", "--listen", self.socket, "--uio-export", self.directory, "--log-level", "warning"])
            #expect(await self.process.line() == "vmbus host: admin socket \(self.socket).admin")
            #expect(await self.process.line() == "vmbus host: uio export \(self.directory)/sys")
            #expect(await self.process.line() == "vmbus host: listening on \(self.socket)")
        }

        /// The probe (or any program) with the preload library pointed at this export.
        func spawnPreloaded(_ executable: URL, _ arguments: [String] = []) throws -> Spawned {
            try Spawned(arguments, executable: executable, environment: [
                "LD_PRELOAD": UioPreloadTests.library.path, "VMBUS_UIO_EXPORT": self.directory,
            ])
        }

        func stop() async {
            self.process.kill(SIGTERM)
            #expect(await self.process.finish().status == 0)
            try? FileManager.default.removeItem(atPath: self.directory)
        }
    }

    /// The probe uses only what a uio driver uses (opendir of the device's `uio` directory,
    /// fopen of `/sys/class/uio/uioN/maps/map0/size`, open of `/dev/uioN`, mmap of map 0, a
    /// 4-byte write to unmask, 4-byte preads to wait) and answers the IC negotiation from the
    /// mapped ring. The host then sends a file-copy START — only a negotiated host does — which
    /// the probe refuses with "file exists", and `vmbus ctl copy` reports that refusal.
    @Test func anUnmodifiedUioProgramNegotiatesThroughThePreloadLibrary() async throws {
        let host = try await Host()
        let source = host.directory + "-source.txt"
        try Data("hello".utf8).write(to: URL(fileURLWithPath: source))
        defer { try? FileManager.default.removeItem(atPath: source) }
        let probe = try host.spawnPreloaded(Self.probe)
        #expect(await probe.line() == "opened /dev/uio0, map 0 is 32768 bytes")
        #expect(await probe.line() == "negotiated framework 3.0, file copy 1.1")
        let copy = try await Spawned(["ctl", "copy", "--host", host.socket + ".admin", "--guest", "uio", source, "x.txt"]).finish()
        #expect(copy.status == 1 && copy.errors.contains("the file exists"), "\(copy.errors)")
        #expect(await probe.line() == "file copy operation 0")
        let finished = await probe.finish()
        #expect(finished.status == 0, "\(finished.output) \(finished.errors)")
        await host.stop()
    }
}

extension UioPreloadTests {
    /// What the export cannot back fails as uio fails (EINVAL for a map it has not, or a read
    /// that is not 4 bytes), and a rescind — here the host stopping — ends reads with EIO.
    @Test func unbackedMapsWrongSizesAndTheRescindFailAsOnAKernel() async throws {
        let host = try await Host()
        let probe = try host.spawnPreloaded(Self.probe, ["--edges"])
        #expect(await probe.line() == "opened /dev/uio0, map 0 is 32768 bytes")
        #expect(await probe.line() == "mmap of map 3: Invalid argument")
        #expect(await probe.line() == "read of 8 bytes: Invalid argument")
        #expect(await probe.line() == "waiting for the rescind")
        await host.stop()
        #expect(await probe.line() == "pread after the rescind: Input/output error")
        #expect(await probe.finish().status == 0)
    }
}
