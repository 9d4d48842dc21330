import Foundation
import Testing
import VMBusChannel
import VMBusDevices
import VMBusGuest
import VMBusHost
import VMBusLocal
import VMBusMemory
import VMBusWire

/// A guest hibernates to a file and a new guest resumes from it (docs/SERVICING.md): memory
/// comes back byte for byte with its pages in use, each device goes back to its driver by
/// class and instance GUID, and the integration services start again with a timesync SYNC.
@Suite(.serialized) struct HibernationTests {
    static func host(_ path: String) throws -> LocalHost {
        let host = try LocalHost(path: path) { bus in
            let echo = EchoDevice(instance: GUID(data1: 0xE, data2: 1, data3: 1, data4: 1))
            echo.attach(to: bus)
            let heartbeat = HeartbeatHost()
            let timeSync = TimeSyncHost()
            // The SYNC that follows every open (06 §5); samples far apart.
            _ = timeSync.start(interval: .seconds(3600))
            return [echo, heartbeat.device, timeSync.device]
        }
        host.start()
        return host
    }

    @Test func aGuestHibernatesAndResumesWithItsMemoryAndDevices() async throws {
        let path = socketPath()
        let host = try Self.host(path)
        defer { host.stop() }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-hibernate-\(UInt32.random(in: 0...UInt32.max))").path
        defer { try? FileManager.default.removeItem(atPath: file) }

        let guest = try LocalGuest.connect(path: path, memoryBytes: 8 << 20, monitorPages: true)
        let echo = EchoClient(pages: RingPages(each: 2))
        guest.bus.register(echo)
        guest.bus.register(ICGuestDriver(HeartbeatGuest()))
        let syncs = Locked(0)
        guest.bus.register(ICGuestDriver(TimeSyncGuest { _ in syncs.withLock { $0 += 1 } }))
        _ = try await guest.bus.connect()
        await guest.bus.settle()
        #expect(try await echo.echo([1, 2, 3, 4, 5, 6, 7, 8]) == [1, 2, 3, 4, 5, 6, 7, 8])
        // What the guest's own software keeps in memory: three pages it allocated and filled.
        let marker = try guest.memory.allocate(pages: 3)
        let pattern = (0..<(3 * 4096)).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }
        try guest.memory.memory.write(pattern[...], at: marker.offset)
        let freeBefore = guest.memory.freePages

        let saved = try await guest.hibernate(to: file)
        #expect(await guest.ended() == .local)
        #expect(Set(saved.devices.map(\.driver)) == ["echo", "hv_utils-heartbeat", "hv_utils-timesync"])
        await host.idle()

        let (memory, restored) = try LocalGuest.readHibernation(file)
        #expect(restored == saved)
        var bytes = [UInt8](repeating: 0, count: pattern.count)
        try memory.memory.read(at: marker.offset, count: pattern.count, into: &bytes)
        #expect(bytes == pattern, "guest memory comes back byte for byte")
        // The bus gave its monitor pages and rings back before hibernating: only the guest's
        // own pages stay in use.
        #expect(memory.allocatedBuffers == [marker])
        #expect(memory.freePages == memory.pageCount - 1 - 3 && memory.freePages > freeBefore)

        let resumed = try LocalGuest.connect(path: path, memory: memory, monitorPages: true)
        let echoAgain = EchoClient(pages: RingPages(each: 2))
        resumed.bus.register(echoAgain)
        resumed.bus.register(ICGuestDriver(HeartbeatGuest()))
        let syncsAfter = Progress()
        let timeSync = TimeSyncGuest { _ in syncsAfter.add() }
        resumed.bus.register(ICGuestDriver(timeSync))
        let (back, missing) = try await resumed.bus.resume(restored)
        #expect(missing.isEmpty)
        #expect(Set(back.map(\.instanceID)) == Set(saved.devices.map(\.instanceID)))
        #expect(resumed.bus.version == saved.version)
        #expect(try await echoAgain.echo([9, 8, 7, 6, 5, 4, 3, 2]) == [9, 8, 7, 6, 5, 4, 3, 2])
        // The host's time service opens with a SYNC; the guest answers it. (A watchdog ends
        // the wait if it never comes, so the test fails instead of hanging.)
        let watchdog = Task {
            try await Task.sleep(for: .seconds(60))
            syncsAfter.add()
        }
        await syncsAfter.wait(for: 1)
        watchdog.cancel()
        #expect(timeSync.samples >= 1)
        resumed.disconnect()
    }

    @Test func aDamagedHibernationFileIsRefused() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-hibernate-bad-\(UInt32.random(in: 0...UInt32.max))").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        var w = StateWriter()
        w.write(1, UInt64(1 << 20))
        w.nested(3) { GuestHibernation(version: .copper, devices: []).save(into: &$0) }
        let good = SavedStateFile(kind: .guest, body: w.bytes).encode()
        // The memory image is missing: the file ends after the state.
        #expect(FileManager.default.createFile(atPath: file, contents: Data(good)))
        #expect(throws: SavedStateError.self) { _ = try LocalGuest.readHibernation(file) }
        var damaged = good
        damaged[damaged.count - 3] ^= 1
        #expect(FileManager.default.createFile(atPath: file, contents: Data(damaged + [UInt8](repeating: 0, count: 1 << 20))))
        #expect(throws: SavedStateError.self) { _ = try LocalGuest.readHibernation(file) }
        #expect(FileManager.default.createFile(atPath: file, contents: Data(good + [UInt8](repeating: 7, count: 1 << 20))))
        let (memory, saved) = try LocalGuest.readHibernation(file)
        #expect(saved.version == .copper && memory.memory.size == 1 << 20)
    }
}
