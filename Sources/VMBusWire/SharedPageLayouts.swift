/// Byte layout of a ring's 4 KiB control page (02 §1). The ring layer reads and writes these
/// words atomically in shared memory; the offsets live here so every layer agrees on them.
/// They are inlinable constants: the ring's data path uses them per packet, and a `static let`
/// of another module is reached through a call.
public enum RingControlPage {
    /// Size of the control page; the data area starts right after it.
    @inlinable public static var size: Int { 4096 }
    /// `write_index` (OpenVMM `in`), written by the ring's writer.
    @inlinable public static var writeIndexOffset: Int { 0 }
    /// `read_index` (OpenVMM `out`), written by the ring's reader.
    @inlinable public static var readIndexOffset: Int { 4 }
    /// `interrupt_mask`, written by the reader: non-zero means "I am draining, do not interrupt".
    @inlinable public static var interruptMaskOffset: Int { 8 }
    /// `pending_send_sz`, written by the writer: interrupt me when this many bytes are free.
    @inlinable public static var pendingSendSizeOffset: Int { 12 }
    /// `feature_bits`.
    @inlinable public static var featureBitsOffset: Int { 64 }
    /// Feature bit 0: the endpoint uses and honours `pending_send_sz` (02 §1.1).
    @inlinable public static var featurePendingSendSize: UInt32 { 1 }
    /// The 8-byte trailer after every packet: `start_offset << 32` (02 §5).
    @inlinable public static var trailerSize: Int { 8 }
    /// Packets and indices are multiples of 8 bytes.
    @inlinable public static var alignment: Int { 8 }

    /// The trailer value written after a packet that started at `startOffset`.
    @inlinable public static func trailer(startOffset: UInt32) -> UInt64 { UInt64(startOffset) << 32 }
}

/// Byte layout of a 4 KiB monitor page (02 §10; monitored notification, 01 §1.3).
///
/// Monitor id `m` is bit `m % 32` of trigger group `m / 32`. The offset functions expect a
/// monitor id below ``monitorIDCount``: validate an offer's id before using them.
public enum MonitorPage {
    /// Size of a monitor page.
    public static let size = 4096
    /// Largest monitor id + 1.
    public static let monitorIDCount = 128
    /// OpenVMM's "no monitor id" value in offers.
    public static let noMonitorID: UInt8 = 0xFF
    /// `trigger_state` (bits 0–3: group enable).
    public static let triggerStateOffset = 0

    /// Offset of the `pending` u32 of the trigger group that holds `monitorID`; the channel's
    /// bit in it is `monitorID % 32`. `armed` follows at +4.
    public static func pendingOffset(monitorID: UInt8) -> Int { 8 + Int(monitorID / 32) * 8 }
    /// Offset of the s32 `next_check_time` cell of `monitorID`.
    public static func nextCheckTimeOffset(monitorID: UInt8) -> Int { 64 + Int(monitorID) * 4 }
    /// Offset of the u16 `latency` cell of `monitorID`.
    public static func latencyOffset(monitorID: UInt8) -> Int { 576 + Int(monitorID) * 2 }
    /// Offset of the 8-byte parameter of `monitorID`: connection id u32 @+0, flag number u16 @+4.
    public static func parameterOffset(monitorID: UInt8) -> Int { 1088 + Int(monitorID) * 8 }
    /// The bit of `monitorID` inside its group's `pending` word.
    public static func pendingBit(monitorID: UInt8) -> UInt32 { 1 << UInt32(monitorID % 32) }
}

/// The legacy interrupt page (01 §1.4): host → guest bitmap in the first half, guest → host in
/// the second, one bit per relid.
public enum InterruptPage {
    /// Bytes in the page.
    public static let size = 4096
    /// Byte offset of the guest → host ("send") half.
    public static let guestToHostOffset = 2048
}
