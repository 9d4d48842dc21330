import VMBusMemory
import VMBusWire

/// What a device asks of whatever carries it beyond its channels: the guest memory its GPADLs
/// and GPA-direct packets name, and more channels. ``HostBus`` is one; the uio export of
/// `VMBusUio`, which has no VMBus connection behind it, is another (its GPADLs are buffers it
/// owns, its "guest memory" a user-space program's).
public protocol DeviceBus: AnyObject, Sendable {
    /// The mapping of a GPADL the guest created, or `nil` if there is no such GPADL. The
    /// mapping stays valid while the device holds it.
    func gpadlMapping(_ handle: UInt32) -> MappedMemory?
    /// Copies what a GPA-direct range names (03 §4) into `buffer[at...]`, every page checked.
    /// - Throws: `MemoryError` for a page that is not the guest's.
    func readGuest(_ range: GpaRange, into buffer: inout [UInt8], at offset: Int) throws(MemoryError)
    /// The guest pages a GPA-direct range names (03 §4), as pieces of a mapping a device can
    /// read and write in place — a disk moves its sectors straight to and from them.
    /// - Throws: `MemoryError` for a page that is not the guest's, or a bus that cannot map
    ///   guest memory.
    func guestExtents(_ range: GpaRange) throws(MemoryError) -> MemoryExtents
    /// Offers `count` sub-channels for an open primary, as the device's own protocol asked
    /// (05 §5).
    /// - Returns: the relids of all its sub-channels (none where there are none to offer).
    @discardableResult
    func enableSubChannels(primary: UInt32, count: UInt16) -> [UInt32]
}

extension HostBus: DeviceBus {}

extension DeviceBus {
    /// Buses with no guest memory to map (the uio export: its "guest" is a program whose pages
    /// it can only read).
    public func guestExtents(_ range: GpaRange) throws(MemoryError) -> MemoryExtents {
        throw MemoryError.system(call: "map guest memory (this bus cannot)", errno: 95)
    }
}
