/// `hv_kvp_ipaddr_value`: an adapter's IP configuration in string form (KVP ≤ 4.0; 06 §6.2),
/// 7426 bytes. Lists are `;`-separated.
public struct KVPIPInfo: Hashable, Sendable {
    public static let wireSize = 7426

    /// GET: the adapter's MAC address text; SET: its GUID (Linux daemon behaviour).
    public var adapterID: String
    /// 0 none, 1 IPv4, 2 IPv6, 3 both.
    public var addressFamily: UInt8
    public var dhcpEnabled: UInt8
    public var ipAddresses: String
    public var subnets: String
    public var gateways: String
    public var dnsServers: String

    /// Field sizes in bytes, in wire order after the two single bytes.
    static let sizes = (adapter: 256, ip: 2048, subnet: 2048, gateway: 1024, dns: 2048)

    public init(
        adapterID: String, addressFamily: UInt8, dhcpEnabled: UInt8 = 0, ipAddresses: String = "",
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

    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize)
        self.adapterID = UTF16Field.decode(try reader.readBytes(Self.sizes.adapter))
        self.addressFamily = try reader.readUInt8()
        self.dhcpEnabled = try reader.readUInt8()
        self.ipAddresses = UTF16Field.decode(try reader.readBytes(Self.sizes.ip))
        self.subnets = UTF16Field.decode(try reader.readBytes(Self.sizes.subnet))
        self.gateways = UTF16Field.decode(try reader.readBytes(Self.sizes.gateway))
        self.dnsServers = UTF16Field.decode(try reader.readBytes(Self.sizes.dns))
    }

    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` for text that does not fit its field.
    public func write(to writer: inout WireWriter) throws(WireError) {
        try UTF16Field.write(self.adapterID, size: Self.sizes.adapter, name: "KVP adapter_id", to: &writer)
        writer.writeUInt8(self.addressFamily)
        writer.writeUInt8(self.dhcpEnabled)
        try UTF16Field.write(self.ipAddresses, size: Self.sizes.ip, name: "KVP ip_addr", to: &writer)
        try UTF16Field.write(self.subnets, size: Self.sizes.subnet, name: "KVP sub_net", to: &writer)
        try UTF16Field.write(self.gateways, size: Self.sizes.gateway, name: "KVP gate_way", to: &writer)
        try UTF16Field.write(self.dnsServers, size: Self.sizes.dns, name: "KVP dns_addr", to: &writer)
    }
}

/// The binary IP record of KVP 5.0 (OpenVMM only; 06 §6.2), 3712 bytes.
///
/// The address arrays are kept as their raw bytes (IPv4 entries 4 bytes in network order,
/// IPv6 16 bytes, IPv6 prefixes u32): which count governs which list is not settled (OpenVMM's
/// names and comments disagree for the middle pairs), so nothing is dropped or reinterpreted.
public struct KVPIPInfoBinary: Hashable, Sendable {
    public static let wireSize = 3712
    /// Sizes of the raw areas after the header fields, in wire order.
    public static let areaSizes = [256, 1024, 256, 256, 20, 80, 256, 1024, 256]

    /// ipv4_address, ipv6_address, ipv4_gateway(/subnet), ipv6_gateway(/subnet), ipv4_dns, ipv6_dns.
    public var counts: [UInt32]
    public var adapterID: String
    public var addressFamily: UInt8
    public var dhcpEnabled: UInt8
    /// ipv4_addresses, ipv6_addresses, ipv4_subnets, ipv6_subnets, ipv4_gateways,
    /// ipv6_gateways, ipv4_dns_servers, ipv6_dns_servers, ip_address_origins — raw bytes.
    public var areas: [[UInt8]]

    public init(counts: [UInt32], adapterID: String, addressFamily: UInt8, dhcpEnabled: UInt8, areas: [[UInt8]]) {
        self.counts = counts
        self.adapterID = adapterID
        self.addressFamily = addressFamily
        self.dhcpEnabled = dhcpEnabled
        self.areas = areas
    }

    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize)
        var counts: [UInt32] = []
        for _ in 0..<6 { counts.append(try reader.readUInt32()) }
        self.counts = counts
        self.adapterID = UTF16Field.decode(try reader.readBytes(256))
        self.addressFamily = try reader.readUInt8()
        self.dhcpEnabled = try reader.readUInt8()
        try reader.skip(2)
        var areas: [[UInt8]] = []
        for size in Self.areaSizes { areas.append(Array(try reader.readBytes(size))) }
        self.areas = areas
    }

    /// - Throws: ``WireError/invalidField(name:value:)`` unless there are 6 counts and 9 areas
    ///   of at most their sizes; ``WireError/limitExceeded(name:value:limit:)`` for a long adapter id.
    public func write(to writer: inout WireWriter) throws(WireError) {
        guard self.counts.count == 6 else {
            throw WireError.invalidField(name: "KVP binary IP count list", value: UInt64(self.counts.count))
        }
        guard self.areas.count == Self.areaSizes.count,
            zip(self.areas, Self.areaSizes).allSatisfy({ $0.count <= $1 })
        else { throw WireError.invalidField(name: "KVP binary IP areas", value: UInt64(self.areas.count)) }
        for count in self.counts { writer.writeUInt32(count) }
        try UTF16Field.write(self.adapterID, size: 256, name: "KVP adapter_id", to: &writer)
        writer.writeUInt8(self.addressFamily)
        writer.writeUInt8(self.dhcpEnabled)
        writer.writeZeros(2)
        for (area, size) in zip(self.areas, Self.areaSizes) { writer.writeFixed(area, size: size) }
    }
}
