/// VPD 0x83 Device Identification (SPC): a list of designators. A host must give at least
/// one (10 §6.2); OpenVMM gives a T10 vendor id and an NAA-6 name built from the disk's GUID.
public struct VPDDeviceIdentification: Hashable, Sendable {
    /// One designator.
    ///
    /// ```
    /// 0    protocol identifier << 4 | code set (1 binary, 2 ASCII, 3 UTF-8)
    /// 1    bit 7 PIV | association << 4 (0 LUN, 1 port, 2 target) | designator type
    /// 2    reserved
    /// 3    length n
    /// 4…   n identifier bytes
    /// ```
    public struct Designator: Hashable, Sendable {
        /// Bytes before the identifier.
        public static let headerSize = 4
        /// Designator type 1: T10 vendor id (8-byte vendor then vendor-specific).
        public static let t10VendorIDType: UInt8 = 1
        /// Designator type 2: EUI-64.
        public static let eui64Type: UInt8 = 2
        /// Designator type 3: NAA.
        public static let naaType: UInt8 = 3
        /// Code set 1: the identifier is binary.
        public static let binaryCodeSet: UInt8 = 1
        /// Code set 2: the identifier is printable ASCII.
        public static let asciiCodeSet: UInt8 = 2

        /// Byte 0 bits 4–7: the protocol the identifier belongs to (meaningful with ``protocolIdentifierValid``).
        public var protocolIdentifier: UInt8
        /// Byte 0 bits 0–3: how the identifier is encoded (``binaryCodeSet``, ``asciiCodeSet``, 3 UTF-8).
        public var codeSet: UInt8
        /// Byte 1 bit 7, PIV: ``protocolIdentifier`` is meaningful.
        public var protocolIdentifierValid: Bool
        /// Byte 1 bits 4–5: what is identified: 0 the LUN, 1 the port, 2 the target.
        public var association: UInt8
        /// Byte 1 bits 0–3: the kind of identifier (``t10VendorIDType``, ``eui64Type``, ``naaType``).
        public var designatorType: UInt8
        /// The identifier's bytes (at most 255).
        public var identifier: [UInt8]

        /// - Precondition: `identifier` is at most 255 bytes (local input).
        public init(
            designatorType: UInt8, codeSet: UInt8, identifier: [UInt8], association: UInt8 = 0,
            protocolIdentifier: UInt8 = 0, protocolIdentifierValid: Bool = false
        ) {
            precondition(identifier.count <= 255, "a designator holds at most 255 bytes")
            self.protocolIdentifier = protocolIdentifier & 0x0F
            self.codeSet = codeSet & 0x0F
            self.protocolIdentifierValid = protocolIdentifierValid
            self.association = association & 0x3
            self.designatorType = designatorType & 0x0F
            self.identifier = identifier
        }

        /// A T10 vendor id designator: ASCII, the 8-byte vendor field then `id`.
        public static func t10VendorID(vendor: String, id: [UInt8]) -> Designator {
            Designator(designatorType: Self.t10VendorIDType, codeSet: Self.asciiCodeSet, identifier: InquiryData.field(vendor, size: 8) + id)
        }

        /// An NAA designator (binary; NAA 6 is 16 bytes).
        public static func naa(_ bytes: [UInt8]) -> Designator {
            Designator(designatorType: Self.naaType, codeSet: Self.binaryCodeSet, identifier: bytes)
        }
    }

    /// The designators, in page order.
    public var designators: [Designator]
    /// A page of `designators`.
    public init(designators: [Designator]) { self.designators = designators }

    /// Reads every designator of the page's data.
    /// - Throws: ``WireError/unknownType(_:)`` for another page;
    ///   ``WireError/truncated(needed:available:)`` when a designator runs past the data
    ///   or the page was cut by the allocation length (ask again with the page length): a
    ///   cut list cannot be told from a complete one otherwise.
    public init(_ page: VPDPage) throws(WireError) {
        try page.expect(.deviceIdentification)
        if page.data.count < Int(page.pageLength) {
            throw WireError.truncated(needed: Int(page.pageLength), available: page.data.count)
        }
        var reader = WireReader(page.data)
        var designators: [Designator] = []
        // Each designator takes at least 4 of the data's bytes, so this grows no further
        // than the page that was received.
        while reader.remaining > 0 {
            try reader.require(Designator.headerSize)
            let byte0 = try reader.readUInt8()
            let byte1 = try reader.readUInt8()
            try reader.skip(1)
            let length = Int(try reader.readUInt8())
            let identifier = Array(try reader.readBytes(length))
            designators.append(
                Designator(
                    designatorType: byte1 & 0x0F, codeSet: byte0 & 0x0F, identifier: identifier,
                    association: (byte1 >> 4) & 0x3, protocolIdentifier: byte0 >> 4,
                    protocolIdentifierValid: byte1 & 0x80 != 0))
        }
        self.designators = designators
    }

    /// The page to send.
    public var page: VPDPage {
        var writer = WireWriter()
        for designator in self.designators {
            writer.writeUInt8(designator.protocolIdentifier << 4 | designator.codeSet & 0x0F)
            writer.writeUInt8(
                (designator.protocolIdentifierValid ? 0x80 : 0) | (designator.association & 0x3) << 4
                    | designator.designatorType & 0x0F)
            writer.writeUInt8(0)
            writer.writeUInt8(UInt8(truncatingIfNeeded: designator.identifier.count))
            writer.writeBytes(designator.identifier.prefix(255))
        }
        return VPDPage(pageCode: .deviceIdentification, data: writer.bytes)
    }
}
