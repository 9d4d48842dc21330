import Foundation
import Testing

/// The whole storage stack with clients nobody here wrote: `vmbus host --disk FILE` serving a
/// disk file, `vmbus guest --disk-nbd SOCKET` driving it over VMBus and serving it over NBD,
/// and qemu-io, qemu-img, nbdinfo and fio using it. At the end the host's file holds exactly
/// what the clients wrote. Each test skips, with the reason, without its tools.
@Suite(.serialized) struct StorageProcessTests {
    static func tool(_ name: String) -> String? {
        ["/usr/bin", "/usr/local/bin", "/bin"].map { $0 + "/" + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
    static let hasQemu = tool("qemu-io") != nil && tool("qemu-img") != nil && tool("timeout") != nil
    static let hasAll = hasQemu && tool("nbdinfo") != nil && tool("fio") != nil

    /// A host serving `disk` (with `options`), and a guest serving it over NBD.
    struct Stack {
        let directory: String
        let host: Spawned
        let guest: Spawned
        let admin: String
        let uri: String

        static func start(diskOptions: String = ",size=64M", guestArguments: [String] = []) async throws -> Stack? {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-storage-\(UInt32.random(in: 0...UInt32.max))").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
            return try await Self.start(in: directory, diskOptions: diskOptions, guestArguments: guestArguments)
        }

        static func start(in directory: String, diskOptions: String, guestArguments: [String] = []) async throws -> Stack? {
            let socket = directory + "/host.sock"
            let host = try Spawned(["host", "--listen", socket, "--device", "ic", "--disk", directory + "/disk.img" + diskOptions, "--log-level", "warning"])
            guard await NetworkProcessTests.waitFor("listening on", in: host) != nil else {
                Issue.record("the host did not start: \(await host.finish().errors)")
                return nil
            }
            let nbd = directory + "/nbd.sock"
            let guest = try Spawned(["guest", "--connect", socket, "--memory", "64M", "--disk-nbd", nbd] + guestArguments)
            guard let line = await NetworkProcessTests.waitFor("NBD on", in: guest) else {
                Issue.record("the guest's disk did not come up: \(await guest.finish().errors)")
                return nil
            }
            #expect(line.contains("protocol 6.0"), "\(line)")
            return Stack(directory: directory, host: host, guest: guest, admin: socket + ".admin", uri: "nbd+unix:///?socket=\(nbd)")
        }

        var diskPath: String { self.directory + "/disk.img" }

        /// Stops the guest, then the host (which flushes its disks), both cleanly.
        func stop() async {
            self.guest.kill(SIGTERM)
            #expect(await self.guest.finish().status == 0)
            self.host.kill(SIGTERM)
            #expect(await self.host.finish().status == 0)
        }

        func remove() { try? FileManager.default.removeItem(atPath: self.directory) }
    }

    /// Runs a tool under `timeout` (a hung tool fails the test instead of hanging it).
    static func run(_ name: String, _ arguments: [String], seconds: Int = 120) async throws -> (status: Int32, output: String) {
        let tool = try #require(Self.tool(name))
        let result = await (try Spawned([String(seconds), tool] + arguments, executable: URL(fileURLWithPath: "/usr/bin/timeout"))).finish()
        return (result.status, result.output + result.errors)
    }

    @Test(.enabled(if: Self.hasAll, "needs qemu-utils, libnbd-bin and fio (apt-get install qemu-utils libnbd-bin fio)"))
    func realClientsReadAndWriteTheHostsDiskFile() async throws {
        guard let stack = try await Stack.start(guestArguments: ["--disk-queues", "2"]) else { return }
        defer { stack.remove() }

        // nbdinfo: the size the host gave the file, writable, with flush, FUA and trim.
        let info = try await Self.run("nbdinfo", ["--json", stack.uri])
        #expect(info.status == 0, "\(info.output)")
        #expect(info.output.contains("\"export-size\": 67108864") && info.output.contains("\"is_read_only\": false"), "\(info.output)")
        #expect(info.output.contains("\"can_flush\": true") && info.output.contains("\"can_trim\": true"), "\(info.output)")

        // qemu-io: patterns written and verified by qemu-io itself, aligned and not.
        let io = try await Self.run("qemu-io", [
            "-f", "raw", stack.uri, "-c", "write -P 0xab 0 1M", "-c", "read -P 0xab 0 1M",
            "-c", "write -P 0x5c 3M 4k", "-c", "write -P 0x11 100 1000", "-c", "read -P 0x11 100 1000", "-c", "flush",
        ])
        #expect(io.status == 0 && !io.output.contains("failed") && !io.output.contains("error"), "\(io.output)")

        // qemu-img: a random image (with a hole) converted onto the disk, compared back.
        let source = stack.directory + "/source.raw"
        var image = (0..<(8 << 20)).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) }
        image.replaceSubrange((2 << 20)..<(3 << 20), with: repeatElement(0, count: 1 << 20))
        try Data(image).write(to: URL(fileURLWithPath: source))
        let convert = try await Self.run("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", source, stack.uri])
        #expect(convert.status == 0, "\(convert.output)")
        let compare = try await Self.run("qemu-img", ["compare", "-f", "raw", "-F", "raw", source, stack.uri])
        #expect(compare.status == 0 && compare.output.contains("Images are identical"), "\(compare.output)")

