/// A transfer-page packet (type 7, 03 §5): ranges inside a transfer page set the receiver
/// registered earlier through its device protocol (netvsc's receive buffer, set id 0xCAFE),
/// then an in-band payload (for netvsc an NVSP "send RNDIS packet" message). The guest answers
/// each with a completion carrying the same transaction id so the host can reuse the sections.
///
/// ```
/// offset 0   descriptor (16)
/// offset 16  xfer_pageset_id  u16
/// offset 18  sender_owns_set  u8    (OpenVMM: bytes 18–19 are a reserved u16, maybe garbage)
/// offset 19  reserved         u8
/// offset 20  range_cnt        u32
/// offset 24  ranges           range_cnt × {byte_count u32, byte_offset u32}
/// offset8×8  payload                offset8 ≥ 3 and 24 + 8 × range_cnt ≤ offset8 × 8
/// ```
public struct TransferPagePacket: Hashable, Sendable {
    /// Descriptor + set id, sender_owns_set, reserved, range_cnt.
    public static let headerSize = 24
    /// `NETVSC_RECEIVE_BUFFER_ID`: the set id netvsc registers its receive buffer under.
    public static let netvscReceiveBufferID: UInt16 = 0xCAFE

    /// The descriptor, type 7.
    public var descriptor: PacketDescriptor
    /// Which transfer page set (receive buffer) the ranges refer to.
    public var transferPageSetID: UInt16
    /// Linux's `sender_owns_set`; kept as read.
    public var senderOwnsSet: UInt8
    /// Byte 19; kept as read.
    public var reserved: UInt8
    /// The ranges, possibly none (OpenVMM's ring does not require one; the device protocol
    /// decides).
    public var ranges: [TransferPageRange]
    /// The device message after `offset8 × 8`, padding included. A slice of the parsed bytes.
    public var payload: ArraySlice<UInt8>

    /// A packet from its parts, unchecked (``VMBusPacket/encode()`` checks the lengths).
    public init(
        descriptor: PacketDescriptor, transferPageSetID: UInt16, senderOwnsSet: UInt8 = 0, reserved: UInt8 = 0,
        ranges: [TransferPageRange], payload: ArraySlice<UInt8>
    ) {
        self.descriptor = descriptor
        self.transferPageSetID = transferPageSetID
        self.senderOwnsSet = senderOwnsSet
        self.reserved = reserved
        self.ranges = ranges
        self.payload = payload
    }

    /// Parses the parts after the descriptor.
    /// - Parameters:
    ///   - area: bytes 16 ..< `offset8 × 8`.
    ///   - payload: bytes from `offset8 × 8` to `len8 × 8`.
    init(descriptor: PacketDescriptor, area: ArraySlice<UInt8>, payload: ArraySlice<UInt8>) throws(WireError) {
        // offset8 ≥ 3 (02 §9.3): the 8-byte extension header sits before the payload.
        guard area.count >= Self.headerSize - PacketDescriptor.wireSize else {
            throw WireError.invalidField(name: "offset8", value: UInt64(descriptor.offset8))
        }
        var reader = WireReader(area)
        let setID = try reader.readUInt16()
        let owns = try reader.readUInt8()
        let reserved = try reader.readUInt8()
        let count = try reader.readUInt32()
        // 24 + 8 × range_cnt ≤ offset8 × 8, checked before anything is reserved.
        guard count <= reader.remaining / TransferPageRange.wireSize, let rangeCount = Int(exactly: count) else {
            throw WireError.invalidField(name: "range_cnt", value: UInt64(count))
        }
        var ranges: [TransferPageRange] = []
        ranges.reserveCapacity(rangeCount)
        for _ in 0..<rangeCount { ranges.append(try TransferPageRange(from: &reader)) }
        self.init(
            descriptor: descriptor, transferPageSetID: setID, senderOwnsSet: owns, reserved: reserved,
            ranges: ranges, payload: payload)
    }

    /// Writes everything after the descriptor up to the end of the ranges.
    /// - Throws: ``WireError/invalidField(name:value:)`` ("offset8") if the ranges do not fit.
    func writeArea(to writer: inout WireWriter) throws(WireError) {
        guard Self.headerSize + TransferPageRange.wireSize * self.ranges.count <= self.descriptor.payloadOffset else {
            throw WireError.invalidField(name: "offset8", value: UInt64(self.descriptor.offset8))
        }
        writer.writeUInt16(self.transferPageSetID)
        writer.writeUInt8(self.senderOwnsSet)
        writer.writeUInt8(self.reserved)
        writer.writeUInt32(UInt32(truncatingIfNeeded: self.ranges.count))
        for range in self.ranges { range.write(to: &writer) }
    }
}

/// A `vmtransfer_page_range`: bytes inside a transfer page set (03 §5). Both fields are
/// relative to the set, which only the device protocol knows, so they are not checked here.
public struct TransferPageRange: Hashable, Sendable {
    /// Bytes on the wire.
    public static let wireSize = 8

    /// Bytes in the range.
    public var byteCount: UInt32
    /// Offset from the start of the transfer page set.
    public var byteOffset: UInt32

    /// A range of `byteCount` bytes at `byteOffset` in the set.
    public init(byteCount: UInt32, byteOffset: UInt32) {
        self.byteCount = byteCount
        self.byteOffset = byteOffset
    }

    /// Reads the two u32s.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize)
        self.byteCount = try reader.readUInt32()
        self.byteOffset = try reader.readUInt32()
    }

    /// Writes the two u32s.
    public func write(to writer: inout WireWriter) {
        writer.writeUInt32(self.byteCount)
        writer.writeUInt32(self.byteOffset)
    }
}
