/// Packet and ring sizes, as OpenVMM's `PacketSize` computes them (03 §3–§5).
///
/// Each function returns a packet's length, `len8 × 8` (descriptor, extension, payload and zero
/// padding); ``ringBytes(length:)`` adds the 8-byte trailer to give the ring space it takes.
/// These are plain arithmetic on local sizes: the encoders in ``PacketEncoder`` enforce
/// ``PacketDescriptor/maximumPacketLength``.
public enum PacketSize {
    /// An in-band packet or completion with `payload` bytes: `align8(16 + payload)`.
    @inlinable public static func inBand(payload: Int) -> Int { Self.align8(PacketDescriptor.wireSize + payload) }

    /// A compact GPA-direct packet (Linux's MPB and page-buffer forms):
    /// `align8(24 + Σ(8 + 8·kᵢ) + payload)`.
    public static func gpaDirect(ranges: [GpaRange], payload: Int) -> Int {
        Self.align8(GpaDirectPacket.headerSize + ranges.reduce(0) { $0 + $1.wireSize } + payload)
    }

    /// A page-buffer packet of `count` single-PFN ranges: `align8(24 + 16·count + payload)`.
    public static func pageBuffer(count: Int, payload: Int) -> Int {
        Self.align8(GpaDirectPacket.headerSize + GpaRange.wireSize(pageCount: 1) * count + payload)
    }

    /// A multipage packet of one range of `pageCount` PFNs: trimmed to those PFNs as Linux
    /// sends it, or with all 32 slots (a 288-byte descriptor area) when `fullPFNArray` is true.
    public static func multipage(pageCount: Int, payload: Int, fullPFNArray: Bool = false) -> Int {
        let slots = fullPFNArray ? GpaDirectPacket.linuxPageArraySize : pageCount
        return Self.align8(GpaDirectPacket.headerSize + GpaRange.wireSize(pageCount: slots) + payload)
    }

    /// A transfer-page packet with `count` ranges: the in-band size + 8 + 8·count.
    public static func transferPages(count: Int, payload: Int) -> Int {
        Self.align8(TransferPagePacket.headerSize + TransferPageRange.wireSize * count + payload)
    }

    /// Ring bytes a packet of `length` (`len8 × 8`) consumes: `length + 8`.
    @inlinable public static func ringBytes(length: Int) -> Int { length + PacketDescriptor.trailerSize }

    /// `n` rounded up to a multiple of 8.
    @inlinable public static func align8(_ n: Int) -> Int { (n + 7) & ~7 }
}
