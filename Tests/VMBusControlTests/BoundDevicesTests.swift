import Testing
import VMBusGuest

@Suite struct BoundDevicesTests {
    /// Offers before the device is up are handed back when it is added, once; offers after go
    /// straight to it; a failed bring-up or a removal forgets what was kept.
    @Test func earlyOffersWaitForTheirDevice() {
        let bound = BoundDevices<String>()
        #expect(bound.subChannelOffered(21, of: 20) == nil)
        #expect(bound.subChannelOffered(22, of: 20) == nil)
        #expect(bound.subChannelOffered(31, of: 30) == nil)
        #expect(bound.add("a", relid: 20) == [21, 22])
        #expect(bound.subChannelOffered(23, of: 20) == "a")
        bound.failed(relid: 30)
        #expect(bound.add("b", relid: 30) == [])
        #expect(bound.add("c", relid: 10) == [])
        #expect(bound.all == ["c", "a", "b"] && bound.first == "c")
        #expect(bound.subChannelOffered(41, of: 40) == nil)
        #expect(bound.remove(relid: 40) == nil)
        #expect(bound.add("d", relid: 40) == [])
        #expect(bound.remove(relid: 20) == "a")
        #expect(bound.all == ["c", "b", "d"])
    }
}
