import FuzzSupport
import VMBusHost
import VMBusWire

// Input: a sequence of guest messages (see `messageSequence`). The host starts with two offers;
// its driver accepts every GPADL and open. Properties: nothing traps; a connection-scoped
// violation leaves a machine that still accepts a fresh InitiateContact.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHost(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var host = HostConnection()
    _ = host.addOffer(HostOffer(interfaceType: GUID(data1: 1, data2: 2, data3: 3, data4: 4), interfaceInstance: .zero))
    _ = host.addOffer(HostOffer(interfaceType: GUID(data1: 5, data2: 6, data3: 7, data4: 8), interfaceInstance: .zero))
    for message in messageSequence(fuzzInput(data, size)) {
        do {
            var work = try host.receive(message[...])
            while let action = work.first {
                work.removeFirst()
                switch action {
                case .mapGpadl(_, let gpadl, _): work += host.completeGpadl(gpadl, accepted: true)
                case .openChannel(let open, _): work += host.completeOpen(open.childRelID, status: .success)
                case .unmapGpadl(let gpadl): work += host.completeTeardown(gpadl)
                case .send(let reply):
                    if (try? reply.encode()) == nil { violated("the host built a message it cannot encode", message[...]) }
                case .closeChannel, .connectRequest, .retarget, .resetConnection: break
                }
            }
        } catch {
            continue
        }
    }
    // Whatever happened, a new contact must be answered.
    let contact = ChannelMessage.initiateContact(InitiateContact(
        versionRequested: .win10_5_3, target: .synic(sint: 2, vtl: 0, features: [])))
    guard let actions = try? host.receive(contact),
        actions.contains(where: { if case .send(.versionResponse) = $0 { return true } else { return false } })
    else { violated("the host no longer answers InitiateContact", []) }
    return 0
}
