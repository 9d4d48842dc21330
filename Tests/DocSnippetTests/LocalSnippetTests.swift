// The host process of the article "Attaching a C program through spec 09"
// (Sources/VMBusLocal/Docs.docc), and a Swift guest process standing in for the C one.
import Foundation
import Testing
import VMBusDevices
import VMBusGuest
import VMBusHost
import VMBusLocal
import VMBusWire

/// Serves the uppercase device to every guest process that connects to `path`.
func serveUppercase(at path: String) throws -> LocalHost {
    let host = try LocalHost(path: path) { _ in
        [UppercaseDevice(instance: GUID(data1: 1, data2: 0, data3: 0, data4: 0))]
    }
    host.start()
    return host
}

/// A socket path of its own for each test.
func snippetSocketPath() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-doc-\(UInt32.random(in: 0...UInt32.max)).sock").path
}

/// Runs `program` to its end on a thread of its own (not the concurrency pool, which a
/// blocking wait would starve on two cores): its exit status and standard output.
func runProgram(_ program: URL, _ arguments: [String]) async throws -> (status: Int32, output: String) {
    try await withCheckedThrowingContinuation { (done: CheckedContinuation<(status: Int32, output: String), any Error>) in
        Thread {
            done.resume(
                with: Result {
                    let process = Process()
                    let output = Pipe()
                    process.executableURL = program
                    process.arguments = arguments
                    process.standardOutput = output
                    try process.run()
                    let bytes = output.fileHandleForReading.readDataToEndOfFile()
                    process.waitUntilExit()
                    return (process.terminationStatus, String(decoding: bytes, as: UTF8.self))
                })
        }.start()
    }
}

@Suite(.serialized) struct LocalSnippetTests {
    /// The article's C guest (Tests/doc-c-guest), built beside the test bundle.
    static let cGuest = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        .appendingPathComponent("doc-c-guest")

    @Test func theCProgramAttachesAndGetsItsAnswer() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.cGuest.path), "doc-c-guest not built")
        let path = snippetSocketPath()
        let host = try serveUppercase(at: path)
        defer { host.stop() }
        let (status, output) = try await runProgram(Self.cGuest, [path, "hello from c, through spec 09"])
        #expect(status == 0)
        #expect(output == "HELLO FROM C, THROUGH SPEC 09\n")
        // Its GOODBYE released the connection: the host serves the next guest.
        await host.idle()
        #expect(host.servedCount == 1)
        let again = try await runProgram(Self.cGuest, [path, "again"])
        #expect(again.status == 0 && again.output == "AGAIN\n")
    }

    @Test func aGuestProcessReachesTheDeviceThroughTheSocket() async throws {
        let path = snippetSocketPath()
        let host = try serveUppercase(at: path)
        defer { host.stop() }
        let guest = try LocalGuest.connect(path: path, memoryBytes: 16 << 20)
        let driver = UppercaseDriver()
        guest.bus.register(driver)
        _ = try await guest.bus.connect()
        await guest.bus.settle()
        #expect(try await driver.uppercase("over spec 09") == "OVER SPEC 09")
        #expect(host.guests.count == 1)
        guest.disconnect()
        #expect(await guest.ended() == .local)
        await host.idle()
        #expect(host.servedCount == 1)
    }
}
