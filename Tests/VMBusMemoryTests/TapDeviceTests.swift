import Foundation
import Glibc
import Testing
import VMBusMemory

/// TAP devices against the real kernel: frames cross between a TAP's descriptor and an
/// AF_PACKET socket on the same interface, byte for byte, in both directions. The TAPs live in
/// the test's own network namespace, get no address and vanish with their last descriptor;
/// no other interface is touched. Tests that need /dev/net/tun and CAP_NET_ADMIN are skipped,
/// with the reason, where a TAP cannot be created.
@Suite struct TapDeviceTests {
    /// An IEEE 802 local experimental EtherType: nothing else on the interface uses it, so the
    /// packet socket sees only the test's frames and the TAP reader can tell them apart from the
    /// kernel's own (IPv6 router solicitations once the link is up).
    static let etherType: UInt16 = 0x88B5

    /// Why TAP devices cannot be used here, or `nil` if they can (probed once).
    static let unavailable: String? = {
        do {
            _ = try TapDevice()
            return nil
        } catch {
            return "TAP devices unavailable: \(error)"
        }
    }()

    /// Skips the calling test (recorded, with the reason) where TAPs cannot be created.
    func requireTap() throws {
        if let why = Self.unavailable { try Test.cancel(Comment(rawValue: why)) }
    }

    /// A frame of `count` bytes: broadcast destination, `source`, the test EtherType, then a
    /// payload numbered from `seed` so frames differ.
    func frame(count: Int, source: [UInt8], seed: UInt8) -> [UInt8] {
        let header = [UInt8](repeating: 0xFF, count: 6) + source + [UInt8(Self.etherType >> 8), UInt8(Self.etherType & 0xFF)]
        return header + (0..<(count - 14)).map { UInt8(truncatingIfNeeded: $0) &+ seed }
    }

