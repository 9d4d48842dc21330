import FuzzSupport
import VMBusGuest
import VMBusWire

// Input: a sequence of host messages (see `messageSequence`), fed to a guest that has proposed
// its versions, asked for offers, and created a GPADL on every offered channel. Property:
// nothing a host sends traps the guest; bad replies are HostMisbehaviour errors.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGuest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var guest = GuestConnection()
    _ = guest.connect()
    for message in messageSequence(fuzzInput(data, size)) {
        guard let actions = try? guest.receive(message[...]) else { continue }
        for action in actions {
            switch action {
            case .connected: _ = guest.requestOffers()
            case .offered(let offer):
                if let range = try? GpaRange(byteCount: 8 * 4096, byteOffset: 0, pfns: Array(100..<108)) {
                    _ = try? guest.createGpadl(channel: offer.childRelID, ranges: [range])
                }
            case .gpadlCreated(let gpadl, let status) where status.isSuccess:
                for relid in guest.relids where !guest.isOpen(relid) {
                    _ = guest.open(channel: relid, ringGpadl: gpadl, downstreamPageOffset: 4)
                    break
                }
            case .rescinded(let relid): _ = guest.release(channel: relid)
            default: break
            }
        }
    }
    return 0
}
