/// Fixed-format sense data (SPC), the only format Hyper-V hosts return (10 §4.4): 18 bytes in
/// the 20-byte sense area of a completion, with AUTOSENSE_VALID and CHECK CONDITION.
///
/// ```
/// 0      response code 0x70 (current) / 0x71 (deferred); bit 7 VALID (information valid)
/// 2      bits 0–3 sense key; bit 5 ILI, 6 EOM, 7 FILEMARK
/// 3–6    information (big-endian)
/// 7      additional sense length = 10
/// 8–11   command-specific information
/// 12     ASC
/// 13     ASCQ
/// 14     FRU code
/// 15–17  sense-key specific (bit 7 of 15: SKSV)
/// ```
public struct FixedSenseData: Hashable, Sendable {
    /// Size of fixed-format sense data as hosts send it.
    public static let wireSize = 18
    /// Current error.
    public static let currentResponseCode: UInt8 = 0x70
    /// Deferred error.
    public static let deferredResponseCode: UInt8 = 0x71

    /// Byte 0 without the VALID bit: 0x70 or 0x71.
    public var responseCode: UInt8
    /// Byte 0 bit 7: ``information`` is meaningful.
    public var informationValid: Bool
    /// Byte 2 bits 0–3: the class of failure.
    public var senseKey: SenseKey
    /// Byte 2 bits 5–7 (ILI, EOM, FILEMARK), kept as they were sent.
    public var flags: UInt8
    /// Bytes 3–6: command-dependent (the failing LBA, for one), meaningful with ``informationValid``.
    public var information: UInt32
    /// Byte 7 as sent: 10 for 18-byte sense. Readers use the fixed layout whatever it says.
    public var additionalLength: UInt8
    /// Bytes 8–11: command-specific information.
    public var commandSpecificInformation: UInt32
    /// Bytes 12–13: ASC and ASCQ, what went wrong within the sense key.
    public var additionalSense: AdditionalSense
    /// Byte 14: the field-replaceable unit that failed (0: none named).
    public var fieldReplaceableUnitCode: UInt8
    /// Bytes 15–17.
    public var senseKeySpecific: UInt32

    /// Sense data for `senseKey` and `additionalSense`; ``informationValid`` is set when `information` is given.
    public init(
        senseKey: SenseKey, additionalSense: AdditionalSense, responseCode: UInt8 = FixedSenseData.currentResponseCode,
        information: UInt32? = nil, commandSpecificInformation: UInt32 = 0, fieldReplaceableUnitCode: UInt8 = 0,
        senseKeySpecific: UInt32 = 0
    ) {
        self.responseCode = responseCode & 0x7F
        self.informationValid = information != nil
        self.senseKey = SenseKey(rawValue: senseKey.rawValue & 0x0F)
        self.flags = 0
        self.information = information ?? 0
        self.additionalLength = UInt8(Self.wireSize - 8)
        self.commandSpecificInformation = commandSpecificInformation
        self.additionalSense = additionalSense
        self.fieldReplaceableUnitCode = fieldReplaceableUnitCode
        self.senseKeySpecific = senseKeySpecific & 0xFF_FFFF
    }

    /// Reads fixed-format sense.
    /// - Throws: ``WireError/invalidField(name:value:)`` for a response code other than
    ///   0x70/0x71 (descriptor format, 0x72/0x73, is not used on this bus);
    ///   ``WireError/truncated(needed:available:)`` below 18 bytes.
    public init(parsing bytes: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(bytes)
        let byte0 = try reader.readUInt8()
        let code = byte0 & 0x7F
        guard code == Self.currentResponseCode || code == Self.deferredResponseCode else {
            throw WireError.invalidField(name: "sense response code", value: UInt64(byte0))
        }
        try reader.require(Self.wireSize - 1)
        self.responseCode = code
        self.informationValid = byte0 & 0x80 != 0
        try reader.skip(1)
        let byte2 = try reader.readUInt8()
        self.senseKey = SenseKey(rawValue: byte2 & 0x0F)
        self.flags = byte2 & 0xE0
        self.information = try reader.readBigEndianUInt32()
        self.additionalLength = try reader.readUInt8()
        self.commandSpecificInformation = try reader.readBigEndianUInt32()
        self.additionalSense = AdditionalSense(code: try reader.readUInt8(), qualifier: try reader.readUInt8())
        self.fieldReplaceableUnitCode = try reader.readUInt8()
        let high = try reader.readUInt8()
        self.senseKeySpecific = UInt32(high) << 16 | UInt32(try reader.readBigEndianUInt16())
    }

    /// The 18 bytes.
    public func encode() -> [UInt8] {
        var writer = WireWriter(capacity: Self.wireSize)
        writer.writeUInt8(self.responseCode & 0x7F | (self.informationValid ? 0x80 : 0))
        writer.writeUInt8(0)
        writer.writeUInt8(self.flags & 0xE0 | self.senseKey.rawValue & 0x0F)
        writer.writeBigEndianUInt32(self.information)
        writer.writeUInt8(self.additionalLength)
        writer.writeBigEndianUInt32(self.commandSpecificInformation)
        writer.writeUInt8(self.additionalSense.code)
        writer.writeUInt8(self.additionalSense.qualifier)
        writer.writeUInt8(self.fieldReplaceableUnitCode)
        writer.writeUInt8(UInt8(truncatingIfNeeded: self.senseKeySpecific >> 16))
        writer.writeBigEndianUInt16(UInt16(truncatingIfNeeded: self.senseKeySpecific))
        return writer.bytes
    }
}
