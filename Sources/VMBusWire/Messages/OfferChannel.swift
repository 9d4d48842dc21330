/// Offer flags (`chn_flags`, 04 §3.1.1). Unknown bits are kept.
public struct OfferFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// 0x0001: interface / pipe-style offer (Windows enumerates a device interface).
    public static let enumerateDeviceInterface = OfferFlags(rawValue: 0x0001)
    /// 0x0002: 6.0+ confidential ring buffer (Linux ≤ 6.17: SERVER_SUPPORTS_TRANSFER_PAGES).
    public static let confidentialRingBuffer = OfferFlags(rawValue: 0x0002)
    /// 0x0004: 6.0+ confidential external memory (Linux ≤ 6.17: SERVER_SUPPORTS_GPADLS).
    public static let confidentialExternalMemory = OfferFlags(rawValue: 0x0004)
    /// 0x0008: external memory must be pinned (OpenVMM, with feature `gpaPinning`).
    public static let requirePinnedExternalMemory = OfferFlags(rawValue: 0x0008)
    /// 0x0010: named pipe mode: the user-defined area starts with pipe parameters.
    public static let namedPipeMode = OfferFlags(rawValue: 0x0010)
    /// 0x0100: loopback offer (Linux name).
    public static let loopbackOffer = OfferFlags(rawValue: 0x0100)
    /// 0x0200: parent offer (Linux name).
    public static let parentOffer = OfferFlags(rawValue: 0x0200)
    /// 0x0400: request monitored notification (Linux name).
    public static let requestMonitoredNotification = OfferFlags(rawValue: 0x0400)
    /// 0x2000: an hvsock (TLNPI provider) offer.
    public static let tlnpiProvider = OfferFlags(rawValue: 0x2000)

    /// The flags of every hvsock offer: 0x2011 (05 §6).
    public static let hvsock: OfferFlags = [.enumerateDeviceInterface, .namedPipeMode, .tlnpiProvider]
    /// The flags of a message-mode pipe offer such as the integration services: 0x0011.
    public static let pipe: OfferFlags = [.enumerateDeviceInterface, .namedPipeMode]

    /// The flags a host may send at `version` (04 §3.1.1): ≤ 3.0 only 0x1 | 0x10; 4.0 adds
    /// 0x2000; 6.0 adds the confidential bits only with `confidentialChannels` and 0x8 only
    /// with `gpaPinning`.
    public static func allowed(version: VMBusVersion, features: FeatureFlags) -> OfferFlags {
        var flags: OfferFlags = [.enumerateDeviceInterface, .namedPipeMode]
        if version >= .win10 { flags.insert(.tlnpiProvider) }
        if version >= .copper {
            if features.contains(.confidentialChannels) {
                flags.formUnion([.confidentialRingBuffer, .confidentialExternalMemory])
            }
            if features.contains(.gpaPinning) { flags.insert(.requirePinnedExternalMemory) }
        }
        return flags
    }
}

/// OFFERCHANNEL (1), host → guest: a channel the guest may open (04 §3.1).
///
/// 196 bytes from protocol 1.1 on; 190 bytes before (no interrupt flags, no connection id).
/// The reserved fields at 40–55 are ignored when read and written as zero.
public struct OfferChannel: Hashable, Sendable {
    /// Size with the 8-byte header, protocol ≥ 1.1.
    public static let wireSize = 196
    /// Size with the 8-byte header, protocol 0.13.
    public static let legacyWireSize = 190

    /// Device class (for hvsock: the service id).
    public var interfaceType: GUID
    /// Device instance (for hvsock: the endpoint id).
    public var interfaceInstance: GUID
    /// Offer flags.
    public var flags: OfferFlags
    /// MMIO space the device needs, in MiB.
    public var mmioMegabytes: UInt16
    /// Device-specific bytes (pipe / hvsock parameters for pipe offers).
    public var userDefined: UserDefinedBytes
    /// 0 for a primary channel, ≥ 1 for a sub-channel.
    public var subChannelIndex: UInt16
    /// OpenVMM: optional extra MMIO in MiB (`reserved3` in Linux).
    public var mmioMegabytesOptional: UInt16
    /// The channel id (relid).
    public var childRelID: UInt32
    /// Monitor id 0–127 (OpenVMM sends 0xFF when none).
    public var monitorID: UInt8
    /// Byte 189: bit 0 monitor allocated, bits 1–7 reserved (kept as sent).
    public var monitorFlags: UInt8
    /// Bytes 190–191: bit 0 is_dedicated_interrupt, bits 1–15 reserved (kept as sent).
    /// Absent (`nil`) in the 190-byte form of protocol 0.13.
    public var interruptFlags: UInt16?
    /// The connection id for this channel's guest → host signals; `nil` in the 190-byte form.
    public var connectionID: UInt32?

