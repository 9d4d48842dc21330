import VMBusChannel
import VMBusMemory
import VMBusUio
import VMBusWire

/// A NIC driven from user space through `uio_hv_generic` (05 §10) — a real one in a Linux
/// guest, or `vmbus host --uio-export … --uio-device net`: the kernel (or the export) opened
/// the primary channel and registered the receive and send buffers as GPADLs, so bring-up
/// maps maps 3 and 4 and hands their handles to the host instead of allocating buffers.
public final class UioNetvsc: Sendable {
    public let nic: NetvscNIC
    public let uio: UioChannel

    init(nic: NetvscNIC, uio: UioChannel) {
        self.nic = nic
        self.uio = uio
    }

    /// HALT, revoke the buffers, then release the node (the kernel closes the channels).
    public func close() async {
        await self.nic.shutDown()
        self.uio.close()
    }
}

extension NetvscDriver {
    /// Brings up the NIC of a uio device with this driver's configuration and backend; it
    /// joins ``nics`` like a probed one. The buffers are the device's (their sizes, not the
    /// configuration's); sub-channels are the ones the kernel opened. No offloads: LSO sends
    /// from large-send buffers the guest allocates in its memory, which a uio program has not
    /// (its page lists would have to name its own addresses).
    /// - Throws: ``UioError`` when the device cannot be opened or has no NIC buffers;
    ///   ``NetvscError`` when the host refuses or answers badly.
    public func bringUp(uio device: UioDevice) async throws -> UioNetvsc {
        let uio = try UioChannel(device, options: NetvscNIC.channelOptions)
        do {
            let receive = try uio.bufferMap("recv")
            let send = try uio.bufferMap("send")
            let substrate = NetvscSubstrate { relid, _, options in try uio.openSubChannel(relid, options: options) }
            var configuration = self.configuration
            configuration.offloads = false
            let nic = try await NetvscNIC.bringUp(
                uio.channel, relid: uio.channel.relid, substrate: substrate, configuration: configuration, makeBackend: self.makeBackend
            ) { _ in
                // One mapping over both, as guest memory would hold them (receive first).
                let memory = try uio.map([receive, send])
                return NetvscBuffers(
                    memory: memory, receive: GuestBuffer(firstPFN: 0, pageCount: receive.size / MappedMemory.pageSize),
                    send: GuestBuffer(firstPFN: UInt64(receive.size / MappedMemory.pageSize), pageCount: send.size / MappedMemory.pageSize),
                    gpadls: (receive.gpadl, send.gpadl))
            }
            self.added(nic)
            return UioNetvsc(nic: nic, uio: uio)
        } catch {
            uio.close()
            throw error
        }
    }
}
