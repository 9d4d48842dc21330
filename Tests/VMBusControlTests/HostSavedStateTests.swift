import Foundation
import Testing
import VMBusGuest
import VMBusHost
import VMBusWire

/// The host machine's saved state (docs/SAVED-STATE.md): a machine restored from it behaves
/// exactly as the one that saved it, and a damaged state is refused, never trusted.
@Suite struct HostSavedStateTests {
    /// A machine in the middle of a busy life: monitor pages, three offers (one with a monitor
    /// id), channel 1 open with two sub-channels, a large GPADL on channel 2 of which only the
    /// header has arrived, channel 3 revoked.
    static func busyPair() throws -> ControlPair {
        var guest = GuestConfiguration()
        guest.monitorPages = (0x7000, 0x8000)
        var pair = ControlPair(guest: guest)
        _ = pair.host.addOffer(HostOffer(
            interfaceType: echoClass, interfaceInstance: GUID(data1: 1, data2: 0, data3: 0, data4: 0), maximumSubChannels: 4,
            wantsMonitor: true))
        _ = pair.host.addOffer(deviceOffer(2))
        _ = pair.host.addOffer(deviceOffer(3))
        try pair.connect()
        let ring = try pair.createGpadl(channel: 1, pages: 8)
        try pair.guestDid(pair.guest.open(channel: 1, ringGpadl: ring, downstreamPageOffset: 4))
        try pair.run()
        try pair.hostDid(pair.host.enableSubChannels(primary: 1, count: 2).actions)
        try pair.run()
        try pair.hostDid(pair.host.rescind(3))
        try pair.run()
        // 600 pages: the range list needs body messages after the header.
        let range = try GpaRange(byteCount: 600 * 4096, byteOffset: 0, pfns: (0..<600).map { 0x1000 + $0 })
        let (_, actions) = try pair.guest.createGpadl(channel: 2, ranges: [range])
        try pair.guestDid(actions)
        // Only the header reaches the host before the save.
        let (header, _) = pair.toHost.removeFirst()
        try pair.hostDid(pair.host.receive(header[...]))
        return pair
    }

    static func saved(_ machine: HostConnection) throws -> [UInt8] {
        var w = StateWriter()
        try machine.save(into: &w)
        return w.bytes
    }

    @Test func aRestoredMachineSavesTheSameBytesAndCarriesOnIdentically() throws {
        var original = try Self.busyPair()
        let bytes = try Self.saved(original.host)
        var restored = original
        restored.host = try HostConnection(restoring: try StateReader(bytes[...]), configuration: HostConfiguration())
        #expect(try Self.saved(restored.host) == bytes)
        #expect(restored.host.relids == original.host.relids)
        #expect(restored.host.negotiated == original.host.negotiated)
        #expect(restored.host.isOpen(1) && !restored.host.isOpen(2))
        #expect(restored.host.subChannels(of: 1) == original.host.subChannels(of: 1))
        #expect(restored.host.monitorID(of: 1) == original.host.monitorID(of: 1))

        // The rest of the conversation — the GPADL's bodies, a sub-channel's GPADL and open,
        // the primary's close — gets the same answers from both.
        try original.run()
        try restored.run()
        #expect(original.hostWork == restored.hostWork)
        #expect(original.guestEvents == restored.guestEvents)
        for pair in [original, restored] {
            #expect(pair.guestEvents.contains { if case .gpadlCreated(_, let status) = $0 { return status.isSuccess } else { return false } })
        }
        for var pair in [original, restored] {
            try pair.guestDid(pair.guest.close(channel: 1))
            try pair.run()
            #expect(!pair.host.isOpen(1))
        }
    }

    @Test func everyTruncationAndEveryByteFlipIsRefusedOrHarmless() throws {
        let bytes = try Self.saved(try Self.busyPair().host)
        for length in 0..<bytes.count {
            // A cut record list either fails to split or lacks a record the machine needs; it
            // must never be restored into something inconsistent (which `save` would show).
            if let reader = try? StateReader(bytes[..<length]), let machine = try? HostConnection(restoring: reader, configuration: HostConfiguration()) {
                _ = try Self.saved(machine)
            }
        }
        for index in stride(from: 0, to: bytes.count, by: 3) {
            var damaged = bytes
            damaged[index] ^= 0x5A
            if let reader = try? StateReader(damaged[...]), let machine = try? HostConnection(restoring: reader, configuration: HostConfiguration()) {
                _ = try Self.saved(machine)
            }
        }
    }

