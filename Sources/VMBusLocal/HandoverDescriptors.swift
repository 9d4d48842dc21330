import VMBusMemory
import VMBusWire

/// The descriptors of a hand-over, referred to from the saved state by index: a takeover
/// passes them with SCM_RIGHTS in this order. Each may be taken once; whatever is left at the
/// end (or after a failure) is closed, so a refused hand-over leaks nothing in the new process.
struct HandoverDescriptors: ~Copyable {
    var fds: [Int32]
    var taken: Set<Int> = []

    init(_ fds: [Int32]) { self.fds = fds }

    /// The descriptor at `index`, now the caller's.
    mutating func take(_ index: UInt32) throws(SavedStateError) -> Int32 {
        let i = Int(index)
        guard i < self.fds.count, self.taken.insert(i).inserted else {
            throw SavedStateError("descriptor \(index) is missing or used twice (\(self.fds.count) were passed)")
        }
        return self.fds[i]
    }

    /// Closes every descriptor nobody took.
    consuming func closeRest() {
        for (i, fd) in self.fds.enumerated() where !self.taken.contains(i) { DescriptorIO.close(fd) }
    }
}