    /// An offer in the 196-byte form; `connectionID` `nil` writes the 190-byte form of 0.13.
    public init(
        interfaceType: GUID, interfaceInstance: GUID, flags: OfferFlags = [], mmioMegabytes: UInt16 = 0,
        userDefined: UserDefinedBytes = UserDefinedBytes(), subChannelIndex: UInt16 = 0,
        mmioMegabytesOptional: UInt16 = 0, childRelID: UInt32, monitorID: UInt8 = 0xFF,
        monitorAllocated: Bool = false, isDedicatedInterrupt: Bool = true, connectionID: UInt32
    ) {
        self.interfaceType = interfaceType
        self.interfaceInstance = interfaceInstance
        self.flags = flags
        self.mmioMegabytes = mmioMegabytes
        self.userDefined = userDefined
        self.subChannelIndex = subChannelIndex
        self.mmioMegabytesOptional = mmioMegabytesOptional
        self.childRelID = childRelID
        self.monitorID = monitorID
        self.monitorFlags = monitorAllocated ? 1 : 0
        self.interruptFlags = isDedicatedInterrupt ? 1 : 0
        self.connectionID = connectionID
    }

    /// Whether guest → host signals go through the monitor page.
    public var monitorAllocated: Bool { self.monitorFlags & 1 != 0 }

    /// Whether the guest must not set the legacy interrupt-page bit when signalling.
    public var isDedicatedInterrupt: Bool { (self.interruptFlags ?? 0) & 1 != 0 }

    /// Whether this is the 190-byte form of protocol 0.13.
    public var isLegacyForm: Bool { self.connectionID == nil }

    /// Reads the body after the 8-byte header.
    /// - Parameter reader: positioned just after the header.
    /// - Parameter version: selects the 190-byte form below 1.1.
    public init(from reader: inout WireReader, version: VMBusVersion) throws(WireError) {
        try reader.require((version < .win7 ? Self.legacyWireSize : Self.wireSize) - 8)
        self.interfaceType = try reader.readGUID()
        self.interfaceInstance = try reader.readGUID()
        try reader.skip(16)
        self.flags = OfferFlags(rawValue: try reader.readUInt16())
        self.mmioMegabytes = try reader.readUInt16()
        self.userDefined = try UserDefinedBytes(from: &reader)
        self.subChannelIndex = try reader.readUInt16()
        self.mmioMegabytesOptional = try reader.readUInt16()
        self.childRelID = try reader.readUInt32()
        self.monitorID = try reader.readUInt8()
        self.monitorFlags = try reader.readUInt8()
        if version < .win7 {
            self.interruptFlags = nil
            self.connectionID = nil
        } else {
            self.interruptFlags = try reader.readUInt16()
            self.connectionID = try reader.readUInt32()
        }
    }

    /// Writes the body after the 8-byte header (190 or 196 bytes in all, by `isLegacyForm`).
    public func write(to writer: inout WireWriter) {
        writer.writeGUID(self.interfaceType)
        writer.writeGUID(self.interfaceInstance)
        writer.writeZeros(16)
        writer.writeUInt16(self.flags.rawValue)
        writer.writeUInt16(self.mmioMegabytes)
        self.userDefined.write(to: &writer)
        writer.writeUInt16(self.subChannelIndex)
        writer.writeUInt16(self.mmioMegabytesOptional)
        writer.writeUInt32(self.childRelID)
        writer.writeUInt8(self.monitorID)
        writer.writeUInt8(self.monitorFlags)
        if let connectionID = self.connectionID {
            writer.writeUInt16(self.interruptFlags ?? 0)
            writer.writeUInt32(connectionID)
        }
    }
}
