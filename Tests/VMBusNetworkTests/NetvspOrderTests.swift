import Testing
import VMBusChannel
import VMBusNetwork
import VMBusWire

/// Set-up out of order (11 §4): each message once, NDIS_CONFIG before the buffers from NVSP 2,
/// one INIT — as OpenVMM holds a guest to it, the channel stops; the host and its other
/// devices go on.
extension NetvspHostileTests {
    @Test(arguments: [0, 1, 2, 3])
    func setUpOutOfOrderStopsTheChannel(_ breach: Int) async throws {
        let host = try await HostUnderTest.make()
        let raw = host.channel(0)
        guard case .initializeComplete(_, _, .success) = try await raw.request(.initialize(minimum: .v61, maximum: .v61)) else {
            Issue.record("INIT refused")
            return
        }
        let memory = raw.bus.memory
        let buffer = try memory.allocate(pages: 64)
        let gpadl = try await raw.bus.createGpadl(channel: raw.relid, ranges: [try buffer.range()])
        switch breach {
        case 0:  // a buffer before NDIS_CONFIG at 6.1
            try await raw.channel.send(
                inBand: NVSPMessage.receiveBuffer(gpadl: gpadl, id: NVSP.receiveBufferID).encode()[...], transactionID: 9,
                completionRequested: true)
        case 1:  // NDIS_CONFIG twice
            try await raw.post(.ndisConfig(mtu: 1514, capabilities: []))
            try await raw.post(.ndisConfig(mtu: 1514, capabilities: []))
        case 2:  // the receive buffer twice
            try await raw.post(.ndisConfig(mtu: 1514, capabilities: []))
            _ = try await raw.request(.receiveBuffer(gpadl: gpadl, id: NVSP.receiveBufferID))
            try await raw.channel.send(
                inBand: NVSPMessage.receiveBuffer(gpadl: gpadl, id: NVSP.receiveBufferID).encode()[...], transactionID: 9,
                completionRequested: true)
        default:  // a second INIT
            try await raw.channel.send(
                inBand: NVSPMessage.initialize(minimum: .v5, maximum: .v5).encode()[...], transactionID: 9, completionRequested: true)
        }
        try await self.expectStopped(host, raw)
    }
}
