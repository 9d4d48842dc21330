/// A ring packet type, the first u16 of every packet descriptor (03 §2).
///
/// An open set, as every wire number in this package is: any u16 a peer writes is
/// representable, so a guest can pass an unknown type on (as Linux does) and a host can name it
/// in its error (OpenVMM rejects everything but 6, 7, 9 and 0xB; see
/// ``PacketDescriptor/validateStrictly()``).
public struct PacketType: RawRepresentable, Hashable, Sendable {
    /// The u16 as it appears at offset 0 of the descriptor.
    public var rawValue: UInt16

    /// Wraps any u16, known or not.
    @inlinable public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// 0x0 `VM_PKT_INVALID`: never valid.
    @inlinable public static var invalid: Self { Self(rawValue: 0x0) }
    /// 0x1 `VM_PKT_SYNCH`: declared, never sent by Linux or OpenVMM.
    @inlinable public static var synch: Self { Self(rawValue: 0x1) }
    /// 0x2 `VM_PKT_ADD_XFER_PAGESET`: unused; device protocols (NVSP) set up transfer page sets.
    @inlinable public static var addTransferPageSet: Self { Self(rawValue: 0x2) }
    /// 0x3 `VM_PKT_RM_XFER_PAGESET`: unused.
    @inlinable public static var removeTransferPageSet: Self { Self(rawValue: 0x3) }
    /// 0x4 `VM_PKT_ESTABLISH_GPADL`: unused; GPADLs are created with channel messages (04 §4).
    @inlinable public static var establishGpadl: Self { Self(rawValue: 0x4) }
    /// 0x5 `VM_PKT_TEARDOWN_GPADL`: unused.
    @inlinable public static var teardownGpadl: Self { Self(rawValue: 0x5) }
    /// 0x6 `VM_PKT_DATA_INBAND` (OpenVMM `DataInBand`): the payload follows the descriptor.
    /// Most traffic (03 §3).
    @inlinable public static var dataInBand: Self { Self(rawValue: 0x6) }
    /// 0x7 `VM_PKT_DATA_USING_XFER_PAGES` (OpenVMM `DataUsingTransferPages`): ranges of a
    /// transfer page set, host → guest network receive (03 §5).
    @inlinable public static var dataUsingTransferPages: Self { Self(rawValue: 0x7) }
    /// 0x8 `VM_PKT_DATA_USING_GPADL`: unused.
    @inlinable public static var dataUsingGpadl: Self { Self(rawValue: 0x8) }
    /// 0x9 `VM_PKT_DATA_USING_GPA_DIRECT` (OpenVMM `DataUsingGpaDirect`): guest buffers by
    /// page number, guest → host storage and network (03 §4).
    @inlinable public static var dataUsingGpaDirect: Self { Self(rawValue: 0x9) }
    /// 0xA `VM_PKT_CANCEL_REQUEST` (OpenVMM `CancelRequest`): declared, never sent.
    @inlinable public static var cancelRequest: Self { Self(rawValue: 0xA) }
    /// 0xB `VM_PKT_COMP` (OpenVMM `Completion`): the answer to a request, same transaction id
    /// (03 §3).
    @inlinable public static var completion: Self { Self(rawValue: 0xB) }
    /// 0xC `VM_PKT_DATA_USING_ADDITIONAL_PKT`: unused.
    @inlinable public static var dataUsingAdditionalPacket: Self { Self(rawValue: 0xC) }
    /// 0xD `VM_PKT_ADDITIONAL_DATA`: unused.
    @inlinable public static var additionalData: Self { Self(rawValue: 0xD) }

    /// The four types hosts and guests really exchange (6, 7, 9, 0xB). OpenVMM's ring reader
    /// declares any other type ring corruption (02 §9.3).
    public static let exchanged: [PacketType] = [.dataInBand, .dataUsingTransferPages, .dataUsingGpaDirect, .completion]

    /// Whether this is one of the ``exchanged`` types a strict reader accepts.
    public var isExchanged: Bool {
        switch self {
        case .dataInBand, .dataUsingTransferPages, .dataUsingGpaDirect, .completion: return true
        default: return false
        }
    }
}

/// The descriptor's u16 flags (03 §1).
///
/// Only bit 0 is defined. Unknown bits are kept as read, so a packet survives a parse and
/// re-encode unchanged; ``PacketDescriptor/validateStrictly()`` rejects them as OpenVMM does.
public struct PacketFlags: OptionSet, Hashable, Sendable {
    /// The u16 as it appears at offset 6 of the descriptor, unknown bits included.
    public var rawValue: UInt16

    /// Wraps any u16, unknown bits included.
    @inlinable public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// Bit 0 `VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED`: the sender wants an answer carrying
    /// the same transaction id, which must then be non-zero (03 §6).
    public static let completionRequested = PacketFlags(rawValue: 1)

    /// Every bit the protocol defines.
    public static let known: PacketFlags = [.completionRequested]
}
