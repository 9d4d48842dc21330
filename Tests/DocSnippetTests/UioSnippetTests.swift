// The program of the article "Driving a uio device" (Sources/VMBusUio/Docs.docc), run against
// a fake uio_hv_generic tree that a user-space host serves (UioExport).
import Foundation
import Testing
import VMBusChannel
import VMBusUio
import VMBusWire

/// Sends `text` to the uppercase device that `uio_hv_generic` holds under `root`.
func uppercaseOverUio(_ text: String, root: String = "/sys") async throws -> String {
    let device = try UioDevice.find(root: root, classID: Uppercase.classID)
    let uio = try UioChannel(device)  // opens /dev/uioN: the kernel opens the channel
    defer { uio.close() }  // closes the node: the kernel closes the channel, the reader ends
    // The reader hands each completion to the request waiting for it.
    Task { _ = try? await uio.channel.receive { _ in } }
    let bytes = Array(text.utf8)
    let answer = try await uio.channel.request(bytes[...])
    return String(decoding: answer.prefix(bytes.count), as: UTF8.self)
}

@Suite struct UioSnippetTests {
    @Test func theProgramDrivesAnExportedDevice() async throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("vmbus-doc-uio-\(UInt32.random(in: 0...UInt32.max))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let export = try UioExport(directory: directory)
        defer { export.stop() }
        try export.export(UppercaseDevice(instance: GUID(data1: 1, data2: 0, data3: 0, data4: 0)), relid: 5, index: 0, ringSize: 16384)
        #expect(try await uppercaseOverUio("through uio", root: export.sysfsRoot) == "THROUGH UIO")
        // The node can be opened again, as a restarted program would.
        #expect(try await uppercaseOverUio("again", root: export.sysfsRoot) == "AGAIN")
    }

    @Test func aTreeWithoutTheDeviceSaysWhatIsMissing() async throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("vmbus-doc-uio-\(UInt32.random(in: 0...UInt32.max))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let export = try UioExport(directory: directory)
        defer { export.stop() }
        await #expect(throws: UioError.self) { try await uppercaseOverUio("nobody", root: export.sysfsRoot) }
    }
}