    /// Reads frames from `queue` until one carries the test EtherType; `nil` after `timeout`.
    func readTestFrame(_ tap: TapDevice, queue: Int = 0, timeout: Duration = .seconds(10)) throws -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 2048)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard try tap.waitReadable(queue: queue, timeout: deadline - ContinuousClock.now) else { return nil }
            guard let n = try tap.read(into: &buffer, queue: queue) else { continue }
            if n >= 14 && buffer[12] == UInt8(Self.etherType >> 8) && buffer[13] == UInt8(Self.etherType & 0xFF) {
                return Array(buffer[0..<n])
            }
        }
        return nil
    }

    // MARK: Without privileges

    @Test func aMissingCloneDeviceIsNamed() {
        #expect(throws: TapError.noTunDevice(path: "/nonexistent/tun", errno: ENOENT)) {
            try TapDevice(name: "vmbt0", devicePath: "/nonexistent/tun")
        }
    }

    @Test func namesTheKernelWouldRefuseAreRefusedFirst() {
        #expect(TapDevice.isValidName("tap0") && TapDevice.isValidName("vmbus-net%d") && TapDevice.isValidName("a23456789012345"))
        for bad in ["", ".", "..", "a/b", "a:b", "a b", "a234567890123456"] {
            #expect(!TapDevice.isValidName(bad), "\(bad)")
        }
        #expect(throws: TapError.invalidName("a/b")) { try TapDevice(name: "a/b") }
        #expect(TapError.needsNetAdmin(operation: "x").description.contains("CAP_NET_ADMIN"))
    }

    // MARK: With /dev/net/tun

    @Test func theKernelNamesATapThatGoesAwayWithItsDescriptor() throws {
        try requireTap()
        let picked = try TapDevice()
        #expect(picked.name.hasPrefix("tap") && FileManager.default.fileExists(atPath: "/sys/class/net/\(picked.name)"))
        // A name of this process's own: tests running beside this one reuse freed tapN names.
        let name = "vmbt\(getpid() % 100_000)g"
        var tap: TapDevice? = try TapDevice(name: name)
        #expect(FileManager.default.fileExists(atPath: "/sys/class/net/\(name)"))
        #expect(try tap?.interfaceIndex() ?? 0 > 0)
        tap = nil
        #expect(!FileManager.default.fileExists(atPath: "/sys/class/net/\(name)"))
    }

    @Test func aNamedTapKeepsItsNameAndASecondOpenerIsTurnedAway() throws {
        try requireTap()
        let name = "vmbt\(getpid() % 100_000)s"
        let tap = try TapDevice(name: name)
        #expect(tap.name == name)
        // A single-queue TAP has one descriptor; a multi-queue open of it is a mode mismatch.
        #expect(throws: TapError.nameInUse(name)) { try TapDevice(name: name) }
        #expect(throws: TapError.nameInUse(name)) { try TapDevice(name: name, queues: 2) }
        // Not a TAP at all.
        #expect(throws: TapError.nameInUse("lo")) { try TapDevice(name: "lo") }
    }

    @Test func mtuMacAndLinkStateReadBack() throws {
        try requireTap()
        let tap = try TapDevice()
        #expect(try tap.mtu() == 1500)
        try tap.setMTU(9000)
        #expect(try tap.mtu() == 9000)
        let mac: [UInt8] = [0x02, 0x56, 0x4D, 0x42, 0x00, 0x01]  // locally administered
        try tap.setMACAddress(mac)
        #expect(try tap.macAddress() == mac)
        #expect(try !tap.isUp())
        try tap.setUp()
        #expect(try tap.isUp())
        try tap.setUp(false)
        #expect(try !tap.isUp())
        #expect(throws: TapError.self) { try tap.setMTU(1 << 20) }
        #expect(throws: TapError.self) { try tap.setMACAddress([0x01, 0, 0, 0, 0, 1]) }  // multicast
    }

    @Test func aDownTapHasNothingToRead() throws {
        try requireTap()
        let tap = try TapDevice()
        var buffer = [UInt8](repeating: 0, count: 2048)
        #expect(try tap.read(into: &buffer) == nil)
        #expect(try !tap.waitReadable(timeout: .zero))
    }

    @Test func framesWrittenToTheTapArriveAtTheKernelByteExact() throws {
        try requireTap()
        let tap = try TapDevice()
        try tap.setUp()
        let socket = try PacketSocket(interface: tap.name, etherType: Self.etherType)
        var buffer = [UInt8](repeating: 0, count: 2048)
        for (index, size) in [60, 61, 1000, 1514].enumerated() {
            let sent = frame(count: size, source: [0x02, 0, 0, 0, 0, 2], seed: UInt8(index))
            #expect(try tap.write(sent))
            #expect(try socket.waitReadable(timeout: .seconds(10)))
            let n = try #require(try socket.receive(into: &buffer))
            #expect(Array(buffer[0..<n]) == sent, "frame of \(size) bytes")
        }
    }

    @Test func framesTheKernelSendsAreReadFromTheTapByteExact() throws {
        try requireTap()
        let tap = try TapDevice()
        try tap.setUp()
        let socket = try PacketSocket(interface: tap.name, etherType: Self.etherType)
        let source = try tap.macAddress()
        for (index, size) in [60, 1000, 1514].enumerated() {
            let sent = frame(count: size, source: source, seed: UInt8(index))
            try socket.send(sent)
            #expect(try readTestFrame(tap) == sent, "frame of \(size) bytes")
        }
    }

    @Test func multiQueueTapsTakeFramesOnEveryQueue() throws {
        try requireTap()
        let tap = try TapDevice(queues: 4)
        #expect(tap.queueCount == 4)
        #expect(Set((0..<4).map { tap.fileDescriptor(queue: $0) }).count == 4)
        // More queues attach by name.
        let more = try TapDevice(name: tap.name, queues: 2)
        #expect(more.name == tap.name && more.queueCount == 2)
        try tap.setUp()
        let socket = try PacketSocket(interface: tap.name, etherType: Self.etherType)
        var buffer = [UInt8](repeating: 0, count: 2048)
        for queue in 0..<4 {
            let sent = frame(count: 100, source: [0x02, 0, 0, 0, 0, 3], seed: UInt8(queue))
            #expect(try tap.write(sent, queue: queue))
            #expect(try socket.waitReadable(timeout: .seconds(10)))
            let n = try #require(try socket.receive(into: &buffer))
            #expect(Array(buffer[0..<n]) == sent, "queue \(queue)")
        }
        // A frame the kernel sends comes out of one of the six queues.
        let poll = try EventPoll()
        let queues: [(TapDevice, Int)] = (0..<4).map { (tap, $0) } + (0..<2).map { (more, $0) }
        for (token, (device, queue)) in queues.enumerated() {
            try poll.add(device.fileDescriptor(queue: queue), token: UInt64(token))
        }
        let sent = frame(count: 200, source: try tap.macAddress(), seed: 9)
        try socket.send(sent)
        var found: [[UInt8]] = []
        let deadline = ContinuousClock.now + .seconds(10)
        while found.isEmpty && ContinuousClock.now < deadline {
            for token in try poll.wait(timeoutMilliseconds: 1000) {
                let (device, queue) = queues[Int(token)]
                while let n = try device.read(into: &buffer, queue: queue) {
                    if buffer[12] == UInt8(Self.etherType >> 8) && buffer[13] == UInt8(Self.etherType & 0xFF) {
                        found.append(Array(buffer[0..<n]))
                    }
                }
            }
        }
        #expect(found == [sent])
    }

    /// A short read keeps the frame's first bytes and drops the rest (the next read is the next frame).
    @Test func aFrameLongerThanTheBufferIsCutToIt() throws {
        try requireTap()
        let tap = try TapDevice()
        try tap.setUp()
        let socket = try PacketSocket(interface: tap.name, etherType: Self.etherType)
        let sent = frame(count: 1000, source: try tap.macAddress(), seed: 7)
        try socket.send(sent)
        var small = [UInt8](repeating: 0, count: 100)
        let deadline = ContinuousClock.now + .seconds(10)
        var got: [UInt8]?
        while got == nil, ContinuousClock.now < deadline, try tap.waitReadable(timeout: deadline - ContinuousClock.now) {
            if let n = try tap.read(into: &small), small[12] == 0x88, small[13] == 0xB5 { got = Array(small[0..<n]) }
        }
        #expect(got == Array(sent[0..<100]))
    }
}
