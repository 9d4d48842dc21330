/// Vital product data page codes (SPC/SBC; the ones Linux asks for, 10 §6.1, and OpenVMM's
/// own). An open set.
public struct VPDPageCode: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// 0x00: the list of pages; Linux asks for it first and then only for what it lists.
    public static let supportedPages = Self(rawValue: 0x00)
    /// 0x80: the unit serial number (ASCII).
    public static let unitSerialNumber = Self(rawValue: 0x80)
    /// 0x83: at least one designator (NAA or T10 vendor id).
    public static let deviceIdentification = Self(rawValue: 0x83)
    /// 0x89: ATA information (SAT), for devices behind an ATA translation.
    public static let ataInformation = Self(rawValue: 0x89)
    /// 0x8F: OpenVMM with ODX only.
    public static let thirdPartyCopy = Self(rawValue: 0x8F)
    /// 0xB0: transfer and unmap limits.
    public static let blockLimits = Self(rawValue: 0xB0)
    /// 0xB1: rotation rate (1 = not rotating).
    public static let blockDeviceCharacteristics = Self(rawValue: 0xB1)
    /// 0xB2: LBPU (UNMAP supported).
    public static let logicalBlockProvisioning = Self(rawValue: 0xB2)
    /// 0xCE and 0xCF: Microsoft's own pages (OpenVMM).
    public static let microsoftCE = Self(rawValue: 0xCE)
    /// 0xCF: Microsoft's second own page (OpenVMM).
    public static let microsoftCF = Self(rawValue: 0xCF)
}

/// One VPD page as sent: the 4-byte header and its data (SPC).
///
/// ```
/// 0    qualifier << 5 | device type
/// 1    page code
/// 2–3  page length n (big-endian)
/// 4…   n bytes of data
/// ```
///
/// An answer is cut to the allocation length (Linux asks for the 4-byte header first), so
/// ``data`` holds what arrived, at most the page length; ``pageLength`` says what the page
/// has in full. The typed pages read their fields from ``data``.
public struct VPDPage: Hashable, Sendable {
    /// Bytes before the data: peripheral, page code, page length.
    public static let headerSize = 4

    /// Byte 0: the peripheral qualifier (bits 5–7) and device type (bits 0–4).
    public var peripheral: UInt8
    /// Byte 1: which page this is.
    public var pageCode: VPDPageCode
    /// The page length as sent.
    public var pageLength: UInt16
    /// The page's data after the header: what arrived, at most ``pageLength`` bytes.
    public var data: [UInt8]

    /// A whole page: its length is the data's.
    /// - Precondition: `data` is at most 65535 bytes (local input).
    public init(pageCode: VPDPageCode, data: [UInt8], peripheral: UInt8 = 0) {
        precondition(data.count <= Int(UInt16.max), "a VPD page holds at most 65535 bytes")
        self.peripheral = peripheral
        self.pageCode = pageCode
        self.pageLength = UInt16(data.count)
        self.data = data
    }

    /// - Throws: ``WireError/truncated(needed:available:)`` below the 4-byte header.
    public init(parsing bytes: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(bytes)
        try reader.require(Self.headerSize)
        self.peripheral = try reader.readUInt8()
        self.pageCode = VPDPageCode(rawValue: try reader.readUInt8())
        self.pageLength = try reader.readBigEndianUInt16()
        self.data = Array(reader.readRemaining().prefix(Int(self.pageLength)))
    }

    /// The header and the data, as sent on the wire.
    public func encode() -> [UInt8] {
        var writer = WireWriter(capacity: Self.headerSize + self.data.count)
        writer.writeUInt8(self.peripheral)
        writer.writeUInt8(self.pageCode.rawValue)
        writer.writeBigEndianUInt16(self.pageLength)
        writer.writeBytes(self.data)
        return writer.bytes
    }

    /// Throws unless this is page `code`.
    func expect(_ code: VPDPageCode) throws(WireError) {
        if self.pageCode != code { throw WireError.unknownType(UInt32(self.pageCode.rawValue)) }
    }

    /// The data zero-extended to `size` after checking that at least `minimum` bytes came.
    func fields(minimum: Int, size: Int) throws(WireError) -> WireReader {
        if self.data.count < minimum {
            throw WireError.truncated(needed: minimum, available: self.data.count)
        }
        return WireReader(self.data + [UInt8](repeating: 0, count: max(0, size - self.data.count)))
    }
}

/// VPD 0x00: the pages the device answers, in ascending order.
public struct VPDSupportedPages: Hashable, Sendable {
    /// The pages, in ascending order.
    public var pages: [VPDPageCode]
    /// A list of `pages`; keep it ascending.
    public init(pages: [VPDPageCode]) { self.pages = pages }

    /// - Throws: ``WireError/unknownType(_:)`` for another page.
    public init(_ page: VPDPage) throws(WireError) {
        try page.expect(.supportedPages)
        self.pages = page.data.map { VPDPageCode(rawValue: $0) }
    }

    /// The page to send.
    public var page: VPDPage { VPDPage(pageCode: .supportedPages, data: self.pages.map(\.rawValue)) }
}

