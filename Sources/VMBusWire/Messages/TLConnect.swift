/// TL_CONNECT_REQUEST (21), guest → host, 4.0+: connect an hvsock to a host service
/// (04 §3.17, 07 §3.1). 40 bytes; 56 with a silo id (5.2+). Success is an offer, not a reply.
public struct TLConnectRequest: Hashable, Sendable {
    /// Size of the form without a silo id, the 8-byte header included.
    public static let wireSize = 40
    /// Size of the form with a silo id (5.2+), the 8-byte header included.
    public static let siloWireSize = 56

    /// The guest end (Linux: the vsock template carrying the local port).
    public var guestEndpointID: GUID
    /// The service to connect to.
    public var hostServiceID: GUID
    /// 5.2+ optional silo (zero = default). Linux never sends it; hosts accept both forms.
    public var siloID: GUID?

    /// A request; a `siloID` selects the 56-byte form.
    public init(guestEndpointID: GUID, hostServiceID: GUID, siloID: GUID? = nil) {
        self.guestEndpointID = guestEndpointID
        self.hostServiceID = hostServiceID
        self.siloID = siloID
    }

    /// Reads the body; the silo id only at 5.2+ and when present.
    public init(from reader: inout WireReader, version: VMBusVersion) throws(WireError) {
        try reader.require(Self.wireSize - 8)
        self.guestEndpointID = try reader.readGUID()
        self.hostServiceID = try reader.readGUID()
        if version >= .win10_5_2 && reader.remaining >= Self.siloWireSize - Self.wireSize {
            self.siloID = try reader.readGUID()
        } else {
            self.siloID = nil
        }
    }

    /// Writes the body after the 8-byte header: 32 bytes, 48 with a silo id.
    public func write(to writer: inout WireWriter) {
        writer.writeGUID(self.guestEndpointID)
        writer.writeGUID(self.hostServiceID)
        if let silo = self.siloID { writer.writeGUID(silo) }
    }
}

/// TL_CONNECT_RESULT (23), host → guest, 4.1+: sent only when a connect fails (04 §3.19).
/// 44 bytes. Linux has no handler for it.
public struct TLConnectResult: Hashable, Sendable {
    /// Size on the wire, the 8-byte header included.
    public static let wireSize = 44
    /// The guest endpoint of the failed request.
    public var endpointID: GUID
    /// The service of the failed request.
    public var serviceID: GUID
    /// OpenVMM sends 0xC0000236 STATUS_CONNECTION_REFUSED.
    public var status: NTStatus

    /// The failure of the connect from `endpointID` to `serviceID`.
    public init(endpointID: GUID, serviceID: GUID, status: NTStatus) {
        self.endpointID = endpointID
        self.serviceID = serviceID
        self.status = status
    }

    /// Reads the body after the 8-byte header.
    /// - Throws: ``WireError/truncated(needed:available:)`` below 36 bytes.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize - 8)
        self.endpointID = try reader.readGUID()
        self.serviceID = try reader.readGUID()
        self.status = NTStatus(rawValue: try reader.readUInt32())
    }

    /// Writes the body after the 8-byte header (36 bytes).
    public func write(to writer: inout WireWriter) {
        writer.writeGUID(self.endpointID)
        writer.writeGUID(self.serviceID)
        writer.writeUInt32(self.status.rawValue)
    }
}
