import Foundation
import VMBusDevices

/// The warning `ctl copy` gives for a guest path that is not ASCII, or `nil` for one that is.
///
/// Linux's `hv_fcopy_uio_daemon` converts only ASCII in names (it writes `X` for UTF-16 units of
/// 0x80 or more), so such a copy "succeeds" there under a mangled name. Nothing the
/// guest negotiates says which daemon answers (every fcopy guest offers IC version 1.1), so the
/// warning is given for every such name; vmbus guests and `vmbus fcopy-daemon` keep the name.
/// - Parameters:
///   - guestPath: the guest path as given on the command line.
///   - source: the source file (its name is used when `guestPath` ends in `/`).
func nonASCIICopyWarning(guestPath: String, source: String) -> String? {
    guard let destination = try? FileCopyDestination(guestPath: guestPath, sourcePath: source), !destination.isASCII else {
        return nil
    }
    return "warning: '\(destination.path)' is not plain ASCII: a guest running Linux's hv_fcopy_uio_daemon would store "
        + "it under a mangled name (it converts only ASCII); vmbus guests and 'vmbus fcopy-daemon' keep it as is"
}

/// Prints ``nonASCIICopyWarning(guestPath:source:)`` on standard error, if there is one.
func warnAboutNonASCIICopyName(guestPath: String, source: String) {
    guard let warning = nonASCIICopyWarning(guestPath: guestPath, source: source) else { return }
    FileHandle.standardError.write(Data((warning + "\n").utf8))
}
