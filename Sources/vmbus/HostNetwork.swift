import ArgumentParser
import VMBusHost
import VMBusMemory
import VMBusNetwork
import VMBusWire

/// `vmbus host --net …`: where the guests' synthetic NICs are plugged in.
struct HostNetworkOptions: ParsableArguments {
    @Option(name: .long, help: "Offer a synthetic NIC: tap:NAME (joined to TAP interface NAME; needs CAP_NET_ADMIN) or switch (the guests' NICs joined to each other).")
    var net: String?

    @Option(name: .long, help: "The NIC's MAC address (default 00:15:5d:… from the guest number).")
    var mac: String?

    @Option(name: .long, help: "The NIC's MTU (68…9000).")
    var mtu: Int = 1500

    @Option(name: .long, help: "Queues a guest may ask for (1 = no vRSS sub-channels).")
    var netQueues: Int = 4

    @Flag(name: .long, inversion: .prefixedNo, help: "Checksum and LSO offloads guest → host and RSC host → guest through the TAP's virtio-net header.")
    var netOffloads = true

    func validate() throws {
        if let net = self.net, net != "switch", !(net.hasPrefix("tap:") && net.count > 4) {
            throw ValidationError("--net takes tap:NAME or switch")
        }
        if let mac = self.mac, MACAddress(mac) == nil { throw ValidationError("--mac takes aa:bb:cc:dd:ee:ff") }
        guard (68...9000).contains(self.mtu) else { throw ValidationError("--mtu must be 68…9000") }
        guard (1...64).contains(self.netQueues) else { throw ValidationError("--net-queues must be 1…64") }
        if self.net == nil, self.mac != nil { throw ValidationError("--mac needs --net") }
    }
}

/// The NICs of the connected guests, and the network they share.
final class HostNetwork: Sendable {
    let options: HostNetworkOptions
    let tap: TapBackend?
    let fabric: NetworkSwitch?
    let devices = Locked<[ObjectIdentifier: (guest: Int, device: NetvspDevice)]>([:])
    let guests = Locked(0)
    let exported = Locked<NetvspDevice?>(nil)

    /// - Parameter adoptingTap: the TAP device's descriptor a takeover passed (the interface
    ///   exists and is set up; a new open of it would fail while the old host holds it).
    init?(options: HostNetworkOptions, adoptingTap: Int32? = nil) throws {
        guard let net = options.net else {
            if let adoptingTap { DescriptorIO.close(adoptingTap) }
            return nil
        }
        self.options = options
        if net == "switch" {
            if let adoptingTap { DescriptorIO.close(adoptingTap) }
            self.tap = nil
            self.fabric = NetworkSwitch(mtu: options.mtu)
        } else {
            do {
                let name = String(net.dropFirst(4))
                if let adoptingTap {
                    self.tap = try TapBackend(adopting: TapDevice(adopting: adoptingTap, name: name, vnetHeader: options.netOffloads))
                } else {
                    // The TAP keeps the kernel's own address: it is the wire's far end, not the NIC.
                    self.tap = try TapBackend(name: name, mtu: options.mtu, offloads: options.netOffloads)
                }
            } catch {
                throw CLIError("--net \(net): \(error)")
            }
            self.fabric = nil
        }
    }

    /// The NIC of a newly connected guest.
    func device(for bus: HostBus) -> NetvspDevice {
        // The connection's number where the substrate has one: the same after a takeover, so
        // the new host's NIC has the address and instance the guest knows.
        let counted = self.guests.withLock { count in
            count += 1
            return count
        }
        let number = bus.guestNumber ?? counted
        let mac = self.options.mac.flatMap(MACAddress.init) ?? .hyperV(seed: UInt32(number))
        let backend: any NetworkBackend = self.tap ?? self.fabric!.makePort(macAddress: mac)
        let device = NetvspDevice(
            instance: GUID(data1: 0x4E1C_0000 | UInt32(number & 0xFFFF), data2: 0x5EED, data3: 0, data4: 0), backend: backend,
            macAddress: mac, maximumQueues: self.options.netQueues)
        device.attach(to: bus)
        self.devices.withLock { $0[ObjectIdentifier(bus)] = (number, device) }
        bus.onConnectionLost { [self] in
            _ = self.devices.withLock { $0.removeValue(forKey: ObjectIdentifier(bus)) }
            // A switch port goes with its guest; the TAP stays for the next one.
            if self.tap == nil { backend.close() }
        }
        return device
    }

    /// The NIC of `--uio-export … --uio-device net`: one queue (the export offers no
    /// sub-channels on request), with a monitor id (as on Hyper-V), on the TAP or a switch
    /// port like a guest's.
    func exportedDevice() -> NetvspDevice {
        let mac = self.options.mac.flatMap(MACAddress.init) ?? .hyperV(seed: 0xE0)
        let backend: any NetworkBackend = self.tap ?? self.fabric!.makePort(macAddress: mac)
        let device = NetvspDevice(
            instance: GUID(data1: 0x4E1C_E000, data2: 0x5EED, data3: 0, data4: 0), backend: backend, macAddress: mac, maximumQueues: 1,
            // The export watches the monitor page: DPDK signals only through it.
            wantsMonitor: true)
        self.exported.store(device)
        return device
    }

    /// `vmbus net stat` lines: per guest and queue, like `ethtool -S`.
    func statistics(bus: HostBus?) -> [String] {
        let entries = self.devices.withLock { devices in
            devices.filter { bus == nil || $0.key == ObjectIdentifier(bus!) }.values.sorted { $0.guest < $1.guest }
        }
        var lines: [String] = []
        let exported = bus == nil ? self.exported.load().map { [(0, $0)] } ?? [] : []
        for (guest, device) in entries + exported {
            let version = device.version.map { "NVSP \($0)" } ?? "not initialised"
            let (advertised, rsc) = device.offloads
            var offloads = advertised.contains(.checksum) ? ["checksum"] : []
            if !advertised.isDisjoint(with: [.tcp4Segmentation, .tcp6Segmentation]) { offloads.append("lso") }
            if rsc { offloads.append("rsc") }
            lines.append((guest == 0 ? "uio export" : "guest \(guest)") + ": \(version), \(device.isReady ? "up" : "down"), free receive slots \(device.freeReceiveSlots), "
                + "offloads \(offloads.isEmpty ? "none" : offloads.joined(separator: " "))")
            for (queue, stats) in device.statistics.sorted(by: { $0.key < $1.key }) {
                lines.append("  queue \(queue): rx_packets \(stats.rxPackets) rx_bytes \(stats.rxBytes) rx_dropped \(stats.rxDropped) rx_coalesced \(stats.rxCoalesced) "
                    + "tx_packets \(stats.txPackets) tx_bytes \(stats.txBytes) tx_dropped \(stats.txDropped) tx_large \(stats.txLargeSegments) malformed \(stats.malformed)")
                if let fault = stats.lastFault { lines.append("    stopped: \(fault)") }
            }
        }
        if let tap = self.tap {
            let counts = tap.counts
            lines.append("tap \(tap.device.name): from kernel \(counts.received), to kernel \(counts.sent), dropped \(counts.dropped)")
        }
        return lines.isEmpty ? ["no synthetic NIC is open"] : lines
    }
}
