import FuzzSupport
import VMBusHost
import VMBusWire

// Input: a saved host machine's record list (docs/SAVED-STATE.md §3), and the same bytes as a
// whole saved-state file. Properties: nothing traps; a state that is restored saves again to
// bytes that restore to the very same state (save → restore → save is stable).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSavedState(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = fuzzInput(data, size)
    _ = try? SavedStateFile.decode(bytes[...], expecting: .host)
    guard let reader = try? StateReader(bytes[...]),
        let machine = try? HostConnection(restoring: reader, configuration: HostConfiguration())
    else { return 0 }
    var first = StateWriter()
    do { try machine.save(into: &first) } catch { violated("a restored machine cannot be saved: \(error)", bytes[...]) }
    guard let again = try? HostConnection(restoring: try StateReader(first.bytes[...]), configuration: HostConfiguration()) else {
        violated("a saved machine cannot be restored", bytes[...])
    }
    var second = StateWriter()
    do { try again.save(into: &second) } catch { violated("a twice-restored machine cannot be saved", bytes[...]) }
    if first.bytes != second.bytes { violated("save → restore → save changed the state", bytes[...]) }
    return 0
}
