import Dispatch
import Testing
import VMBusMemory

@Suite struct LockedTests {
    /// Many threads doing read-modify-write under the lock lose no update: the counter ends at
    /// exactly threads × rounds, and each thread's view of a two-field invariant is never torn.
    @Test func contendedUpdatesAreNeitherLostNorTorn() {
        struct Pair { var a = 0, b = 0 }
        let locked = Locked(Pair())
        let torn = Locked(0)
        let threads = 4, rounds = 20_000
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            for _ in 0..<rounds {
                let consistent = locked.withLock { pair in
                    let ok = pair.a == pair.b
                    pair.a += 1
                    pair.b += 1
                    return ok
                }
                if !consistent { torn.withLock { $0 += 1 } }
            }
        }
        #expect(locked.withLock { $0.a } == threads * rounds)
        #expect(locked.withLock { $0.b } == threads * rounds)
        #expect(torn.withLock { $0 } == 0)
    }

    /// Errors thrown inside the body come out typed, and the lock is free afterwards.
    @Test func aThrowingBodyReleasesTheLock() {
        enum Refused: Error { case no }
        let locked = Locked([1, 2])
        #expect(throws: Refused.no) {
            try locked.withLock { (values: inout [Int]) throws(Refused) in
                values.append(3)
                throw .no
            }
        }
        #expect(locked.withLock { $0 } == [1, 2, 3])
    }

    /// Non-copyable values can be guarded and moved out.
    @Test func holdsNonCopyableValues() {
        struct Token: ~Copyable { var id: Int }
        let locked = Locked<Token?>(Token(id: 7))
        let taken = locked.withLock { $0.take() }
        switch consume taken {
        case .some(let token): #expect(token.id == 7)
        case .none: Issue.record("the token was not moved out")
        }
        let emptied = locked.withLock { slot -> Bool in
            switch slot {
            case .some: false
            case .none: true
            }
        }
        #expect(emptied)
    }
}
