import VMBusWire

/// Offloads a backend can take or hand over: what the NIC may advertise to its guest.
public struct NetworkOffloads: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// Frames whose TCP/UDP checksum is left partial (the field holds the pseudo-header sum).
    public static let checksum = Self(rawValue: 1 << 0)
    /// TCP segments up to 64 KiB over IPv4, cut to the MSS by whoever takes them.
    public static let tcp4Segmentation = Self(rawValue: 1 << 1)
    /// The same over IPv6.
    public static let tcp6Segmentation = Self(rawValue: 1 << 2)
    public static let all: Self = [.checksum, .tcp4Segmentation, .tcp6Segmentation]
}

/// What a frame carries besides its bytes — the state a virtio-net header and NDIS
/// per-packet info both describe — in Linux's convention: a partial checksum field holds the
/// pseudo-header sum *with* the transport length, and a large segment's IP lengths are its own.
public struct FrameOffload: Hashable, Sendable {
    /// TCP segmentation of a frame larger than the MTU.
    public enum Segmentation: Hashable, Sendable {
        case tcp4(mss: Int)
        case tcp6(mss: Int)
        public var mss: Int {
            switch self {
            case .tcp4(let mss), .tcp6(let mss): return mss
            }
        }
    }

    /// Where the partial transport checksum starts; `nil`: the checksum is complete.
    public var checksumStart: Int?
    /// Where the checksum field lies, from ``checksumStart`` (16 TCP, 6 UDP).
    public var checksumOffset = 0
    public var segmentation: Segmentation?
    /// The sender verified the checksums: no need to check them again.
    public var checksumVerified = false

    public init(checksumStart: Int? = nil, checksumOffset: Int = 0, segmentation: Segmentation? = nil, checksumVerified: Bool = false) {
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
        self.segmentation = segmentation
        self.checksumVerified = checksumVerified
    }

    public static let none = FrameOffload()
    public var isNone: Bool { self == .none }
}

/// `struct virtio_net_hdr` (10 bytes, little-endian): how a TAP opened with `IFF_VNET_HDR`
/// says what a frame carries.
enum VirtioNetHeader {
    static let size = 10
    static let needsChecksum: UInt8 = 1
    static let dataValid: UInt8 = 2
    static let gsoTCP4: UInt8 = 1
    static let gsoTCP6: UInt8 = 4

    /// - Returns: `nil` for what no guest is offered (UDP fragmentation, ECN, unknown types)
    ///   or a checksum outside the frame.
    static func parse(_ bytes: ArraySlice<UInt8>, frameLength: Int) -> FrameOffload? {
        guard bytes.count >= Self.size else { return nil }
        let base = bytes.startIndex
        func word(_ at: Int) -> Int { Int(bytes[base + at]) | Int(bytes[base + at + 1]) << 8 }
        let flags = bytes[base]
        var offload = FrameOffload(checksumVerified: flags & Self.dataValid != 0)
        if flags & Self.needsChecksum != 0 {
            let start = word(6)
            let offset = word(8)
            guard start + offset + 2 <= frameLength else { return nil }
            offload.checksumStart = start
            offload.checksumOffset = offset
        }
        switch bytes[base + 1] {
        case 0: break
        case Self.gsoTCP4: offload.segmentation = .tcp4(mss: word(4))
        case Self.gsoTCP6: offload.segmentation = .tcp6(mss: word(4))
        default: return nil
        }
        if let segmentation = offload.segmentation, segmentation.mss == 0 || offload.checksumStart == nil { return nil }
        return offload
    }

    /// Writes `offload` into a 10-byte header (`headerLength`: the bytes up to the TCP
    /// payload, for segmentation).
    static func encode(_ offload: FrameOffload, headerLength: Int, into header: inout [UInt8]) {
        func store(_ value: Int, at: Int) {
            header[at] = UInt8(truncatingIfNeeded: value)
            header[at + 1] = UInt8(truncatingIfNeeded: value >> 8)
        }
        header[0] = (offload.checksumStart != nil ? Self.needsChecksum : 0) | (offload.checksumVerified ? Self.dataValid : 0)
        switch offload.segmentation {
        case .tcp4?: header[1] = Self.gsoTCP4
        case .tcp6?: header[1] = Self.gsoTCP6
        case nil: header[1] = 0
        }
        store(offload.segmentation == nil ? 0 : headerLength, at: 2)
        store(offload.segmentation?.mss ?? 0, at: 4)
        store(offload.checksumStart ?? 0, at: 6)
        store(offload.checksumOffset, at: 8)
    }
}

/// The Internet checksum arithmetic (RFC 1071) the offload conversions need.
enum InternetChecksum {
    /// The one's-complement sum of `bytes` as big-endian 16-bit words, folded.
    static func sum(_ bytes: ArraySlice<UInt8>, initial: UInt32 = 0) -> UInt16 {
        var total = UInt64(initial)
        var index = bytes.startIndex
        while index + 1 < bytes.endIndex {
            total += UInt64(bytes[index]) << 8 | UInt64(bytes[index + 1])
            index += 2
        }
        if index < bytes.endIndex { total += UInt64(bytes[index]) << 8 }
        return Self.fold(total)
    }

    static func fold(_ value: UInt64) -> UInt16 {
        var total = value
        while total > 0xFFFF { total = (total & 0xFFFF) + (total >> 16) }
        return UInt16(total)
    }

    /// `a + b` in one's complement.
    static func add(_ a: UInt16, _ b: UInt16) -> UInt16 { Self.fold(UInt64(a) + UInt64(b)) }
    /// `a - b` in one's complement.
    static func subtract(_ a: UInt16, _ b: UInt16) -> UInt16 { Self.add(a, ~b) }

    static func load(_ bytes: [UInt8], _ at: Int) -> UInt16 { UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1]) }
    static func store(_ value: UInt16, _ bytes: inout [UInt8], _ at: Int) {
        bytes[at] = UInt8(value >> 8)
        bytes[at + 1] = UInt8(truncatingIfNeeded: value)
    }

    /// Completes a partial checksum in place: the sum from `start` to the end, over the
    /// pseudo-header sum already in the field.
    static func complete(_ frame: inout [UInt8], range: Range<Int>, start: Int, offset: Int) {
        let field = range.lowerBound + start + offset
        guard start + offset + 2 <= range.count else { return }
        let sum = Self.sum(frame[(range.lowerBound + start)..<range.upperBound])
        Self.store(~sum == 0 && offset == 6 ? 0xFFFF : ~sum, &frame, field)
    }
}
