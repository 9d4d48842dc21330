import Foundation
import Testing
import VMBusMemory
import VMBusNetwork
import VMBusUio
import VMBusWire

/// DPDK's own netvsc PMD — Debian's build, unmodified — against the uio export, through the
/// preload library: `Scripts/dpdk-probe.c` (a few lines on DPDK's public API: bring port 0 up,
/// send back every frame it receives) is built against the installed libdpdk and run as a
/// child of this test (so the export may read its memory for GPA-direct page lists).
@Suite(.serialized) struct DpdkTests {
    static let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    static let library = Self.directory.appendingPathComponent("libvmbus-uio-preload.so")
    static let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Scripts/dpdk-probe.c").standardized

    /// Whether DPDK (libdpdk and the vmbus bus and netvsc drivers) is installed.
    static let available: Bool = {
        let drivers = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/x86_64-linux-gnu/dpdk")) ?? []
        let hasNetvsc = drivers.contains { directory in
            FileManager.default.fileExists(atPath: "/usr/lib/x86_64-linux-gnu/dpdk/\(directory)/librte_net_netvsc.so")
        }
        return hasNetvsc && run("/bin/sh", ["-c", "command -v cc >/dev/null && pkg-config --exists libdpdk"]) == 0
    }()

    static func run(_ program: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Frames of every size class cross both ways through DPDK: small ones go through send
    /// sections, large ones as GPA-direct page lists naming the program's own memory.
    @Test(.enabled(if: Self.available, "DPDK is not installed (apt-get install dpdk-dev librte-net-netvsc23 librte-bus-vmbus23 librte-mempool-ring23)"))
    func dpdksNetvscReflectsFramesThroughTheExport() async throws {
        try #require(FileManager.default.fileExists(atPath: Self.library.path), "libvmbus-uio-preload.so not built")
        let nic = try ExportedNIC()
        defer { nic.finish() }
        let probe = nic.directory + "-dpdk-probe"
        defer { try? FileManager.default.removeItem(atPath: probe) }
        let built = try await offPool {
            Self.run("/bin/sh", ["-c", "cc -O1 -o '\(probe)' '\(Self.source.path)' $(pkg-config --cflags --libs libdpdk)"])
        }
        try #require(built == 0, "cannot build \(Self.source.path) against libdpdk")
        let frames = (0..<100).map { n in flowFrame(flow: n % 7, n: n, length: [60, 200, 600, 1000, 1514][n % 5]) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: probe)
        // No hugepages, no PCI, nothing in /var/run: IOVA is VA, so page lists carry virtual addresses.
        process.arguments = ["--no-huge", "-m", "128", "--no-pci", "--no-shconf", "-l", "0", "--", "\(frames.count)", "60"]
        process.environment = ProcessInfo.processInfo.environment.merging([
            "LD_PRELOAD": Self.library.path, "VMBUS_UIO_EXPORT": nic.export.directory,
        ]) { _, new in new }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = Pipe()
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        let up = try await offPool { Self.line(output) }
        try #require(up?.hasPrefix("dpdk-probe: up 00:15:5D:12:34:56") == true, "DPDK did not bring the port up: \(up ?? "no output")")
        #expect(nic.device.isReady)
        for frame in frames { nic.wire.send(frame[...]) }
        var back: [[UInt8]] = []
        for _ in frames { back.append(try await nic.frames.take(within: 30)) }
        #expect(back == frames)
        #expect(try await offPool { Self.line(output) } == "dpdk-probe: reflected \(frames.count)")
        #expect(nic.device.statistics[0]?.malformed == 0)
    }

    static func line(_ pipe: Pipe) -> String? {
        var bytes: [UInt8] = []
        while let byte = pipe.fileHandleForReading.readData(ofLength: 1).first, byte != UInt8(ascii: "\n") { bytes.append(byte) }
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }
}

/// Blocking work (a child's pipe, a compiler) on a thread of its own, not the concurrency
/// pool's (one thread per core: blocking one starves the in-process tests beside it).
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}
