/// OpenChannel flags of the 6.0 extension (04 §3.4 @154). Unknown bits are kept.
public struct OpenChannelFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// Bit 0 REDIRECT_INTERRUPT (feature `channelInterruptRedirection`).
    public static let redirectInterrupt = OpenChannelFlags(rawValue: 1)
}

/// OPENCHANNEL (5), guest → host: open a channel over a ring GPADL (04 §3.4).
///
/// 148 bytes; 156 with the 6.0 extension (guest-chosen signal parameters, open flags).
public struct OpenChannel: Hashable, Sendable {
    /// Size with the header, without the extension.
    public static let wireSize = 148
    /// Size with the header and the 6.0 extension.
    public static let extendedWireSize = 156
    /// `target_vp` meaning "interrupts disabled" (OpenVMM / Windows convention).
    public static let interruptsDisabled: UInt32 = 0xFFFF_FFFF

    /// The 6.0 extension at 148–155.
    public struct Extension: Hashable, Sendable {
        /// Guest-chosen connection id for host → guest events (feature 0x1).
        public var connectionID: UInt32
        /// Guest-chosen event flag; default is the relid (feature 0x1).
        public var eventFlag: UInt16
        /// Open flags (feature 0x2).
        public var flags: OpenChannelFlags

        /// The extension's three fields; they matter only with the 6.0 features that name them.
        public init(connectionID: UInt32, eventFlag: UInt16, flags: OpenChannelFlags = []) {
            self.connectionID = connectionID
            self.eventFlag = eventFlag
            self.flags = flags
        }
    }

    /// The channel to open.
    public var childRelID: UInt32
    /// Guest-chosen id echoed in OpenResult (Linux uses the relid).
    public var openID: UInt32
    /// The GPADL covering both rings.
    public var ringBufferGpadl: UInt32
    /// VP to interrupt for host → guest signals.
    public var targetVP: UInt32
    /// Page index (4 KiB) inside the GPADL where the host → guest ring starts.
    public var downstreamRingBufferPageOffset: UInt32
    /// Device-specific user data (≤ 120 bytes, zero-padded).
    public var userData: UserDefinedBytes
    /// The 6.0 extension, if sent.
    public var `extension`: Extension?

    /// A request to open `childRelID` on the rings `ringBufferGpadl` describes.
    public init(
        childRelID: UInt32, openID: UInt32, ringBufferGpadl: UInt32, targetVP: UInt32,
        downstreamRingBufferPageOffset: UInt32, userData: UserDefinedBytes = UserDefinedBytes(),
        extension: Extension? = nil
    ) {
        self.childRelID = childRelID
        self.openID = openID
        self.ringBufferGpadl = ringBufferGpadl
        self.targetVP = targetVP
        self.downstreamRingBufferPageOffset = downstreamRingBufferPageOffset
        self.userData = userData
        self.extension = `extension`
    }

    /// Reads the body after the header; the extension is read only at 6.0+ and when present.
    public init(from reader: inout WireReader, version: VMBusVersion) throws(WireError) {
        try reader.require(Self.wireSize - 8)
        self.childRelID = try reader.readUInt32()
        self.openID = try reader.readUInt32()
        self.ringBufferGpadl = try reader.readUInt32()
        self.targetVP = try reader.readUInt32()
        self.downstreamRingBufferPageOffset = try reader.readUInt32()
        self.userData = try UserDefinedBytes(from: &reader)
        if version >= .copper && reader.remaining >= Self.extendedWireSize - Self.wireSize {
            self.extension = Extension(
                connectionID: try reader.readUInt32(),
                eventFlag: try reader.readUInt16(),
                flags: OpenChannelFlags(rawValue: try reader.readUInt16()))
        } else {
            self.extension = nil
        }
    }

    /// Writes the body after the 8-byte header: 140 bytes, 148 with the extension.
    public func write(to writer: inout WireWriter) {
        writer.writeUInt32(self.childRelID)
        writer.writeUInt32(self.openID)
        writer.writeUInt32(self.ringBufferGpadl)
        writer.writeUInt32(self.targetVP)
        writer.writeUInt32(self.downstreamRingBufferPageOffset)
        self.userData.write(to: &writer)
        if let ext = self.extension {
            writer.writeUInt32(ext.connectionID)
            writer.writeUInt16(ext.eventFlag)
            writer.writeUInt16(ext.flags.rawValue)
        }
    }
}

/// OPENCHANNEL_RESULT (6), host → guest (04 §3.5). 20 bytes. Linux matches it by (relid, openid).
public struct OpenResult: Hashable, Sendable {
    /// Size on the wire, the 8-byte header included.
    public static let wireSize = 20
    /// The channel that was to be opened.
    public var childRelID: UInt32
    /// The `openID` of the OpenChannel being answered.
    public var openID: UInt32
    /// 0 = success; OpenVMM forwards the device's negative NTSTATUS.
    public var status: NTStatus

    /// The answer to the OpenChannel of `childRelID` and `openID`.
    public init(childRelID: UInt32, openID: UInt32, status: NTStatus) {
        self.childRelID = childRelID
        self.openID = openID
        self.status = status
    }

    /// Reads the body after the 8-byte header.
    /// - Throws: ``WireError/truncated(needed:available:)`` below 12 bytes.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize - 8)
        self.childRelID = try reader.readUInt32()
        self.openID = try reader.readUInt32()
        self.status = NTStatus(rawValue: try reader.readUInt32())
    }

    /// Writes the body after the 8-byte header (12 bytes).
    public func write(to writer: inout WireWriter) {
        writer.writeUInt32(self.childRelID)
        writer.writeUInt32(self.openID)
        writer.writeUInt32(self.status.rawValue)
    }
}