    @Test func inconsistentStatesAreRefusedWithTheReason() throws {
        func refusal(_ build: (inout StateWriter) -> Void) -> String? {
            var w = StateWriter()
            build(&w)
            do {
                _ = try HostConnection(restoring: try StateReader(w.bytes[...]), configuration: HostConfiguration())
                return nil
            } catch {
                return error.description
            }
        }
        func connected(_ w: inout StateWriter) {
            w.write(1, true)
            w.write(2, VMBusVersion.copper.rawValue)
            w.write(3, UInt32(0))
            w.write(4, UInt32(0))
            w.write(5, true)
            w.write(6, false)
            w.write(7, UInt64(0))
            w.write(8, UInt64(0))
        }
        func channel(_ w: inout StateWriter, relid: UInt32, state: UInt8, gpadl: UInt32 = 0, primary: UInt32? = nil, monitor: UInt8? = nil) {
            w.nested(16) { c in
                c.write(1, relid)
                c.write(2, echoClass)
                c.write(3, GUID(data1: relid, data2: 0, data3: 0, data4: 0))
                c.write(4, UInt16(0))
                c.write(5, bytes: [UInt8](repeating: 0, count: 120))
                c.write(6, UInt16(0))
                c.write(7, UInt16(0))
                c.write(8, UInt16(0))
                c.write(9, false)
                c.write(10, state)
                c.write(11, relid)
                c.write(12, gpadl)
                if let primary { c.write(13, primary) }
                if let monitor { c.write(14, monitor) }
            }
        }
        #expect(refusal { connected(&$0); channel(&$0, relid: 1, state: 1, gpadl: 9) }?.contains("not a ready GPADL") == true)
        #expect(refusal { connected(&$0); channel(&$0, relid: 1, state: 0); channel(&$0, relid: 1, state: 0) }?.contains("repeated") == true)
        #expect(refusal { connected(&$0); channel(&$0, relid: 4000, state: 0) }?.contains("out of range") == true)
        #expect(refusal { connected(&$0); channel(&$0, relid: 1, state: 0, monitor: 200) }?.contains("monitor id") == true)
        #expect(refusal { connected(&$0); channel(&$0, relid: 2, state: 0, primary: 7) }?.contains("not a primary") == true)
        #expect(refusal { connected(&$0); channel(&$0, relid: 1, state: 9) }?.contains("unknown state") == true)
        #expect(refusal { $0.write(1, false); channel(&$0, relid: 1, state: 2) }?.contains("disconnected") == true)
        #expect(refusal { $0.write(1, UInt32(1)) }?.contains("not 1") == true)
        #expect(refusal { connected(&$0); channel(&$0, relid: 1, state: 0) } == nil)
    }

    // MARK: The committed sample

    static let samplePath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/host-machine-v1.vmbstate").path

    /// A state written by format version 1 is restored by this version (the file is committed
    /// and never rewritten; a later format version keeps restoring it).
    @Test func theVersion1SampleIsRestored() throws {
        let data = try #require(FileManager.default.contents(atPath: Self.samplePath), "missing \(Self.samplePath)")
        let file = try SavedStateFile.decode(Array(data)[...], expecting: .host)
        #expect(file.version == 1)
        let machine = try HostConnection(restoring: try StateReader(file.body[...]), configuration: HostConfiguration())
        #expect(machine.relids == [1, 2, 3, 4, 5])
        #expect(machine.isOpen(1))
        #expect(machine.subChannels(of: 1) == [4, 5])
        #expect(machine.negotiated?.version == .copper)
        #expect(machine.negotiated?.childToParentMonitorPage == 0x8000)
        #expect(machine.monitorID(of: 1) == 0)
    }

    /// Writes the sample, once: `VMBUS_WRITE_SAMPLES=1 swift test --filter HostSavedStateTests`.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["VMBUS_WRITE_SAMPLES"] == "1"))
    func writeTheSample() throws {
        let body = try Self.saved(try Self.busyPair().host)
        try Data(SavedStateFile(kind: .host, body: body).encode()).write(to: URL(fileURLWithPath: Self.samplePath))
    }
}
