/// `addr_family` of the KVP IP records (06 §6.2). An open set; integer literals convert.
public struct KVPAddressFamily: RawRepresentable, Hashable, Sendable, ExpressibleByIntegerLiteral {
    /// The byte as sent.
    public var rawValue: UInt8
    /// Wraps any wire value, named or not.
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// Wraps a literal value.
    public init(integerLiteral value: UInt8) { self.rawValue = value }
    /// 0: none (not named `none`, which would read as `Optional.none`).
    public static let unspecified = Self(rawValue: 0)
    /// 1: IPv4.
    public static let ipv4 = Self(rawValue: 1)
    /// 2: IPv6.
    public static let ipv6 = Self(rawValue: 2)
    /// 3: both (OpenVMM).
    public static let both = Self(rawValue: 3)
}

/// `hv_kvp_ipaddr_value`: an adapter's IP configuration in string form (KVP ≤ 4.0; 06 §6.2),
/// 7426 bytes, packed. Address lists are `;`-separated UTF-16 text.
///
/// | Offset | Size | Field |
/// |---|---|---|
/// | 0 | 256 | adapter_id (128 units) |
/// | 256 | 1 | addr_family |
/// | 257 | 1 | dhcp_enabled |
/// | 258 | 2048 | ip_addr |
/// | 2306 | 2048 | sub_net |
/// | 4354 | 1024 | gate_way |
/// | 5378 | 2048 | dns_addr |
public struct KVPIPInfo: Hashable, Sendable {
    /// Bytes on the wire.
    public static let wireSize = 7426
    /// Bytes of `adapter_id` (`MAX_ADAPTER_ID_SIZE` units × 2).
    public static let adapterIDSize = 256
    /// Bytes of `ip_addr`, `sub_net` and `dns_addr` each.
    public static let addressListSize = 2048
    /// Bytes of `gate_way`.
    public static let gatewayListSize = 1024

    /// GET: the adapter's MAC address text; SET: its GUID (Linux daemon behaviour).
    public var adapterID: String
    /// `addr_family`.
    public var addressFamily: KVPAddressFamily
    /// `dhcp_enabled` (non-zero: DHCP), kept as sent.
    public var dhcpEnabled: UInt8
    /// `ip_addr`: addresses, `;`-separated.
    public var ipAddresses: String
    /// `sub_net`: subnet masks or prefix lengths, `;`-separated.
    public var subnets: String
    /// `gate_way`: gateways, `;`-separated.
    public var gateways: String
    /// `dns_addr`: DNS servers, `;`-separated.
    public var dnsServers: String

    /// A record.
    public init(
        adapterID: String, addressFamily: KVPAddressFamily, dhcpEnabled: UInt8 = 0, ipAddresses: String = "",
        subnets: String = "", gateways: String = "", dnsServers: String = ""
    ) {
        self.adapterID = adapterID
        self.addressFamily = addressFamily
        self.dhcpEnabled = dhcpEnabled
        self.ipAddresses = ipAddresses
        self.subnets = subnets
        self.gateways = gateways
        self.dnsServers = dnsServers
    }

    /// Reads the 7426 bytes; text fields are decoded up to their first NUL.
    /// - Throws: ``WireError/truncated(needed:available:)`` for fewer than 7426 bytes.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize)
        self.adapterID = UTF16Field.decode(try reader.readBytes(Self.adapterIDSize), fieldSize: Self.adapterIDSize)
        self.addressFamily = KVPAddressFamily(rawValue: try reader.readUInt8())
        self.dhcpEnabled = try reader.readUInt8()
        self.ipAddresses = UTF16Field.decode(try reader.readBytes(Self.addressListSize), fieldSize: Self.addressListSize)
        self.subnets = UTF16Field.decode(try reader.readBytes(Self.addressListSize), fieldSize: Self.addressListSize)
        self.gateways = UTF16Field.decode(try reader.readBytes(Self.gatewayListSize), fieldSize: Self.gatewayListSize)
        self.dnsServers = UTF16Field.decode(try reader.readBytes(Self.addressListSize), fieldSize: Self.addressListSize)
    }

    /// Appends the 7426 bytes.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` for text that does not fit its
    ///   field with its NUL.
    public func write(to writer: inout WireWriter) throws(WireError) {
        try UTF16Field.write(self.adapterID, size: Self.adapterIDSize, name: "KVP adapter_id", to: &writer)
        writer.writeUInt8(self.addressFamily.rawValue)
        writer.writeUInt8(self.dhcpEnabled)
        try UTF16Field.write(self.ipAddresses, size: Self.addressListSize, name: "KVP ip_addr", to: &writer)
        try UTF16Field.write(self.subnets, size: Self.addressListSize, name: "KVP sub_net", to: &writer)
        try UTF16Field.write(self.gateways, size: Self.gatewayListSize, name: "KVP gate_way", to: &writer)
        try UTF16Field.write(self.dnsServers, size: Self.addressListSize, name: "KVP dns_addr", to: &writer)
    }
}

