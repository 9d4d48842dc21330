import Testing
import VMBusGuest
import VMBusWire

@Suite struct PostRetryTests {
    @Test func transientFailuresBackOffThenGiveUp() {
        var retry = PostRetry()
        #expect(retry.failed(.insufficientBuffers) == .retry(afterNanoseconds: 1000))
        #expect(retry.failed(.insufficientMemory) == .retry(afterNanoseconds: 2000))
        for _ in 3...22 { _ = retry.failed(.insufficientBuffers) }
        // The 23rd retry waits 2^22 µs and so does every later one.
        #expect(retry.failed(.insufficientBuffers) == .retry(afterNanoseconds: 1000 << 22))
        #expect(retry.failed(.insufficientBuffers) == .retry(afterNanoseconds: 1000 << 22))
        while retry.failures < PostRetry.maximumAttempts - 1 { _ = retry.failed(.insufficientBuffers) }
        #expect(retry.failed(.insufficientBuffers) == .giveUp)
        var other = PostRetry()
        #expect(other.failed(.invalidConnectionID) == .giveUp)
    }

    @Test func anInvalidConnectionIDOnContactTriesTheNextVersion() {
        var config = GuestConfiguration()
        config.versions = [.copper, .win10_5_3]
        var guest = GuestConnection(configuration: config)
        _ = guest.connect()
        let next = guest.postFailed(.invalidConnectionID)
        guard case .post(.initiateContact(let contact), let connection)? = next.first else {
            Issue.record("no second proposal")
            return
        }
        #expect(contact.versionRequested == .win10_5_3 && connection == 4)
        #expect(guest.postFailed(.invalidConnectionID) == [.connectionFailed])
        #expect(guest.postFailed(.invalidConnectionID).isEmpty, "nothing to do once disconnected")
    }
}
