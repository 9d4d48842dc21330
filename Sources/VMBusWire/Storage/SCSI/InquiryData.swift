/// The peripheral device type of INQUIRY byte 0 (SPC). An open set.
public struct SCSIDeviceType: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// 0: a disk.
    public static let directAccess = Self(rawValue: 0x00)
    /// 0x1F with qualifier 3: "no device here", OpenVMM's answer for an absent LUN.
    public static let unknown = Self(rawValue: 0x1F)
}

/// Standard INQUIRY data (SPC), the answer to INQUIRY without EVPD.
///
/// ```
/// 0      qualifier << 5 | device type
/// 1      bit 7 RMB (removable)
/// 2      version (5 = SPC-3: Linux then uses READ CAPACITY(16) and the VPD pages)
/// 3      bits 0–3 response data format (2), bit 4 HiSup, bit 5 NormACA
/// 4      additional length = total − 5
/// 5–7    capability bits (byte 7 bit 1 CmdQue: the device is tagged)
/// 8–15   vendor (ASCII, space-padded)      OpenVMM "Msft    "
/// 16–31  product                           "Virtual Disk    "
/// 32–35  revision                          "1.0 "
/// 36…    vendor-specific and version descriptors (OpenVMM answers 104 bytes in all)
/// ```
///
/// An answer is cut to the allocation length: Linux asks for 36 and asks again if byte 4
/// says there is more. Reading needs the 36 standard bytes and keeps what follows, up to the
/// additional length.
public struct InquiryData: Hashable, Sendable {
    /// The standard fields.
    public static let standardSize = 36
    /// OpenVMM's whole answer.
    public static let openVMMSize = 104
    /// Byte 7 bit 1: command queueing.
    public static let commandQueueingFlag: UInt8 = 0x02

    /// Bits 5–7 of byte 0: 0 connected, 3 "not capable of a device here".
    public var peripheralQualifier: UInt8
    /// Bits 0–4 of byte 0: what kind of device this is.
    public var deviceType: SCSIDeviceType
    /// Byte 1 bit 7, RMB: the medium is removable.
    public var removable: Bool
    /// Byte 2: the SPC version the device claims (5 for SPC-3, 6 for SPC-4).
    public var version: UInt8
    /// Byte 3: response data format in the low nibble (2), HiSup and NormACA above it.
    public var byte3: UInt8
    /// Byte 4 as sent: the answer's length − 5 before any cut.
    public var additionalLength: UInt8
    /// Bytes 5, 6 and 7 (SCCS, PROTECT…; MULTIP, ENCSERV…; CmdQue…) as sent.
    public var byte5: UInt8
    /// Byte 6 as sent (MULTIP, ENCSERV…).
    public var byte6: UInt8
    /// Byte 7 as sent (CmdQue is ``commandQueueingFlag``).
    public var byte7: UInt8
    /// Exactly 8 bytes.
    public var vendor: [UInt8]
    /// Exactly 16 bytes.
    public var product: [UInt8]
    /// Exactly 4 bytes.
    public var revision: [UInt8]
    /// Bytes after the standard 36 that were sent and lie within the additional length.
    public var extra: [UInt8]

    /// The response data format (the low nibble of byte 3): 2 for every current device.
    public var responseDataFormat: UInt8 { self.byte3 & 0x0F }

    /// Byte 7 bit 1 (CmdQue): Linux then sends tagged requests (queue tag, action, flags).
    public var commandQueueing: Bool {
        get { self.byte7 & Self.commandQueueingFlag != 0 }
        set { self.byte7 = newValue ? self.byte7 | Self.commandQueueingFlag : self.byte7 & ~Self.commandQueueingFlag }
    }

    /// A disk's answer as OpenVMM builds it (10 §6.3): type 0, version 5, format 2, CmdQue,
    /// `totalLength` bytes (additional length `totalLength − 5`). Strings are ASCII, cut or
    /// space-padded to their fields.
    /// - Precondition: `totalLength` is 36…260 (local input).
    public static func disk(
        vendor: String = "Msft", product: String = "Virtual Disk", revision: String = "1.0",
        totalLength: Int = InquiryData.openVMMSize
    ) -> InquiryData {
        precondition((Self.standardSize...(255 + 5)).contains(totalLength), "INQUIRY data is 36…260 bytes")
        return InquiryData(
            peripheralQualifier: 0, deviceType: .directAccess, removable: false, version: 5, byte3: 0x02,
            additionalLength: UInt8(totalLength - 5), byte5: 0, byte6: 0, byte7: Self.commandQueueingFlag,
            vendor: Self.field(vendor, size: 8), product: Self.field(product, size: 16),
            revision: Self.field(revision, size: 4), extra: [UInt8](repeating: 0, count: totalLength - Self.standardSize))
    }