        // fio: random reads and writes, 16 in flight, every block verified.
        let fio = try await Self.run("fio", [
            "--name=vmbus", "--ioengine=nbd", "--uri=\(stack.uri)", "--rw=randrw", "--bs=4k", "--iodepth=16", "--size=16M",
            "--offset=16M", "--verify=crc32c", "--verify_state_save=0", "--output-format=terse",
        ], seconds: 180)
        #expect(fio.status == 0 && !fio.output.contains("verify:"), "\(fio.output)")

        let stat = await (try Spawned(["disk", "stat", "--host", stack.admin])).finish()
        #expect(stat.status == 0 && stat.output.contains("guest 1: protocol 6.0, ready") && stat.output.contains("malformed 0"), "\(stat.output)")
        #expect(stat.output.contains("queue 1:"), "two queues: \(stat.output)")
        await stack.stop()

        // The host's file, read directly: exactly what the clients left there.
        let disk = try Data(contentsOf: URL(fileURLWithPath: stack.diskPath))
        #expect(disk.count == 64 << 20)
        // Compared as booleans: a failing comparison of megabytes would make the test library
        // compute their difference for ever.
        let written = Array(disk[0..<(8 << 20)])
        let same = written == image
        #expect(same, "first difference at \(String(describing: zip(written, image).enumerated().first { $0.element.0 != $0.element.1 }?.offset))")
        let untouched = disk[(8 << 20)..<(16 << 20)].allSatisfy { $0 == 0 }
        #expect(untouched)
    }

    @Test(.enabled(if: Self.hasQemu && tool("nbdinfo") != nil, "needs qemu-utils and libnbd-bin"))
    func aReadOnlyDiskStaysUnchanged() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-storage-ro-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let contents = Data((0..<(4 << 20)).map { UInt8(truncatingIfNeeded: $0 >> 9) })
        try contents.write(to: URL(fileURLWithPath: directory + "/disk.img"))
        guard let stack = try await Stack.start(in: directory, diskOptions: ",ro") else { return }
        let info = try await Self.run("nbdinfo", ["--json", stack.uri])
        #expect(info.output.contains("\"is_read_only\": true"), "\(info.output)")
        let write = try await Self.run("qemu-io", ["-f", "raw", stack.uri, "-c", "write -P 0xab 0 4k"])
        #expect(write.status != 0 || write.output.contains("failed") || write.output.contains("read-only") || write.output.contains("Read-only"), "\(write.output)")
        let read = try await Self.run("qemu-io", ["-r", "-f", "raw", stack.uri, "-c", "read -P 0x01 512 512"])
        #expect(read.status == 0 && !read.output.contains("failed"), "\(read.output)")
        await stack.stop()
        let unchanged = try Data(contentsOf: URL(fileURLWithPath: directory + "/disk.img")) == contents
        #expect(unchanged)
    }

    /// `vmbus ctl service` replaces the host while qemu-io writes and reads through the guest's
    /// NBD export, pausing between commands so that the takeover lands mid-run: qemu-io checks
    /// every read against its pattern, none fails, and the disk file holds the last pattern of
    /// every block.
    @Test(.enabled(if: Self.hasQemu, "needs qemu-utils (apt-get install qemu-utils)"))
    func theHostIsReplacedWhileQemuIOWritesAndReads() async throws {
        guard let stack = try await Stack.start(diskOptions: ",size=8M") else { return }
        defer { stack.remove() }
        let (blocks, rounds) = (64, 600)
        func patternByte(_ round: Int) -> Int { round % 251 + 1 }
        var commands: [String] = []
        for round in 0..<rounds {
            let offset = (round % blocks) * 65536
            commands += ["-c", "write -P \(patternByte(round)) \(offset) 64k", "-c", "read -P \(patternByte(round)) \(offset) 64k", "-c", "sleep 10"]
        }
        let tool = try #require(Self.tool("qemu-io"))
        let qemu = try Spawned(["180", tool, "-f", "raw", stack.uri] + commands, executable: URL(fileURLWithPath: "/usr/bin/timeout"))
        #expect(await NetworkProcessTests.waitFor("wrote", in: qemu) != nil)
        let service = try await ctl(["service"], admin: stack.admin)
        #expect(service.status == 0 && service.output.contains("taken over by the new host"), "\(service.output)\(service.errors)")
        #expect(qemu.process.isRunning, "the takeover landed after qemu-io had finished: it proves nothing")
        let report = await stack.host.line() ?? ""
        #expect(report.hasPrefix("vmbus host: pid ") && report.contains("took over"), "\(report)")
        let current = Int32(report.split(separator: " ").dropFirst(3).first ?? "") ?? 0
        let io = await qemu.finish()
        #expect(io.status == 0 && !io.output.contains("failed") && !io.errors.contains("error"), "\(io.output.suffix(2000))\(io.errors)")
        #expect(io.output.components(separatedBy: "read 65536/65536 bytes").count - 1 == rounds, "every read came back")

        stack.guest.kill(SIGTERM)
        #expect(await stack.guest.finish().status == 0)
        #expect(current > 0)
        kill(current, SIGTERM)
        #expect(await stack.host.finish().status == 0)
        let disk = [UInt8](try Data(contentsOf: URL(fileURLWithPath: stack.diskPath)))
        for block in 0..<blocks {
            let last = UInt8(patternByte(rounds - 1 - (rounds - 1 - block) % blocks))
            let intact = disk[(block * 65536)..<((block + 1) * 65536)].allSatisfy { $0 == last }
            #expect(intact, "block \(block) does not hold pattern \(last)")
        }
    }
}
