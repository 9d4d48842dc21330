import VMBusGuest
import VMBusHost
import VMBusWire

/// A host and a guest state machine pumped against each other, with a driver on the host side
/// that accepts every GPADL and open (or refuses, when told). Messages cross as bytes, through
/// the real encoders and the dispatch, as they would over the SynIC.
struct ControlPair {
    var host: HostConnection
    var guest: GuestConnection
    /// Host → guest and guest → host messages not yet delivered.
    var toGuest: [[UInt8]] = []
    var toHost: [(bytes: [UInt8], connectionID: UInt32)] = []
    /// Everything the guest reported, in order.
    var guestEvents: [GuestAction] = []
    /// Driver work the host asked for, in order.
    var hostWork: [HostAction] = []
    /// Whether the host driver accepts GPADLs and opens.
    var accept = true

    init(host: HostConfiguration = HostConfiguration(), guest: GuestConfiguration = GuestConfiguration()) {
        self.host = HostConnection(configuration: host)
        self.guest = GuestConnection(configuration: guest)
    }

    mutating func guestDid(_ actions: [GuestAction]) throws {
        for action in actions {
            if case .post(let message, let connectionID) = action {
                self.toHost.append((try message.encode(), connectionID))
            } else {
                self.guestEvents.append(action)
            }
        }
    }

    mutating func hostDid(_ actions: [HostAction]) throws {
        for action in actions {
            switch action {
            case .send(let message): self.toGuest.append(try message.encode())
            case .mapGpadl(_, let gpadl, _):
                self.hostWork.append(action)
                try self.hostDid(self.host.completeGpadl(gpadl, accepted: self.accept))
            case .openChannel(let open, _):
                self.hostWork.append(action)
                try self.hostDid(self.host.completeOpen(open.childRelID, status: self.accept ? .success : .unsuccessful))
            case .unmapGpadl(let gpadl):
                self.hostWork.append(action)
                try self.hostDid(self.host.completeTeardown(gpadl))
            case .closeChannel, .connectRequest, .retarget, .resetConnection:
                self.hostWork.append(action)
            }
        }
    }

    /// Delivers messages both ways until nothing is in flight.
    mutating func run() throws {
        while !self.toHost.isEmpty || !self.toGuest.isEmpty {
            if !self.toHost.isEmpty {
                let (bytes, _) = self.toHost.removeFirst()
                try self.hostDid(self.host.receive(bytes[...]))
            }
            if !self.toGuest.isEmpty {
                let bytes = self.toGuest.removeFirst()
                try self.guestDid(self.guest.receive(bytes[...]))
            }
        }
    }

    /// Connects and collects the offers.
    mutating func connect() throws {
        try self.guestDid(self.guest.connect())
        try self.run()
        try self.guestDid(self.guest.requestOffers())
        try self.run()
    }

    /// GPADL over `pages` consecutive pages starting at PFN `first`, created through both machines.
    mutating func createGpadl(channel: UInt32, pages: Int, first: UInt64 = 0x100) throws -> UInt32 {
        let range = try GpaRange(byteCount: UInt32(pages * 4096), byteOffset: 0, pfns: (0..<UInt64(pages)).map { first + $0 })
        let (handle, actions) = try self.guest.createGpadl(channel: channel, ranges: [range])
        try self.guestDid(actions)
        try self.run()
        return handle
    }

    /// Offers one device, connects, and opens its channel on an 8-page ring GPADL (4 + 4).
    mutating func openOneChannel() throws -> UInt32 {
        let relid = self.host.addOffer(deviceOffer(1)).relid
        try self.connect()
        let gpadl = try self.createGpadl(channel: relid, pages: 8)
        try self.guestDid(self.guest.open(channel: relid, ringGpadl: gpadl, downstreamPageOffset: 4))
        try self.run()
        return relid
    }

    /// The offers the guest saw.
    var offers: [OfferChannel] {
        self.guestEvents.compactMap { if case .offered(let offer) = $0 { return offer } else { return nil } }
    }
}

let echoClass = GUID("9c54a7b3-4f5e-4d0d-8b8e-2f1c0a6e0a01") ?? .zero

func deviceOffer(_ n: UInt32) -> HostOffer {
    HostOffer(interfaceType: echoClass, interfaceInstance: GUID(data1: n, data2: 0, data3: 0, data4: 0))
}
