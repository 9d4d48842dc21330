/// INITIATE_CONTACT (14), guest → host: propose a protocol version (04 §3.13).
///
/// 40 bytes; 56 with a client id (6.0 with feature `clientID`). The 8 bytes at 16 are a union
/// whose meaning depends on the *requested* version: the legacy interrupt page GPA below 5.0;
/// message SINT, VTL and (6.0) feature flags from 5.0 on.
public struct InitiateContact: Hashable, Sendable {
    /// Size with the header.
    public static let wireSize = 40
    /// Size with the header and the client id.
    public static let clientIDWireSize = 56

    /// Where host → guest control messages go, by the requested version.
    public enum Target: Hashable, Sendable {
        /// Below 5.0: the GPA of the legacy interrupt page (used by hosts only below 2.4).
        case interruptPage(UInt64)
        /// 5.0 and later: the SINT (Linux sends 2) and VTL for host → guest messages, and at 6.0
        /// the requested feature flags. Bytes 18–19 are reserved (written as zero).
        case synic(sint: UInt8, vtl: UInt8, features: FeatureFlags)
    }

    /// The proposed version.
    public var versionRequested: VMBusVersion
    /// VP that should receive host → guest control messages (honoured from 3.0).
    public var targetVCPU: UInt32
    /// The union at 16–23.
    public var target: Target
    /// GPA of the parent → child monitor page (0 if none).
    public var monitorPage1: UInt64
    /// GPA of the child → parent monitor page (0 iff `monitorPage1` is 0).
    public var monitorPage2: UInt64
    /// The client id of the 56-byte form (6.0 only).
    public var clientID: GUID?

    /// A request for `versionRequested`; ``Target`` says where the host's messages and interrupts go.
    public init(
        versionRequested: VMBusVersion, targetVCPU: UInt32 = 0, target: Target, monitorPage1: UInt64 = 0,
        monitorPage2: UInt64 = 0, clientID: GUID? = nil
    ) {
        self.versionRequested = versionRequested
        self.targetVCPU = targetVCPU
        self.target = target
        self.monitorPage1 = monitorPage1
        self.monitorPage2 = monitorPage2
        self.clientID = clientID
    }

    /// The requested 6.0 features (empty below 6.0).
    public var requestedFeatures: FeatureFlags {
        switch self.target {
        case .interruptPage: return []
        case .synic(_, _, let features): return features
        }
    }

    /// Reads the body after the header. The union is interpreted by the version inside the
    /// message; the client id is read only for a 6.0 request that is long enough to carry it.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize - 8)
        self.versionRequested = VMBusVersion(rawValue: try reader.readUInt32())
        self.targetVCPU = try reader.readUInt32()
        if self.versionRequested >= .win10_5_0 {
            let sint = try reader.readUInt8()
            let vtl = try reader.readUInt8()
            try reader.skip(2)
            let features = try reader.readUInt32()
            // Bytes 20–23 carry feature flags only from 6.0; before that they are reserved.
            self.target = .synic(
                sint: sint, vtl: vtl,
                features: self.versionRequested >= .copper ? FeatureFlags(rawValue: features) : [])
        } else {
            self.target = .interruptPage(try reader.readUInt64())
        }
        self.monitorPage1 = try reader.readUInt64()
        self.monitorPage2 = try reader.readUInt64()
        if self.versionRequested >= .copper && reader.remaining >= Self.clientIDWireSize - Self.wireSize {
            self.clientID = try reader.readGUID()
        } else {
            self.clientID = nil
        }
    }

    /// Writes the body after the header.
    /// - Throws: ``WireError/invalidField(name:value:)`` when the union or the client id does
    ///   not match the requested version (the peer could not read it back as written).
    public func write(to writer: inout WireWriter) throws(WireError) {
        writer.writeUInt32(self.versionRequested.rawValue)
        writer.writeUInt32(self.targetVCPU)
        switch self.target {
        case .interruptPage(let gpa):
            guard self.versionRequested < .win10_5_0 else {
                throw WireError.invalidField(
                    name: "InitiateContact interrupt page at version", value: UInt64(self.versionRequested.rawValue))
            }
            writer.writeUInt64(gpa)
        case .synic(let sint, let vtl, let features):
            guard self.versionRequested >= .win10_5_0,
                features.isEmpty || self.versionRequested >= .copper
            else {
                throw WireError.invalidField(
                    name: "InitiateContact SINT target at version", value: UInt64(self.versionRequested.rawValue))
            }
            writer.writeUInt8(sint)
            writer.writeUInt8(vtl)
            writer.writeZeros(2)
            writer.writeUInt32(features.rawValue)
        }
        writer.writeUInt64(self.monitorPage1)
        writer.writeUInt64(self.monitorPage2)
        if let clientID = self.clientID {
            guard self.versionRequested >= .copper else {
                throw WireError.invalidField(
                    name: "InitiateContact client id at version", value: UInt64(self.versionRequested.rawValue))
            }
            writer.writeGUID(clientID)
        }
    }
}

