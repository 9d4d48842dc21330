import Foundation
import Testing
import VMBusMemory

@testable import VMBusStorage

/// Real clients against the server over a memory disk: qemu-io, qemu-img, nbdinfo and fio's
/// nbd engine (Debian's qemu-utils, libnbd-bin, fio). Each test skips when its tool is missing,
/// checks the tool's exit status and output, and checks the disk's bytes directly.
@Suite struct NBDToolTests {
    static let qemuIO = installedTool("qemu-io")
    static let qemuImg = installedTool("qemu-img")
    static let nbdinfo = installedTool("nbdinfo")
    static let fio: String? = {
        // The nbd engine is a separate module in some builds.
        guard let fio = installedTool("fio") else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: fio)
        process.arguments = ["--enghelp=nbd"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        process.waitUntilExit()
        return process.terminationStatus == 0 ? fio : nil
    }()

    @Test(.enabled(if: Self.qemuIO != nil, "qemu-io is not installed (apt-get install qemu-utils)"))
    func qemuIOWritesAndVerifiesAPattern() async throws {
        let fixture = try NBDFixture()
        let run = try await runTool(Self.qemuIO!, [
            "-f", "raw", "-c", "write -P 0xab 0 1M", "-c", "read -P 0xab 0 1M", "-c", "read -P 0 1M 4k", fixture.scratch.uri,
        ])
        #expect(run.status == 0 && !run.output.contains("Pattern verification failed"), "\(run)")
        #expect(run.output.contains("wrote 1048576/1048576 bytes at offset 0"), "\(run)")
        #expect(run.output.contains("read 1048576/1048576 bytes at offset 0"), "\(run)")
        // Across the end of what was written: qemu-io's check does fail when it should.
        let wrong = try await runTool(Self.qemuIO!, ["-f", "raw", "-c", "read -P 0xab 1048064 1024", fixture.scratch.uri])
        #expect(wrong.status != 0 && wrong.output.contains("Pattern verification failed at offset 1048064"), "\(wrong)")
        #expect(try fixture.bytes(0, 1 << 20).allSatisfy { $0 == 0xab })
        #expect(try fixture.bytes(1 << 20, 4096).allSatisfy { $0 == 0 })
        await fixture.server.stop()
        #expect(fixture.server.statistics.protocolViolations == 0)
    }

    @Test(.enabled(if: Self.qemuIO != nil, "qemu-io is not installed (apt-get install qemu-utils)"))
    func qemuIOUnalignedWritesLandByteExactly() async throws {
        let fixture = try NBDFixture(sectorSize: 4096)
        let run = try await runTool(Self.qemuIO!, [
            "-f", "raw", "-c", "write -P 0x11 100 1000", "-c", "write -P 0x22 5000 3", "-c", "write -P 0x33 8191 2",
            "-c", "read -P 0x11 100 1000", "-c", "read -P 0x22 5000 3", "-c", "read -P 0x33 8191 2", fixture.scratch.uri,
        ])
        #expect(run.status == 0 && !run.output.contains("failed"), "\(run)")
        var model = [UInt8](repeating: 0, count: 16384)
        model.replaceSubrange(100..<1100, with: repeatElement(0x11, count: 1000))
        model.replaceSubrange(5000..<5003, with: repeatElement(0x22, count: 3))
        model.replaceSubrange(8191..<8193, with: repeatElement(0x33, count: 2))
        #expect(try fixture.bytes(0, 16384) == model)
        await fixture.server.stop()
    }

    /// A raw image with data and holes copied onto a disk full of 0xee: the holes must be
    /// zeroed by the copy (write-zeroes), and `qemu-img compare` finds the two identical.
    @Test(.enabled(if: Self.qemuImg != nil, "qemu-img is not installed (apt-get install qemu-utils)"))
    func qemuImgConvertAndCompare() async throws {
        let size = 6 << 20
        var image = patternBytes(size, seed: 42)
        image.replaceSubrange((1 << 20)..<(3 << 20), with: repeatElement(0, count: 2 << 20))
        image.replaceSubrange((5 << 20) + 12345..<(5 << 20) + 70000, with: repeatElement(0, count: 70000 - 12345))
        let fixture = try NBDFixture(disk: try MemoryDisk(contents: [UInt8](repeating: 0xee, count: size)))
        let source = fixture.scratch.file("source.raw")
        try Data(image).write(to: URL(fileURLWithPath: source))
        let convert = try await runTool(Self.qemuImg!, ["convert", "-n", "-f", "raw", "-O", "raw", source, fixture.scratch.uri])
        #expect(convert.status == 0, "\(convert)")
        let compare = try await runTool(Self.qemuImg!, ["compare", "-f", "raw", "-F", "raw", source, fixture.scratch.uri])
        #expect(compare.status == 0 && compare.output.contains("Images are identical"), "\(compare)")
        // A boolean: a failing comparison of megabytes would have the test library diff them for ever.
        let same = try fixture.bytes(0, size) == image
        #expect(same)
        await fixture.server.stop()
        #expect(fixture.server.statistics.errors == 0)
    }

