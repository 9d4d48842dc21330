import Foundation
import Logging
import VMBusGuest
import VMBusMemory
import VMBusWire

/// A local guest that hibernates to a file and resumes from it (docs/SERVICING.md). The file
/// is a saved-state file of kind guest (docs/SAVED-STATE.md §7) followed by the whole of guest
/// memory.
extension LocalGuest {
    enum HibernationTag {
        static let memoryBytes: UInt16 = 1
        static let allocated: UInt16 = 2
        static let bus: UInt16 = 3
    }

    enum BufferTag {
        static let firstPFN: UInt16 = 1
        static let pages: UInt16 = 2
    }

    /// Hibernates: the bus's drivers suspend and close, the bus unloads (`GuestBus.hibernate()`),
    /// the state and memory go to `path` (written to a temporary file, synced, then renamed
    /// over `path`: a crash leaves the old file or the new one, never half of one), and the
    /// connection ends with a goodbye.
    /// - Returns: what was saved.
    public func hibernate(to path: String) async throws -> GuestHibernation {
        let saved = try await self.bus.hibernate()
        var w = StateWriter()
        w.write(HibernationTag.memoryBytes, UInt64(self.memory.memory.size))
        for buffer in self.memory.allocatedBuffers {
            w.nested(HibernationTag.allocated) { b in
                b.write(BufferTag.firstPFN, buffer.firstPFN)
                b.write(BufferTag.pages, UInt32(buffer.pageCount))
            }
        }
        w.nested(HibernationTag.bus) { saved.save(into: &$0) }
        let temporary = path + ".partial"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(SavedStateFile(kind: .guest, body: w.bytes).encode())),
            let handle = FileHandle(forWritingAtPath: temporary)
        else { throw LocalError.protocolError("cannot write \(temporary)") }
        do {
            try handle.seekToEnd()
            try self.memory.writeImage(to: handle.fileDescriptor)
            try handle.synchronize()
            try handle.close()
        } catch {
            try? handle.close()
            throw error
        }
        try FileSystem.rename(temporary, over: path)
        self.disconnect()
        return saved
    }

    /// Reads a hibernation file: the guest memory it had (the same size, contents and pages in
    /// use) and what its bus needs to resume. Connect with
    /// ``connect(path:memoryBytes:memory:configuration:monitorPages:waitPolicy:logger:capture:captureConnection:)``
    /// passing `memory`, register the same drivers, then `GuestBus.resume(_:)`.
    /// - Throws: `SavedStateError` for a damaged or truncated file.
    public static func readHibernation(_ path: String) throws -> (memory: GuestMemory, saved: GuestHibernation) {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw SavedStateError("cannot open \(path)") }
        defer { try? handle.close() }
        let header = try handle.read(upToCount: SavedStateFile.headerSize) ?? Data()
        guard header.count == SavedStateFile.headerSize else { throw SavedStateError("\(path) is cut short") }
        let length = Int(header[12]) | Int(header[13]) << 8 | Int(header[14]) << 16 | Int(header[15]) << 24
        guard length <= SavedStateFile.maximumBodySize else { throw SavedStateError("\(path): state of \(length) bytes is too large") }
        let body = try handle.read(upToCount: length) ?? Data()
        let file = try SavedStateFile.decode(Array(header + body)[...], expecting: .guest)
        let r = try StateReader(file.body[...])
        let memoryBytes = try r.uint64(HibernationTag.memoryBytes)
        guard memoryBytes > 0, memoryBytes % UInt64(MappedMemory.pageSize) == 0, memoryBytes <= 1 << 40 else {
            throw SavedStateError("\(path): memory of \(memoryBytes) bytes")
        }
        var buffers: [GuestBuffer] = []
        for b in try r.all(HibernationTag.allocated) {
            buffers.append(GuestBuffer(firstPFN: try b.uint64(BufferTag.firstPFN), pageCount: Int(try b.uint32(BufferTag.pages))))
        }
        let saved = try GuestHibernation(restoring: try r.nested(HibernationTag.bus))
        let memory = try GuestMemory(size: Int(memoryBytes))
        do {
            try memory.readImage(from: handle.fileDescriptor)
            try memory.reserve(buffers)
        } catch {
            throw SavedStateError("\(path): \(error)")
        }
        return (memory, saved)
    }
}
