/// A pipe packet type (07 §6, 06 §1.1).
///
/// An open set: a value the peer sends that has no name here is kept as it is, so a reader can
/// report it and a writer can echo it.
public struct PipePacketType: RawRepresentable, Hashable, Sendable {
    /// The u32 at payload offset 0 (Linux `flags`, OpenVMM `packet_type`).
    public var rawValue: UInt32

    /// Wraps any wire value, named or not.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// 1 DATA: `length` payload bytes follow. The only type ICs and hvsock send.
    public static let data = Self(rawValue: 1)
    /// 2 PARTIAL: only inside a reader's own ring view, for a partly consumed DATA packet
    /// (upper 16 bits of `length` = bytes consumed); a writer never sends it (07 §6).
    public static let partial = Self(rawValue: 2)
    /// 3 SETUP_GPA_DIRECT (defined, unused by hvsock and ICs).
    public static let setupGpaDirect = Self(rawValue: 3)
    /// 4 TEARDOWN_GPA_DIRECT (defined, unused by hvsock and ICs).
    public static let teardownGpaDirect = Self(rawValue: 4)
    /// 5 INDICATION_COMPLETE (defined in Windows headers).
    public static let indicationComplete = Self(rawValue: 5)
}

extension PipePacketType: CustomStringConvertible {
    /// The spec name for known values, the number otherwise.
    public var description: String {
        switch self {
        case .data: return "DATA"
        case .partial: return "PARTIAL"
        case .setupGpaDirect: return "SETUP_GPA_DIRECT"
        case .teardownGpaDirect: return "TEARDOWN_GPA_DIRECT"
        case .indicationComplete: return "INDICATION_COMPLETE"
        default: return "pipe packet type \(self.rawValue)"
        }
    }
}

/// The 8-byte header at the start of every pipe packet's payload (Linux `vmbuspipe_hdr`):
/// IC messages (06 §1.1) and hvsock data (07 §4) share it.
///
/// Only the shape is checked here; what `length` must agree with depends on the user (IC
/// framing checks it against the payload, hvsock against the packet length).
public struct PipeHeader: Hashable, Sendable {
    /// Bytes on the wire.
    public static let wireSize = 8

    /// Linux `flags` / OpenVMM `packet_type`.
    public var type: PipePacketType
    /// Linux `msgsize` / hvsock `data_size` / OpenVMM `len`: bytes following the header.
    public var length: UInt32

    /// A header; DATA unless told otherwise.
    public init(type: PipePacketType = .data, length: UInt32) {
        self.type = type
        self.length = length
    }

    /// Reads the 8 bytes.
    /// - Throws: ``WireError/truncated(needed:available:)`` if fewer than 8 bytes are left.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize)
        self.type = PipePacketType(rawValue: try reader.readUInt32())
        self.length = try reader.readUInt32()
    }

    /// Appends the 8 bytes.
    public func write(to writer: inout WireWriter) {
        writer.writeUInt32(self.type.rawValue)
        writer.writeUInt32(self.length)
    }
}