/// VERSION_RESPONSE (15), host → guest: the answer to InitiateContact (04 §3.14).
///
/// 16 bytes; 20 with the accepted 6.0 features; 40 with server-provided monitor pages (feature
/// 0x40). The form is told apart by size, because the guest knows which version it asked for
/// but the bytes alone must be parseable. Failures always use the 16-byte form.
public struct VersionResponse: Hashable, Sendable {
    /// Size of the basic form, with the header.
    public static let wireSize = 16
    /// Size with the feature flags (6.0).
    public static let featuresWireSize = 20
    /// Size with the server monitor pages (6.0 + feature 0x40).
    public static let monitorPagesWireSize = 40

    /// Monitor page GPAs supplied by the server.
    public struct MonitorPages: Hashable, Sendable {
        /// GPA of the page the host sets pending bits in for the guest (parent → child).
        public var parentToChild: UInt64
        /// GPA of the page the guest sets pending bits in for the host (child → parent).
        public var childToParent: UInt64
        /// Both monitor pages, by GPA.
        public init(parentToChild: UInt64, childToParent: UInt64) {
            self.parentToChild = parentToChild
            self.childToParent = childToParent
        }
    }

    /// Whether the requested version is accepted (any non-zero byte on the wire).
    public var versionSupported: Bool
    /// Valid only if supported; for requests below 2.4 may be garbage and must be treated as success.
    public var connectionState: ConnectionState
    /// ≥ 5.0: the connection id for all further guest posts; older: the selected version (ignored).
    public var messageConnectionID: UInt32
    /// 6.0 only: the accepted feature flags (`nil`: the 16-byte form).
    public var supportedFeatures: FeatureFlags?
    /// 6.0 + feature 0x40: server-provided monitor pages (`nil`: no 40-byte form).
    /// Writing these implies the feature field; a `nil` `supportedFeatures` is written as 0.
    public var monitorPages: MonitorPages?

    /// A response; the optional parts choose the form written (16, 20 or 40 bytes).
    public init(
        versionSupported: Bool, connectionState: ConnectionState = .successful, messageConnectionID: UInt32,
        supportedFeatures: FeatureFlags? = nil, monitorPages: MonitorPages? = nil
    ) {
        self.versionSupported = versionSupported
        self.connectionState = connectionState
        self.messageConnectionID = messageConnectionID
        self.supportedFeatures = supportedFeatures
        self.monitorPages = monitorPages
    }

    /// Reads the body after the 8-byte header, choosing the form by the bytes available.
    /// - Throws: ``WireError/truncated(needed:available:)`` below the 16-byte form.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize - 8)
        self.versionSupported = try reader.readUInt8() != 0
        self.connectionState = ConnectionState(rawValue: try reader.readUInt8())
        try reader.skip(2)
        self.messageConnectionID = try reader.readUInt32()
        if reader.remaining >= Self.featuresWireSize - Self.wireSize {
            self.supportedFeatures = FeatureFlags(rawValue: try reader.readUInt32())
        } else {
            self.supportedFeatures = nil
        }
        if reader.remaining >= Self.monitorPagesWireSize - Self.featuresWireSize {
            try reader.skip(4)
            self.monitorPages = MonitorPages(
                parentToChild: try reader.readUInt64(), childToParent: try reader.readUInt64())
        } else {
            self.monitorPages = nil
        }
    }

    /// Writes the body after the 8-byte header in the smallest form that holds what is set.
    public func write(to writer: inout WireWriter) {
        writer.writeUInt8(self.versionSupported ? 1 : 0)
        writer.writeUInt8(self.connectionState.rawValue)
        writer.writeZeros(2)
        writer.writeUInt32(self.messageConnectionID)
        if self.supportedFeatures != nil || self.monitorPages != nil {
            writer.writeUInt32(self.supportedFeatures?.rawValue ?? 0)
        }
        if let pages = self.monitorPages {
            writer.writeZeros(4)
            writer.writeUInt64(pages.parentToChild)
            writer.writeUInt64(pages.childToParent)
        }
    }
}
