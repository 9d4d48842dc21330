/// The mode parameter header of a MODE SENSE answer (SPC).
///
/// ```
/// (6)   0 mode data length | 1 medium type | 2 device-specific | 3 block descriptor length
/// (10)  0–1 mode data length | 2 medium type | 3 device-specific | 4 bit 0 LONGLBA | 5 reserved
///       | 6–7 block descriptor length
/// ```
///
/// The mode data length counts the bytes after itself. For a disk the device-specific byte
/// carries WP (bit 7, write-protected: Linux makes the disk read-only) and DPOFUA (bit 4:
/// Linux then sets FUA on writes).
public struct ModeParameterHeader: Hashable, Sendable {
    /// Device-specific bit 7: the disk is write-protected.
    public static let writeProtectFlag: UInt8 = 0x80
    /// Device-specific bit 4: DPO and FUA are supported.
    public static let dpoFUAFlag: UInt8 = 0x10

    /// `.six` or `.ten`.
    public var form: SCSICDBForm
    /// The mode data length: the bytes after this field.
    public var modeDataLength: UInt16
    /// The medium type (0 for a disk).
    public var mediumType: UInt8
    /// The device-specific byte: ``writeProtectFlag`` and ``dpoFUAFlag`` for a disk.
    public var deviceSpecific: UInt8
    /// (10) only.
    public var longLBA: Bool
    /// Bytes of block descriptors after the header.
    public var blockDescriptorLength: UInt16

    /// A header of `form`; lengths too large for the 6-byte form are cut to one byte.
    public init(
        form: SCSICDBForm, modeDataLength: UInt16 = 0, mediumType: UInt8 = 0, deviceSpecific: UInt8 = 0,
        longLBA: Bool = false, blockDescriptorLength: UInt16 = 0
    ) {
        self.form = form == .ten ? .ten : .six
        self.modeDataLength = self.form == .six ? modeDataLength & 0xFF : modeDataLength
        self.mediumType = mediumType
        self.deviceSpecific = deviceSpecific
        self.longLBA = self.form == .ten && longLBA
        self.blockDescriptorLength = self.form == .six ? blockDescriptorLength & 0xFF : blockDescriptorLength
    }

    /// Bytes of the header: 4 in the 6-byte form, 8 in the 10-byte form.
    public var size: Int { self.form == .ten ? 8 : 4 }
    /// Whether WP is set: the disk is write-protected.
    public var writeProtected: Bool { self.deviceSpecific & Self.writeProtectFlag != 0 }
    /// Whether DPOFUA is set: the disk honours DPO and FUA.
    public var supportsDPOFUA: Bool { self.deviceSpecific & Self.dpoFUAFlag != 0 }
    /// Bytes the whole answer has: the mode data length plus the length field itself.
    public var totalLength: Int { Int(self.modeDataLength) + (self.form == .ten ? 2 : 1) }
}

/// One mode page (SPC): byte 0 PS (bit 7), SPF (bit 6) and the page code; without SPF a
/// 1-byte length @1, with it a subpage @1 and a 2-byte length @2.
public struct ModePage: Hashable, Sendable {
    /// The page code (6 bits).
    public var pageCode: UInt8
    /// `nil` for the page_0 format (no SPF).
    public var subpageCode: UInt8?
    /// PS: the page's parameters can be saved.
    public var parametersSavable: Bool
    /// The page's bytes after its length field.
    public var data: [UInt8]

    /// - Precondition: `data` fits the format's length field (255 or 65535 bytes; local input).
    public init(pageCode: UInt8, subpageCode: UInt8? = nil, parametersSavable: Bool = false, data: [UInt8]) {
        precondition(data.count <= (subpageCode == nil ? 255 : 65535), "mode page too long for its length field")
        self.pageCode = pageCode & 0x3F
        self.subpageCode = subpageCode
        self.parametersSavable = parametersSavable
        self.data = data
    }

    var encodedSize: Int { (self.subpageCode == nil ? 2 : 4) + self.data.count }

    func write(to writer: inout WireWriter) {
        writer.writeUInt8((self.parametersSavable ? 0x80 : 0) | (self.subpageCode == nil ? 0 : 0x40) | self.pageCode & 0x3F)
        if let subpage = self.subpageCode {
            writer.writeUInt8(subpage)
            writer.writeBigEndianUInt16(UInt16(truncatingIfNeeded: self.data.count))
        } else {
            writer.writeUInt8(UInt8(truncatingIfNeeded: self.data.count))
        }
        writer.writeBytes(self.data)
    }
}

/// A MODE SENSE answer: header, block descriptors and pages.
///
/// An answer is cut to the allocation length (Linux asks for 4 bytes, the header, first).
/// Reading therefore takes what lies within both the input and the mode data length: block
/// descriptors up to their length, then whole pages; a page cut short at the end is dropped
/// (ask again with ``ModeParameterHeader/totalLength``).
public struct ModeParameterList: Hashable, Sendable {
    /// The header as sent (or, for a complete answer, as computed).
    public var header: ModeParameterHeader
    /// The block descriptor bytes that arrived (at most the header's length).
    public var blockDescriptors: [UInt8]
    /// The whole pages that arrived, in order.
    public var pages: [ModePage]

    /// A complete answer: the header's lengths are set from the descriptors and pages.
    public init(form: SCSICDBForm, deviceSpecific: UInt8, blockDescriptors: [UInt8] = [], pages: [ModePage]) {
        let size = form == .ten ? 8 : 4
        let total = size + blockDescriptors.count + pages.reduce(0) { $0 + $1.encodedSize }
        self.header = ModeParameterHeader(
            form: form, modeDataLength: UInt16(truncatingIfNeeded: total - (form == .ten ? 2 : 1)),
            deviceSpecific: deviceSpecific, blockDescriptorLength: UInt16(truncatingIfNeeded: blockDescriptors.count))
        self.blockDescriptors = blockDescriptors
        self.pages = pages
    }

