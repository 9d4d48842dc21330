import Testing
import VMBusChannel

@Suite struct RequestorTests {
    @Test func idsRunFromOneToCapacityAndAreReused() {
        var table = Requestor<String>(capacity: 130)
        let ids = (0..<130).compactMap { table.allocate("r\($0)") }
        #expect(ids == Array(1...130))
        #expect(table.allocate("full") == nil)
        #expect(table.complete(64) == "r63")
        #expect(table.allocate("again") == 64)
        #expect(table.outstanding == 130)
    }

    @Test func bogusIDsAreRejectedAndChangeNothing() {
        var table = Requestor<Int>(capacity: 8)
        let id = table.allocate(1)
        for bogus: UInt64 in [0, 9, 64, 1 << 33, .max, 2] {
            #expect(table.complete(bogus) == nil)
        }
        #expect(table.outstanding == 1)
        #expect(table.complete(id ?? 0) == 1)
        // A second answer for the same id is bogus too.
        #expect(table.complete(id ?? 0) == nil)
        #expect(table.outstanding == 0)
    }

    @Test func removeAllReturnsWhatWasOutstanding() {
        var table = Requestor<Int>(capacity: 4)
        for n in 0..<3 { _ = table.allocate(n) }
        _ = table.complete(2)
        #expect(table.removeAll().sorted() == [0, 2])
        #expect(table.outstanding == 0 && table.allocate(9) != nil)
    }
}
