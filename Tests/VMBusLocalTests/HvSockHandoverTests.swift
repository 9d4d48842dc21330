import Foundation
import Testing
import VMBusChannel
import VMBusDevices
import VMBusGuest
import VMBusHost
import VMBusLocal
import VMBusMemory
import VMBusWire

/// hvsock connections handed to a new `LocalHost` in the same process half-way through their
/// streams: the echo stream returns every byte in order, the discard stream counts every
/// byte, and the guest's streams never notice.
@Suite(.serialized) struct HvSockHandoverTests {
    /// Where each host's plain listener on port 5000 puts its streams (the test reads them).
    static let plainStreams = Locked<[HvSocketStream]>([])

    /// hvsock with the echo and discard services, and a plain listener on port 5000 whose
    /// streams only the test reads (a program's own streams, which cannot be carried).
    static let devices: @Sendable (HostBus) -> [any HostDevice] = { bus in
        let sockets = HvSocketHost(bus: bus, linger: .seconds(2))
        HvSocketServices.start(on: sockets)
        let plain = sockets.listen(port: 5000)
        Task {
            defer { withExtendedLifetime(sockets) {} }
            while let stream = try? await plain.accept() { Self.plainStreams.withLock { $0.append(stream) } }
        }
        return []
    }

    static func bytes(_ count: Int, seed: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761 &+ seed) >> 11) }
    }

    static func connectGuest(_ path: String) async throws -> (LocalGuest, HvSocketGuest) {
        let guest = try LocalGuest.connect(path: path, memoryBytes: 16 << 20)
        let sockets = HvSocketGuest(bus: guest.bus, closeTimeout: .seconds(2))
        guest.bus.register(sockets)
        _ = try await guest.bus.connect()
        return (guest, sockets)
    }

    @Test func streamsHalfWayAreCarriedByteExact() async throws {
        let path = socketPath()
        let old = try LocalHost(path: path, devices: Self.devices)
        old.start()
        let (guest, sockets) = try await Self.connectGuest(path)
        // A lost stream must fail the test, not hang it.
        let watchdog = Task {
            try await Task.sleep(for: .seconds(120))
            guest.hangUp()
        }
        defer { watchdog.cancel() }

        let echoData = Self.bytes(3 << 20, seed: 1)
        let discardData = Self.bytes(5 << 20 + 123, seed: 2)
        let echo = try await sockets.connect(port: HvSocketServices.echoPort)
        let discard = try await sockets.connect(port: HvSocketServices.discardPort)
        let echoed = Task { () async throws -> [UInt8] in try await echo.readAll() }
        let half = (echoData.count / 2, discardData.count / 2)
        try await echo.write(echoData[..<half.0])
        try await discard.write(discardData[..<half.1])

        let new = try await old.handOverInProcess(path: path, devices: Self.devices)

        try await echo.write(echoData[half.0...])
        try await echo.shutdownWrite()
        try await discard.write(discardData[half.1...])
        try await discard.shutdownWrite()
        let back = try await echoed.value
        let count = try await discard.readAll()
        var reader = WireReader(count)
        #expect(count.count == 8 && (try? reader.readUInt64()) == UInt64(discardData.count), "the count spans both hosts")
        let same = back == echoData
        #expect(same, "\(back.count) of \(echoData.count) bytes came back; first difference at \(String(describing: zip(back, echoData).enumerated().first { $0.element.0 != $0.element.1 }?.offset))")
        await echo.close()
        await discard.close()

        // The new host serves new connections too.
        let again = try await sockets.connect(port: HvSocketServices.echoPort)
        try await again.write(Array("after the takeover".utf8))
        try await again.shutdownWrite()
        #expect(try await again.readAll() == Array("after the takeover".utf8))
        await again.close()
        guest.disconnect()
        new.stop()
    }

    /// A stream a program reads itself cannot be carried: the hand-over is refused, naming
    /// it, and the old host serves on — the stream included.
    @Test func aProgramsOwnStreamRefusesTheHandover() async throws {
        let path = socketPath()
        let old = try LocalHost(path: path, devices: Self.devices)
        old.start()
        let (guest, sockets) = try await Self.connectGuest(path)
        let before = Self.plainStreams.withLock { $0.count }
        let client = try await sockets.connect(port: 5000)
        while Self.plainStreams.withLock({ $0.count }) == before { await Task.yield() }
        let server = try #require(Self.plainStreams.withLock { $0.last })
        // The program waits in a read, as a server does.
        let read = Task { try await server.read() }
        do {
            _ = try await old.prepareHandover(timeout: .seconds(5))
            Issue.record("a program's stream was handed over")
        } catch {
            #expect(error.description.contains("belongs to a program that cannot hand it over"), "\(error)")
        }
        try await client.write(Array("still here".utf8))
        #expect(try await read.value == Array("still here".utf8)[...])
        await client.close()
        guest.disconnect()
        old.stop()
    }
}
