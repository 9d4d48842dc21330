/// Where a file copy puts its file, in the two fields START_FILE_COPY carries (06 §8): the
/// target directory, always ending in `/`, and the file name, never empty.
///
/// The trailing `/` matters for Linux's `hv_fcopy_uio_daemon`: with CREATE_PATH it creates
/// only the components of `path_name` that a `/` follows, so `dir1/dir2/dir3` would get
/// `dir1/dir2` created and then fail, while `dir1/dir2/dir3/` gets all three. Our guest
/// (``FileCopyGuest``) accepts the directory either way.
public struct FileCopyDestination: Hashable, Sendable {
    /// The target directory, ending in `/` (`./` for a bare file name, `/` for the root).
    public var directory: String
    /// The file name: no `/`, not empty, not `.` or `..`.
    public var name: String

    /// Why a guest path cannot be a destination.
    public enum Error: Swift.Error, Hashable, Sendable, CustomStringConvertible {
        /// The guest path is empty.
        case emptyPath
        /// The path names a directory (ends in `/`) and the source has no file name to use.
        case noFileName(String)
        /// The file name is `.` or `..`.
        case invalidName(String)

        public var description: String {
            switch self {
            case .emptyPath: return "the guest path is empty"
            case .noFileName(let path): return "'\(path)' is a directory and the source has no file name to put in it"
            case .invalidName(let name): return "'\(name)' cannot be a file name"
            }
        }
    }

    /// Splits a guest path at its last `/`.
    ///
    /// `dir1/dir2/f.txt` is `dir1/dir2/` + `f.txt`; `f.txt` is `./` + `f.txt`; `/f.txt` is
    /// `/` + `f.txt`. A path ending in `/` names a directory: the file keeps the source's name
    /// there (`inbox/` + `notes.txt`).
    /// - Parameters:
    ///   - guestPath: where the file goes in the guest.
    ///   - sourcePath: the file being sent; only its last component is used, and only when
    ///     `guestPath` ends in `/`.
    /// - Throws: ``Error`` for an empty path, a directory with no file name to use, or a name
    ///   of `.` or `..`.
    public init(guestPath: String, sourcePath: String) throws(Error) {
        guard !guestPath.isEmpty else { throw Error.emptyPath }
        let directory: Substring
        var name: Substring
        if let slash = guestPath.lastIndex(of: "/") {
            directory = guestPath[...slash]
            name = guestPath[guestPath.index(after: slash)...]
        } else {
            directory = "./"
            name = guestPath[...]
        }
        if name.isEmpty {
            name = sourcePath.split(separator: "/").last ?? ""
            guard !name.isEmpty else { throw Error.noFileName(guestPath) }
        }
        guard name != ".", name != ".." else { throw Error.invalidName(String(name)) }
        self.directory = String(directory)
        self.name = String(name)
    }

    /// The guest path the file ends up at.
    public var path: String { self.directory + self.name }

    /// Whether every character of the directory and the name is ASCII. Linux's daemon converts
    /// only ASCII (it writes `X` for UTF-16 units of 0x80 or more), so a copy with any other
    /// character "succeeds" there under a mangled name. Our guest keeps the name whole.
    public var isASCII: Bool { (self.directory + self.name).unicodeScalars.allSatisfy(\.isASCII) }
}