/// The binary IP record of KVP 5.0 (OpenVMM only; 06 §6.2), 3712 bytes, natural alignment.
///
/// Six u32 counts @0, `adapter_id` (UTF-16, 256 bytes) @24, `address_family` @280,
/// `dhcp_enabled` @281, 2 padding bytes @282, then nine arrays from @284 (``areaSizes``).
/// The arrays are kept as raw bytes (IPv4 entries 4 bytes in network order, IPv6 16 bytes, IPv6
/// prefixes u32, origins u16): which count governs which list is not settled (OpenVMM's field
/// names and comments disagree for the middle pairs), so nothing is dropped or reinterpreted.
public struct KVPIPInfoBinary: Hashable, Sendable {
    /// Bytes on the wire.
    public static let wireSize = 3712
    /// Number of u32 counts at the start.
    public static let countCount = 6
    /// Sizes of the raw arrays after the header fields, in wire order: ipv4_addresses,
    /// ipv6_addresses, ipv4_subnets, ipv6_subnets, ipv4_gateways, ipv6_gateways,
    /// ipv4_dns_servers, ipv6_dns_servers, ip_address_origins.
    public static let areaSizes = [256, 1024, 256, 256, 20, 80, 256, 1024, 256]

    /// ipv4_address, ipv6_address, ipv4_gateway(/subnet), ipv6_gateway(/subnet), ipv4_dns,
    /// ipv6_dns (OpenVMM's names).
    public var counts: [UInt32]
    /// The adapter id, decoded up to its first NUL.
    public var adapterID: String
    /// `address_family`.
    public var addressFamily: KVPAddressFamily
    /// `dhcp_enabled`, kept as sent.
    public var dhcpEnabled: UInt8
    /// The nine arrays of ``areaSizes``, raw; shorter arrays are zero-filled when written.
    public var areas: [[UInt8]]

    /// A record.
    public init(
        counts: [UInt32], adapterID: String, addressFamily: KVPAddressFamily, dhcpEnabled: UInt8, areas: [[UInt8]]
    ) {
        self.counts = counts
        self.adapterID = adapterID
        self.addressFamily = addressFamily
        self.dhcpEnabled = dhcpEnabled
        self.areas = areas
    }

    /// Reads the 3712 bytes; the padding is skipped.
    /// - Throws: ``WireError/truncated(needed:available:)`` for fewer than 3712 bytes.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize)
        var counts: [UInt32] = []
        for _ in 0..<Self.countCount { counts.append(try reader.readUInt32()) }
        self.counts = counts
        self.adapterID = UTF16Field.decode(try reader.readBytes(KVPIPInfo.adapterIDSize), fieldSize: KVPIPInfo.adapterIDSize)
        self.addressFamily = KVPAddressFamily(rawValue: try reader.readUInt8())
        self.dhcpEnabled = try reader.readUInt8()
        try reader.skip(2)
        var areas: [[UInt8]] = []
        for size in Self.areaSizes { areas.append(Array(try reader.readBytes(size))) }
        self.areas = areas
    }

    /// Appends the 3712 bytes.
    /// - Throws: ``WireError/invalidField(name:value:)`` unless there are 6 counts and 9 areas
    ///   of at most their sizes; ``WireError/limitExceeded(name:value:limit:)`` for an adapter
    ///   id over 127 units.
    public func write(to writer: inout WireWriter) throws(WireError) {
        guard self.counts.count == Self.countCount else {
            throw WireError.invalidField(name: "KVP binary IP count list", value: UInt64(self.counts.count))
        }
        guard self.areas.count == Self.areaSizes.count else {
            throw WireError.invalidField(name: "KVP binary IP areas", value: UInt64(self.areas.count))
        }
        for (index, (area, size)) in zip(self.areas, Self.areaSizes).enumerated() where area.count > size {
            throw WireError.invalidField(name: "KVP binary IP area \(index) size", value: UInt64(area.count))
        }
        for count in self.counts { writer.writeUInt32(count) }
        try UTF16Field.write(self.adapterID, size: KVPIPInfo.adapterIDSize, name: "KVP adapter_id", to: &writer)
        writer.writeUInt8(self.addressFamily.rawValue)
        writer.writeUInt8(self.dhcpEnabled)
        writer.writeZeros(2)
        for (area, size) in zip(self.areas, Self.areaSizes) { writer.writeFixed(area, size: size) }
    }
}
