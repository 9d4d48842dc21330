import VMBusMemory
import Testing
import VMBusChannel

/// A queue whose handler submits more work, as a bus answering itself does.
final class Echoing: Sendable {
    let log = Locked<[Int]>([])
    let depth = Locked(0)
    let maxDepth = Locked(0)
    let delivery = Locked<SerialDelivery<Int>?>(nil)

    func handle(_ n: Int) {
        let now = self.depth.withLock { $0 += 1; return $0 }
        self.maxDepth.withLock { $0 = max($0, now) }
        self.log.withLock { $0.append(n) }
        // Each item below 100 answers with two more, submitted from inside the handler.
        if n < 100, let delivery = self.delivery.withLock({ $0 }) {
            delivery.submit(n * 10 + 100)
            delivery.submit(n * 10 + 101)
        }
        self.depth.withLock { $0 -= 1 }
    }
}

@Suite struct SerialDeliveryTests {
    @Test func reentrantSubmitsRunLaterInOrderWithoutRecursion() {
        let echoing = Echoing()
        let delivery = SerialDelivery<Int> { echoing.handle($0) }
        echoing.delivery.withLock { $0 = delivery }
        delivery.submit(1)
        delivery.submit(2)
        #expect(echoing.log.withLock { $0 } == [1, 110, 111, 2, 120, 121])
        #expect(echoing.maxDepth.withLock { $0 } == 1)
        #expect(delivery.pending == 0)
    }

    @Test func enqueueWaitsForStepOrDrain() {
        let log = Locked<[Int]>([])
        let delivery = SerialDelivery<Int> { n in log.withLock { $0.append(n) } }
        for n in 0..<3 { delivery.enqueue(n) }
        #expect(log.withLock { $0 }.isEmpty && delivery.pending == 3)
        #expect(delivery.step())
        #expect(log.withLock { $0 } == [0])
        delivery.drain()
        #expect(log.withLock { $0 } == [0, 1, 2])
        #expect(!delivery.step())
    }
}