    /// Reads an answer of the given form.
    /// - Throws: ``WireError/truncated(needed:available:)`` below the header (4 or 8 bytes).
    public init(parsing bytes: ArraySlice<UInt8>, form: SCSICDBForm) throws(WireError) {
        var reader = WireReader(bytes)
        let header: ModeParameterHeader
        if form == .ten {
            try reader.require(8)
            let length = try reader.readBigEndianUInt16()
            let medium = try reader.readUInt8()
            let specific = try reader.readUInt8()
            let longLBA = try reader.readUInt8() & 0x01 != 0
            try reader.skip(1)
            header = ModeParameterHeader(
                form: .ten, modeDataLength: length, mediumType: medium, deviceSpecific: specific, longLBA: longLBA,
                blockDescriptorLength: try reader.readBigEndianUInt16())
        } else {
            try reader.require(4)
            header = ModeParameterHeader(
                form: .six, modeDataLength: UInt16(try reader.readUInt8()), mediumType: try reader.readUInt8(),
                deviceSpecific: try reader.readUInt8(), blockDescriptorLength: UInt16(try reader.readUInt8()))
        }
        self.header = header
        // Everything after the header that is both present and declared.
        let end = min(bytes.count, max(header.totalLength, header.size))
        var body = WireReader(bytes.dropFirst(header.size).prefix(end - header.size))
        let descriptorBytes = min(Int(header.blockDescriptorLength), body.remaining)
        self.blockDescriptors = Array(try body.readBytes(descriptorBytes))
        var pages: [ModePage] = []
        // Every page takes at least 2 of the received bytes: bounded by the input.
        while body.remaining >= 2 {
            var page = body
            let byte0 = try page.readUInt8()
            let subpage: UInt8?
            let length: Int
            if byte0 & 0x40 != 0 {
                guard page.remaining >= 3 else { break }
                subpage = try page.readUInt8()
                length = Int(try page.readBigEndianUInt16())
            } else {
                subpage = nil
                length = Int(try page.readUInt8())
            }
            guard length <= page.remaining else { break }
            pages.append(
                ModePage(pageCode: byte0 & 0x3F, subpageCode: subpage, parametersSavable: byte0 & 0x80 != 0,
                    data: Array(try page.readBytes(length))))
            body = page
        }
        self.pages = pages
    }

    /// The header (lengths as stored), the descriptors and the pages; the caller cuts the
    /// result to the allocation length.
    public func encode() -> [UInt8] {
        var writer = WireWriter()
        if self.header.form == .ten {
            writer.writeBigEndianUInt16(self.header.modeDataLength)
            writer.writeUInt8(self.header.mediumType)
            writer.writeUInt8(self.header.deviceSpecific)
            writer.writeUInt8(self.header.longLBA ? 1 : 0)
            writer.writeUInt8(0)
            writer.writeBigEndianUInt16(self.header.blockDescriptorLength)
        } else {
            writer.writeUInt8(UInt8(truncatingIfNeeded: self.header.modeDataLength))
            writer.writeUInt8(self.header.mediumType)
            writer.writeUInt8(self.header.deviceSpecific)
            writer.writeUInt8(UInt8(truncatingIfNeeded: self.header.blockDescriptorLength))
        }
        writer.writeBytes(self.blockDescriptors)
        for page in self.pages { page.write(to: &writer) }
        return writer.bytes
    }
}

/// The caching mode page (0x08, SBC): byte 2 of the page holds WCE (bit 2: write cache on,
/// so Linux sends SYNCHRONIZE CACHE on flush) and RCD (bit 0: read cache off).
///
/// SBC's page has length 0x12 (20 bytes in all); OpenVMM sends Windows' 12-byte
/// `MODE_CACHING_PAGE`. Reading needs only the flags byte.
public struct CachingModePage: Hashable, Sendable {
    /// The caching page's code.
    public static let pageCode: UInt8 = 0x08
    /// SBC's page length.
    public static let pageLength = 0x12
    static let wceFlag: UInt8 = 0x04
    static let rcdFlag: UInt8 = 0x01

    /// WCE: the device has a write-back cache (the guest must flush).
    public var writeCacheEnabled: Bool
    /// RCD: the device does not cache reads.
    public var readCacheDisabled: Bool

    /// A caching page with these flags.
    public init(writeCacheEnabled: Bool, readCacheDisabled: Bool = false) {
        self.writeCacheEnabled = writeCacheEnabled
        self.readCacheDisabled = readCacheDisabled
    }

    /// - Throws: ``WireError/unknownType(_:)`` for another page,
    ///   ``WireError/truncated(needed:available:)`` for a page without its flags byte.
    public init(_ page: ModePage) throws(WireError) {
        guard page.pageCode == Self.pageCode, page.subpageCode == nil || page.subpageCode == 0 else {
            throw WireError.unknownType(UInt32(page.pageCode))
        }
        guard let flags = page.data.first else { throw WireError.truncated(needed: 1, available: 0) }
        self.writeCacheEnabled = flags & Self.wceFlag != 0
        self.readCacheDisabled = flags & Self.rcdFlag != 0
    }

    /// The page with SBC's length; every other field zero.
    public var page: ModePage {
        var data = [UInt8](repeating: 0, count: Self.pageLength)
        data[0] = (self.writeCacheEnabled ? Self.wceFlag : 0) | (self.readCacheDisabled ? Self.rcdFlag : 0)
        return ModePage(pageCode: Self.pageCode, data: data)
    }
}
