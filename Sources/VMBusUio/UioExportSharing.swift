import Foundation
import VMBusChannel
import VMBusMemory

extension ExportedDevice {
    /// A further open of the node by the process that holds it (a uio node counts its opens;
    /// DPDK opens it again for each map it maps): it shares the open channels — the first
    /// word (the interrupt count) at once, interrupts and irqcontrol as on the first open —
    /// and its close closes nothing. - Returns: whether `client` was taken as such.
    func share(_ client: StreamSocket) -> Bool {
        let pid = client.peerProcessID
        let shared: (UInt32, [Channel])? = self.state.withLock { state in
            // A holder that already closed its first open is a program starting again (it
            // waits for the close to be handled), not a further open.
            guard let pid, let holder = state.client, state.holder == pid, !holder.peerHasClosed else { return nil }
            state.shared.append(client)
            return (state.interrupts, state.channels)
        }
        guard let (count, channels) = shared else { return false }
        _ = client.sendIfRoom(Self.word(count)[...])
        ThreadName.start("vmbus-uio-shared-\(self.relid)") { [self] in
            self.irqcontrol(client, channels)
            self.state.withLock { state in state.shared.removeAll { $0 === client } }
        }
        return true
    }

    /// Reads the node's 4-byte irqcontrol writes from `client` until it closes.
    func irqcontrol(_ client: StreamSocket, _ channels: [Channel]) {
        var word = [UInt8](repeating: 0, count: 4)
        while (try? DescriptorIO.readFully(client.fileDescriptor, into: &word, count: 4)) == true {
            let value = UInt32(word[0]) | UInt32(word[1]) << 8 | UInt32(word[2]) << 16 | UInt32(word[3]) << 24
            // irqcontrol acts on the primary's inbound mask; a non-zero write kicks the host.
            // A real host would only hear the primary's connection id; the export kicks every
            // channel, standing in for the monitor bits sub-channel users set themselves.
            try? self.rings[0].ring(.inbound).store(.interruptMask, value != 0 ? 0 : 1, ordering: .releasing)
            if value != 0 {
                try? self.rings[0].ring(.inbound).fullFence()
                self.state.withLock { $0.events += 1 }
                for channel in channels { channel.interrupt() }
            }
        }
    }
}
