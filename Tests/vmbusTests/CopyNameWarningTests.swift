import Testing

@testable import vmbus

@Suite struct CopyNameWarningTests {
    /// Linux's daemon mangles names outside ASCII and nothing tells its guests apart from ours,
    /// so `ctl copy` warns for every such name, including a source name put in a directory.
    @Test func namesOutsideASCIIGetAWarning() {
        #expect(nonASCIICopyWarning(guestPath: "in/plain.txt", source: "/tmp/a") == nil)
        #expect(nonASCIICopyWarning(guestPath: "in/", source: "/tmp/plain.txt") == nil)
        let named = nonASCIICopyWarning(guestPath: "in/résumé.txt", source: "/tmp/a")
        #expect(named?.contains("'in/résumé.txt'") == true)
        #expect(named?.contains("hv_fcopy_uio_daemon") == true)
        #expect(nonASCIICopyWarning(guestPath: "données/", source: "/tmp/a.txt")?.contains("'données/a.txt'") == true)
        #expect(nonASCIICopyWarning(guestPath: "in/", source: "/tmp/日本.txt")?.contains("'in/日本.txt'") == true)
    }
}
