/// The envelope around a saved-state tree (docs/SAVED-STATE.md): what it is, which format
/// version wrote it, how long it is and a checksum, so that a truncated or corrupted state is
/// refused before any of it is believed.
///
/// ```
/// 0   8  magic "VMBSTATE"
/// 8   2  format version (u16 LE)
/// 10  2  kind: 1 host, 2 guest (u16 LE)
/// 12  4  body length (u32 LE)
/// 16  4  CRC-32C of the body (u32 LE)
/// 20  …  body: a record list (StateReader)
/// ```
public struct SavedStateFile: Hashable, Sendable {
    /// What saved the state.
    public struct Kind: RawRepresentable, Hashable, Sendable {
        public var rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        /// A host process's buses, channels and devices (a takeover's hand-over).
        public static let host = Kind(rawValue: 1)
        /// A guest's connection, channels and drivers (hibernation).
        public static let guest = Kind(rawValue: 2)
    }

    /// The first 8 bytes of every saved-state file.
    public static let magic: [UInt8] = Array("VMBSTATE".utf8)
    /// The version this library writes.
    public static let currentVersion: UInt16 = 1
    /// The oldest version this library restores.
    public static let oldestVersion: UInt16 = 1
    /// Bytes before the body.
    public static let headerSize = 20
    /// Largest body accepted (a host with many guests stays far below).
    public static let maximumBodySize = 64 << 20

    /// What saved the state, checked against what the reader expects.
    public var kind: Kind
    /// The format version that wrote the body.
    public var version: UInt16
    /// The record list (``StateReader``), without the envelope.
    public var body: [UInt8]

    /// An envelope for `body`, by default in the version this library writes.
    public init(kind: Kind, version: UInt16 = Self.currentVersion, body: [UInt8]) {
        self.kind = kind
        self.version = version
        self.body = body
    }

    /// The whole file.
    public func encode() -> [UInt8] {
        var w = WireWriter(capacity: Self.headerSize + self.body.count)
        w.writeBytes(Self.magic)
        w.writeUInt16(self.version)
        w.writeUInt16(self.kind.rawValue)
        w.writeUInt32(UInt32(self.body.count))
        w.writeUInt32(CRC32C.checksum(self.body))
        w.writeBytes(self.body)
        return w.bytes
    }

    /// Checks the envelope: magic, a version this library restores, the kind expected, the
    /// exact length and the checksum.
    public static func decode(_ bytes: ArraySlice<UInt8>, expecting kind: Kind) throws(SavedStateError) -> SavedStateFile {
        var r = WireReader(bytes)
        let magic: ArraySlice<UInt8>
        let version: UInt16
        let found: Kind
        let length: Int
        let checksum: UInt32
        do throws(WireError) {
            magic = try r.readBytes(8)
            version = try r.readUInt16()
            found = Kind(rawValue: try r.readUInt16())
            length = Int(try r.readUInt32())
            checksum = try r.readUInt32()
        } catch {
            throw SavedStateError("saved state is cut short: \(bytes.count) bytes, the header alone is \(Self.headerSize)")
        }
        guard magic.elementsEqual(Self.magic) else { throw SavedStateError("not a saved state (bad magic)") }
        guard (Self.oldestVersion...Self.currentVersion).contains(version) else {
            throw SavedStateError(
                "saved-state format version \(version); this program restores \(Self.oldestVersion)–\(Self.currentVersion)")
        }
        guard found == kind else { throw SavedStateError("saved state of kind \(found.rawValue), expected \(kind.rawValue)") }
        guard length <= Self.maximumBodySize else { throw SavedStateError("saved state body of \(length) bytes is too large") }
        guard r.remaining == length else {
            throw SavedStateError("saved state is \(r.remaining) bytes after its header, its header says \(length): truncated or padded")
        }
        let body = Array(r.readRemaining())
        guard CRC32C.checksum(body) == checksum else { throw SavedStateError("saved state checksum mismatch: corrupted") }
        return SavedStateFile(kind: kind, version: version, body: body)
    }
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of saved state.
public enum CRC32C {
    static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    /// The CRC-32C (Castagnoli, reflected, initial and final value 0xFFFFFFFF) of `bytes`.
    public static func checksum<C: Collection<UInt8>>(_ bytes: C) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = Self.table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return ~crc
    }
}