/// VPD 0x80: the serial number (ASCII).
public struct VPDUnitSerialNumber: Hashable, Sendable {
    /// The serial number's bytes (ASCII, usually without a terminator).
    public var serial: [UInt8]
    /// A page holding `serial`.
    public init(serial: [UInt8]) { self.serial = serial }

    /// Reads the serial number from a received page.
    /// - Throws: ``WireError/unknownType(_:)`` for another page.
    public init(_ page: VPDPage) throws(WireError) {
        try page.expect(.unitSerialNumber)
        self.serial = page.data
    }

    /// The page to send.
    public var page: VPDPage { VPDPage(pageCode: .unitSerialNumber, data: self.serial) }
}

/// VPD 0xB0 Block Limits (SBC), page length 0x3C. Linux reads it when VPD 0x00 lists it: the
/// transfer lengths from a 16-byte page, the unmap and WRITE SAME fields only from the whole
/// 64 bytes; it turns on discard only if the unmap counts are non-zero and VPD 0xB2 has LBPU.
///
/// ```
/// 5      maximum COMPARE AND WRITE length
/// 6–7    optimal transfer length granularity (blocks)
/// 8–11   maximum transfer length (0 = none)
/// 12–15  optimal transfer length
/// 16–19  maximum prefetch length
/// 20–23  maximum unmap LBA count             OpenVMM 0xFFFFFFFF
/// 24–27  maximum unmap block descriptor count            4096
/// 28–31  optimal unmap granularity                       ≥ 1
/// 32–35  bit 31 UGAVALID, unmap granularity alignment
/// 36–43  maximum WRITE SAME length
/// ```
public struct VPDBlockLimits: Hashable, Sendable {
    /// SBC-3's page length.
    public static let pageLength = 0x3C
    /// Linux needs the SBC-2 fields (page length ≥ 12); the rest reads as zero if absent.
    public static let minimumPageLength = 12

    /// Byte 5: the largest COMPARE AND WRITE, in logical blocks (0: not supported).
    public var maximumCompareAndWriteLength: UInt8 = 0
    /// Bytes 6–7: the preferred transfer length granularity, in logical blocks.
    public var optimalTransferLengthGranularity: UInt16 = 0
    /// Bytes 8–11: the largest transfer, in logical blocks (0: no limit).
    public var maximumTransferLength: UInt32 = 0
    /// Bytes 12–15: the preferred transfer length, in logical blocks.
    public var optimalTransferLength: UInt32 = 0
    /// Bytes 16–19: the largest PRE-FETCH, in logical blocks.
    public var maximumPrefetchLength: UInt32 = 0
    /// Bytes 20–23: the most logical blocks one UNMAP may name (0: UNMAP not supported).
    public var maximumUnmapLBACount: UInt32 = 0
    /// Bytes 24–27: the most block descriptors one UNMAP may carry.
    public var maximumUnmapBlockDescriptorCount: UInt32 = 0
    /// Bytes 28–31: the preferred unmap granularity, in logical blocks.
    public var optimalUnmapGranularity: UInt32 = 0
    /// Bit 31 UGAVALID and the alignment, as sent.
    public var unmapGranularityAlignment: UInt32 = 0
    /// Bytes 36–43: the largest WRITE SAME, in logical blocks.
    public var maximumWriteSameLength: UInt64 = 0

    /// Every limit 0: nothing stated.
    public init() {}

    /// - Throws: ``WireError/unknownType(_:)`` for another page,
    ///   ``WireError/truncated(needed:available:)`` below 12 data bytes.
    public init(_ page: VPDPage) throws(WireError) {
        try page.expect(.blockLimits)
        var reader = try page.fields(minimum: Self.minimumPageLength, size: Self.pageLength)
        try reader.skip(1)
        self.maximumCompareAndWriteLength = try reader.readUInt8()
        self.optimalTransferLengthGranularity = try reader.readBigEndianUInt16()
        self.maximumTransferLength = try reader.readBigEndianUInt32()
        self.optimalTransferLength = try reader.readBigEndianUInt32()
        self.maximumPrefetchLength = try reader.readBigEndianUInt32()
        self.maximumUnmapLBACount = try reader.readBigEndianUInt32()
        self.maximumUnmapBlockDescriptorCount = try reader.readBigEndianUInt32()
        self.optimalUnmapGranularity = try reader.readBigEndianUInt32()
        self.unmapGranularityAlignment = try reader.readBigEndianUInt32()
        self.maximumWriteSameLength = try reader.readBigEndianUInt64()
    }