    @Test(.enabled(if: Self.nbdinfo != nil, "nbdinfo is not installed (apt-get install libnbd-bin)"))
    func nbdinfoShowsSizeBlockSizesAndWritability() async throws {
        for readOnly in [false, true] {
            let fixture = try NBDFixture(megabytes: 3, sectorSize: 4096, readOnly: readOnly, exportName: "vmbus")
            let uri = "nbd+unix:///vmbus?socket=\(fixture.scratch.socket)"
            let run = try await runTool(Self.nbdinfo!, ["--json", uri])
            #expect(run.status == 0, "\(run)")
            let json = try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any]
            let export = (json?["exports"] as? [[String: Any]])?.first
            #expect(export?["export-name"] as? String == "vmbus")
            #expect(export?["export-size"] as? Int == 3 << 20)
            #expect(export?["is_read_only"] as? Bool == readOnly)
            #expect(export?["can_trim"] as? Bool == !readOnly)
            #expect(export?["can_zero"] as? Bool == !readOnly)
            #expect(export?["can_multi_conn"] as? Bool == true)
            #expect(export?["block_size_minimum"] as? Int == 4096)
            #expect(export?["block_size_maximum"] as? Int == 32 << 20)
            await fixture.server.stop()
        }
    }

    @Test(.enabled(if: Self.qemuIO != nil, "qemu-io is not installed (apt-get install qemu-utils)"))
    func aReadOnlyExportRefusesQemuIOsWrite() async throws {
        let fixture = try NBDFixture(megabytes: 1, readOnly: true)
        let run = try await runTool(Self.qemuIO!, ["-f", "raw", "-c", "write -P 0x55 0 4096", fixture.scratch.uri])
        #expect(run.status != 0 || run.output.localizedCaseInsensitiveContains("read-only"), "\(run)")
        #expect(!run.output.contains("wrote 4096/4096"), "\(run)")
        #expect(try fixture.bytes(0, 4096).allSatisfy { $0 == 0 })
        await fixture.server.stop()
    }

    /// fio's nbd engine, 16 requests deep: random writes verified by CRC on read-back, then
    /// random mixed I/O from two jobs (two connections) verified the same way.
    @Test(.enabled(if: Self.fio != nil, "fio with its nbd engine is not installed (apt-get install fio)"))
    func fioRandomIOWithVerification() async throws {
        let fixture = try NBDFixture(megabytes: 32)
        for (name, extra) in [("randwrite", ["--rw=randwrite", "--numjobs=1"]), ("randrw", ["--rw=randrw", "--numjobs=2", "--offset_increment=16M"])] {
            let run = try await runTool(Self.fio!, [
                "--name=\(name)", "--ioengine=nbd", "--uri=\(fixture.scratch.uri)", "--bs=4k", "--iodepth=16", "--size=16M",
                "--verify=crc32c", "--verify_fatal=1", "--verify_state_save=0", "--output-format=normal",
            ] + extra, timeout: 120)
            #expect(run.status == 0, "\(run)")
            #expect(!run.output.contains("verify:") && !run.output.contains("bad magic"), "\(run)")
            #expect(run.output.contains("err= 0"), "\(run)")
        }
        await fixture.server.stop()
        let statistics = fixture.server.statistics
        #expect(statistics.errors == 0 && statistics.protocolViolations == 0)
        #expect(statistics.writes >= 4096 && statistics.reads >= 4096, "\(statistics)")
        #expect(statistics.connectionsAccepted >= 3, "\(statistics)")
    }
}