    /// The answer for a LUN with no disk (10 §6.3): byte 0 = 0x7F (qualifier 3, type 0x1F),
    /// otherwise like ``disk(vendor:product:revision:totalLength:)`` (OpenVMM keeps the
    /// strings only for LUN 0; pass empty strings for the others).
    public static func noDevice(vendor: String = "", product: String = "", revision: String = "") -> InquiryData {
        var data = Self.disk(vendor: vendor, product: product, revision: revision)
        data.peripheralQualifier = 3
        data.deviceType = .unknown
        return data
    }

    /// An answer with every field given; fields are masked to their bit widths.
    public init(
        peripheralQualifier: UInt8, deviceType: SCSIDeviceType, removable: Bool, version: UInt8, byte3: UInt8,
        additionalLength: UInt8, byte5: UInt8, byte6: UInt8, byte7: UInt8, vendor: [UInt8], product: [UInt8],
        revision: [UInt8], extra: [UInt8]
    ) {
        self.peripheralQualifier = peripheralQualifier & 0x7
        self.deviceType = SCSIDeviceType(rawValue: deviceType.rawValue & 0x1F)
        self.removable = removable
        self.version = version
        self.byte3 = byte3
        self.additionalLength = additionalLength
        self.byte5 = byte5
        self.byte6 = byte6
        self.byte7 = byte7
        self.vendor = Self.pad(vendor, 8)
        self.product = Self.pad(product, 16)
        self.revision = Self.pad(revision, 4)
        self.extra = extra
    }

    /// - Throws: ``WireError/truncated(needed:available:)`` below 36 bytes.
    public init(parsing bytes: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(bytes)
        try reader.require(Self.standardSize)
        let byte0 = try reader.readUInt8()
        self.peripheralQualifier = byte0 >> 5
        self.deviceType = SCSIDeviceType(rawValue: byte0 & 0x1F)
        self.removable = try reader.readUInt8() & 0x80 != 0
        self.version = try reader.readUInt8()
        self.byte3 = try reader.readUInt8()
        self.additionalLength = try reader.readUInt8()
        self.byte5 = try reader.readUInt8()
        self.byte6 = try reader.readUInt8()
        self.byte7 = try reader.readUInt8()
        self.vendor = Array(try reader.readBytes(8))
        self.product = Array(try reader.readBytes(16))
        self.revision = Array(try reader.readBytes(4))
        let declared = max(Int(self.additionalLength) + 5 - Self.standardSize, 0)
        self.extra = Array(reader.readRemaining().prefix(declared))
    }

    /// The 36 standard bytes and ``extra``; the caller cuts the result to the allocation.
    public func encode() -> [UInt8] {
        var writer = WireWriter(capacity: Self.standardSize + self.extra.count)
        writer.writeUInt8(self.peripheralQualifier << 5 | self.deviceType.rawValue & 0x1F)
        writer.writeUInt8(self.removable ? 0x80 : 0)
        writer.writeUInt8(self.version)
        writer.writeUInt8(self.byte3)
        writer.writeUInt8(self.additionalLength)
        writer.writeUInt8(self.byte5)
        writer.writeUInt8(self.byte6)
        writer.writeUInt8(self.byte7)
        writer.writeBytes(Self.pad(self.vendor, 8))
        writer.writeBytes(Self.pad(self.product, 16))
        writer.writeBytes(Self.pad(self.revision, 4))
        writer.writeBytes(self.extra)
        return writer.bytes
    }

    /// An ASCII field: the string's UTF-8 bytes cut or space-padded to `size`.
    public static func field(_ text: String, size: Int) -> [UInt8] {
        Self.pad(Array(text.utf8), size, filler: 0x20)
    }

    static func pad(_ bytes: [UInt8], _ size: Int, filler: UInt8 = 0x20) -> [UInt8] {
        if bytes.count >= size { return Array(bytes.prefix(size)) }
        return bytes + [UInt8](repeating: filler, count: size - bytes.count)
    }
}