    /// The page to send, at its full SBC-3 length.
    public var page: VPDPage {
        var writer = WireWriter(capacity: Self.pageLength)
        writer.writeUInt8(0)
        writer.writeUInt8(self.maximumCompareAndWriteLength)
        writer.writeBigEndianUInt16(self.optimalTransferLengthGranularity)
        writer.writeBigEndianUInt32(self.maximumTransferLength)
        writer.writeBigEndianUInt32(self.optimalTransferLength)
        writer.writeBigEndianUInt32(self.maximumPrefetchLength)
        writer.writeBigEndianUInt32(self.maximumUnmapLBACount)
        writer.writeBigEndianUInt32(self.maximumUnmapBlockDescriptorCount)
        writer.writeBigEndianUInt32(self.optimalUnmapGranularity)
        writer.writeBigEndianUInt32(self.unmapGranularityAlignment)
        writer.writeBigEndianUInt64(self.maximumWriteSameLength)
        writer.writeZeros(Self.pageLength - writer.count)
        return VPDPage(pageCode: .blockLimits, data: writer.bytes)
    }
}

/// VPD 0xB1 Block Device Characteristics (SBC), page length 0x3C: rotation rate @4–5
/// (1 = non-rotating: Linux clears its "rotational" flag), product type @6, form factor
/// @7 bits 0–3.
public struct VPDBlockDeviceCharacteristics: Hashable, Sendable {
    /// The page's length: 0x3C bytes after the header.
    public static let pageLength = 0x3C
    /// 1: a solid-state medium.
    public static let nonRotating: UInt16 = 1

    /// Bytes 4–5: the medium's rotation rate in rpm, or 1 (``nonRotating``) for solid state; 0
    /// when not reported.
    public var rotationRate: UInt16
    /// Byte 6: the product type (0: not indicated).
    public var productType: UInt8
    /// Byte 7, bits 0–3: the nominal form factor (0: not reported).
    public var formFactor: UInt8

    /// A page; solid state by default.
    public init(rotationRate: UInt16 = VPDBlockDeviceCharacteristics.nonRotating, productType: UInt8 = 0, formFactor: UInt8 = 0) {
        self.rotationRate = rotationRate
        self.productType = productType
        self.formFactor = formFactor & 0x0F
    }

    /// - Throws: ``WireError/unknownType(_:)`` for another page,
    ///   ``WireError/truncated(needed:available:)`` below 2 data bytes (the rotation rate).
    public init(_ page: VPDPage) throws(WireError) {
        try page.expect(.blockDeviceCharacteristics)
        var reader = try page.fields(minimum: 2, size: 4)
        self.rotationRate = try reader.readBigEndianUInt16()
        self.productType = try reader.readUInt8()
        self.formFactor = try reader.readUInt8() & 0x0F
    }

    /// The page to send.
    public var page: VPDPage {
        var data = [UInt8](repeating: 0, count: Self.pageLength)
        data[0] = UInt8(truncatingIfNeeded: self.rotationRate >> 8)
        data[1] = UInt8(truncatingIfNeeded: self.rotationRate)
        data[2] = self.productType
        data[3] = self.formFactor & 0x0F
        return VPDPage(pageCode: .blockDeviceCharacteristics, data: data)
    }
}

/// VPD 0xB2 Logical Block Provisioning (SBC), page length 4: threshold exponent @4, flags
/// @5 (bit 7 LBPU: UNMAP works), provisioning type @6 bits 0–2 (2 = thin).
public struct VPDLogicalBlockProvisioning: Hashable, Sendable {
    /// The page's length: 4 bytes after the header.
    public static let pageLength = 4
    /// Byte 5 bit 7: UNMAP is supported.
    public static let lbpuFlag: UInt8 = 0x80
    /// Provisioning type 2.
    public static let thin: UInt8 = 2

    /// Byte 4: the threshold exponent for thin-provisioning thresholds (0: none).
    public var thresholdExponent: UInt8
    /// Byte 5: LBPU 0x80, LBPWS 0x40, LBPWS10 0x20, LBPRZ bits 2–4, ANC_SUP 0x02, DP 0x01.
    public var flags: UInt8
    /// Byte 6, bits 0–2: the provisioning type (``thin`` is 2).
    public var provisioningType: UInt8

    /// A page saying whether UNMAP works (the LBPU flag) and how the unit is provisioned.
    public init(unmapSupported: Bool, provisioningType: UInt8 = VPDLogicalBlockProvisioning.thin) {
        self.thresholdExponent = 0
        self.flags = unmapSupported ? Self.lbpuFlag : 0
        self.provisioningType = provisioningType & 0x7
    }

    /// Whether the LBPU flag is set: the device accepts UNMAP.
    public var unmapSupported: Bool { self.flags & Self.lbpuFlag != 0 }

    /// - Throws: ``WireError/unknownType(_:)`` for another page,
    ///   ``WireError/truncated(needed:available:)`` below 2 data bytes (through the flags).
    public init(_ page: VPDPage) throws(WireError) {
        try page.expect(.logicalBlockProvisioning)
        var reader = try page.fields(minimum: 2, size: 3)
        self.thresholdExponent = try reader.readUInt8()
        self.flags = try reader.readUInt8()
        self.provisioningType = try reader.readUInt8() & 0x7
    }

    /// The page to send.
    public var page: VPDPage {
        VPDPage(pageCode: .logicalBlockProvisioning, data: [self.thresholdExponent, self.flags, self.provisioningType & 0x7, 0])
    }
}
