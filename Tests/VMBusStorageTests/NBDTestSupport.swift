import Foundation
import VMBusMemory
import VMBusWire

@testable import VMBusStorage

/// A block device over a memory disk for the NBD tests, with knobs the real one lacks: no
/// discard, a small transfer size (so requests split), reads held until a test lets them go,
/// and a count of each call.
final class TestBlockDevice: BlockDevice {
    let inner: BackendBlockDevice
    let supportsDiscard: Bool
    let maximumTransferSectors: Int
    let queueDepth: Int
    /// Reads of these LBAs wait until ``release()``.
    let held: Set<UInt64>
    private let gate = Gate()
    /// Reads, writes, discards and flushes so far.
    let calls = Locked<[String: Int]>([:])
    /// Whether every read yields before it returns (more interleaving between tasks).
    let yieldInReads: Bool

    init(
        _ disk: any DiskBackend, supportsDiscard: Bool = true, maximumTransferSectors: Int = 64, queueDepth: Int = 32,
        held: Set<UInt64> = [], yieldInReads: Bool = false
    ) {
        self.inner = BackendBlockDevice(disk, queueDepth: queueDepth, maximumTransferBytes: maximumTransferSectors * disk.sectorSize)
        self.supportsDiscard = supportsDiscard
        self.maximumTransferSectors = maximumTransferSectors
        self.queueDepth = queueDepth
        self.held = held
        self.yieldInReads = yieldInReads
    }

    var sectorSize: Int { self.inner.sectorSize }
    var sectorCount: UInt64 { self.inner.sectorCount }
    var isReadOnly: Bool { self.inner.isReadOnly }

    /// Lets held reads go.
    func release() { self.gate.open() }

    /// Opens when the first held read reaches the device.
    let heldReadArrived = Gate()

    func count(_ call: String) -> Int { self.calls.withLock { $0[call, default: 0] } }

    func read(lba: UInt64, count: Int) async throws(BlockDeviceError) -> [UInt8] {
        self.calls.withLock { $0["read", default: 0] += 1 }
        if self.held.contains(lba) {
            self.heldReadArrived.open()
            await self.gate.wait()
        }
        let bytes = try await self.inner.read(lba: lba, count: count)
        if self.yieldInReads { await Task.yield() }
        return bytes
    }

    func write(lba: UInt64, _ data: [UInt8], fua: Bool) async throws(BlockDeviceError) {
        self.calls.withLock { $0["write", default: 0] += 1 }
        try await self.inner.write(lba: lba, data, fua: fua)
    }

    func flush() async throws(BlockDeviceError) {
        self.calls.withLock { $0["flush", default: 0] += 1 }
        try await self.inner.flush()
    }

    func discard(lba: UInt64, count: UInt64) async throws(BlockDeviceError) {
        self.calls.withLock { $0["discard", default: 0] += 1 }
        guard self.supportsDiscard else { throw BlockDeviceError.unsupported("discard") }
        try await self.inner.discard(lba: lba, count: count)
    }
}

/// A one-way gate tasks wait at until it opens.
final class Gate: Sendable {
    private let state = Locked<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let open = self.state.withLock { state in
                if !state.open { state.waiters.append(waiter) }
                return state.open
            }
            if open { waiter.resume() }
        }
    }

    func open() {
        let waiters = self.state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// Runs blocking work (socket reads, child processes) on a thread of its own, never on the
/// cooperative pool the server's request tasks need.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.start()
    }
}

/// A temporary directory for sockets and images, removed with its contents.
final class NBDScratch: Sendable {
    let path: String

    init() throws {
        self.path = "/tmp/vmbus-nbd-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: self.path, withIntermediateDirectories: false)
    }

    deinit { try? FileManager.default.removeItem(atPath: self.path) }

    func file(_ name: String) -> String { self.path + "/" + name }
    var socket: String { self.file("nbd.sock") }
    /// The socket's NBD URI.
    var uri: String { "nbd+unix:///?socket=\(self.socket)" }
}

/// A server over a device, listening in a scratch directory.
struct NBDFixture {
    let scratch: NBDScratch
    let disk: any DiskBackend
    let device: any BlockDevice
    let server: NBDServer

    init(disk: any DiskBackend, device: (any BlockDevice)? = nil, exportName: String = "",
         configuration: NBDServer.Configuration = .init()) throws {
        self.scratch = try NBDScratch()
        self.disk = disk
        self.device = device ?? BackendBlockDevice(disk)
        self.server = NBDServer(device: self.device, exportName: exportName, configuration: configuration)
        try self.server.start(.unix(self.scratch.socket))
    }

    /// A fixture over a new all-zero memory disk.
    init(megabytes: Int = 8, sectorSize: Int = 512, readOnly: Bool = false, exportName: String = "") throws {
        let sectors = UInt64(megabytes << 20) / UInt64(sectorSize)
        try self.init(disk: MemoryDisk(sectorCount: sectors, sectorSize: sectorSize, readOnly: readOnly), exportName: exportName)
    }

    func bytes(_ offset: Int, _ count: Int) throws -> [UInt8] { try self.disk.read(at: UInt64(offset), count: count) }
}

/// Deterministic bytes for a test (a linear congruential sequence).
func patternBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return UInt8(truncatingIfNeeded: state >> 33)
    }
}

/// An external program's result.
struct ToolRun: CustomStringConvertible {
    var status: Int32
    var output: String
    var timedOut: Bool
    var description: String { "exit \(status)\(timedOut ? " (timed out)" : ""): \(output)" }
}

/// Runs `program` with `arguments` (stdout and stderr together), killing it after `timeout`.
func runTool(_ program: String, _ arguments: [String], timeout: TimeInterval = 60) async throws -> ToolRun {
    try await offPool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let timedOut = Locked(false)
        let watchdog = DispatchWorkItem {
            timedOut.store(true)
            process.terminate()
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        watchdog.cancel()
        return ToolRun(status: process.terminationStatus, output: String(decoding: output, as: UTF8.self), timedOut: timedOut.load())
    }
}

/// The path of an installed program, or `nil`.
func installedTool(_ name: String) -> String? {
    for directory in ["/usr/bin", "/usr/local/bin", "/bin"] where FileManager.default.isExecutableFile(atPath: directory + "/" + name) {
        return directory + "/" + name
    }
    return nil
}
