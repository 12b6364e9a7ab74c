import Glibc

/// A drive named as `GUEST/DRIVE`.
public struct DriveRef: Sendable, Hashable, CustomStringConvertible {
    public var guest: String
    public var drive: String
    public init(guest: String, drive: String) {
        self.guest = guest
        self.drive = drive
    }
    public var description: String { "\(guest)/\(drive)" }
}

/// The mounted tree and every administrative operation on it, each done with the plain file
/// operations that a shell script would use (SPEC 2). The operations live in the
/// `VMediaTree+…` files, one per subject; listings return values that `Report` renders.
public struct VMediaTree: Sendable {
    /// The mount point.
    public let root: String
    /// The file operations; `POSIXTreeIO` unless a test substitutes one.
    public let io: any TreeIO
    /// The caller's working directory, to make relative image paths absolute.
    public let workingDirectory: String

    public init(root: String, io: any TreeIO = POSIXTreeIO(), workingDirectory: String? = nil) {
        self.root = Paths.normalized(root)
        self.io = io
        self.workingDirectory = workingDirectory ?? VMediaTree.currentDirectory()
    }

    static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return "/" }
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: paths

    public var guestsPath: String { Paths.join(root, "guests") }
    public var libraryPath: String { Paths.join(root, "library") }
    public var eventsPath: String { Paths.join(root, "events") }
    public func guestPath(_ guest: String) -> String { Paths.join(guestsPath, guest) }
    public func drivePath(_ ref: DriveRef) -> String { Paths.join(guestPath(ref.guest), ref.drive) }
    public func statusPath(_ ref: DriveRef) -> String { Paths.join(drivePath(ref), "status") }
    public func mediaPath(_ ref: DriveRef) -> String { Paths.join(drivePath(ref), "media") }
    public func libraryEntryPath(_ name: String) -> String { Paths.join(libraryPath, name) }

    // MARK: lookups shared by the operations

    /// The guests' names, in natural order.
    public func guestNames() throws(VMediaError) -> [String] {
        do {
            return try io.list(guestsPath).filter(isDirectoryIn(guestsPath)).sorted(by: Names.naturalOrder)
        } catch {
            throw VMediaError.from(error, subject: guestsPath, operation: .read)
        }
    }

    /// The drives of one guest, in natural order: the guest directory's subdirectories
    /// (it also holds the files `initiators` and `chap`).
    public func driveNames(of guest: String) throws(Errno) -> [String] {
        let path = guestPath(guest)
        return try io.list(path).filter(isDirectoryIn(path)).sorted(by: Names.naturalOrder)
    }

    private func isDirectoryIn(_ dir: String) -> (String) -> Bool {
        { name in (try? io.info(Paths.join(dir, name)).isDirectory) ?? false }
    }

    /// Finds a drive from what the user typed: `GUEST/DRIVE`, or a bare drive name searched
    /// across all guests (drive names are unique on the host).
    public func findDrive(_ spec: String) throws(VMediaError) -> DriveRef {
        if let slash = spec.firstIndex(of: "/") {
            let ref = DriveRef(guest: String(spec[..<slash]), drive: String(spec[spec.index(after: slash)...]))
            try Names.check(ref.guest, as: "guest")
            try Names.check(ref.drive, as: "drive")
            let isDrive: Bool
            do { isDrive = try io.info(drivePath(ref)).isDirectory } catch {
                throw VMediaError.from(error, subject: spec, reason: error == .noSuchFile ? "no such drive" : nil)
            }
            guard isDrive else { throw VMediaError(spec, "no such drive", exit: .notFound, errno: .noSuchFile) }
            return ref
        }
        try Names.check(spec, as: "drive")
        var found: [DriveRef] = []
        for guest in try guestNames() {
            let ref = DriveRef(guest: guest, drive: spec)
            if (try? io.info(drivePath(ref)).isDirectory) == true { found.append(ref) }
        }
        guard found.count == 1 else {
            if found.isEmpty { throw VMediaError(spec, "no such drive", exit: .notFound, errno: .noSuchFile) }
            throw VMediaError(spec, "drive name found in several guests (\(found.map(\.description).joined(separator: ", "))); name it as GUEST/DRIVE", exit: .notFound)
        }
        return found[0]
    }

    /// Reads and parses a drive's `status`.
    public func readStatus(_ ref: DriveRef) throws(VMediaError) -> DriveStatus {
        DriveStatus(parsing: try readStatusText(ref))
    }

    /// The `status` file's text as the filesystem gives it.
    public func readStatusText(_ ref: DriveRef) throws(VMediaError) -> String {
        do { return try io.read(statusPath(ref)) } catch {
            throw VMediaError.from(error, subject: ref.description,
                                   reason: error == .noSuchFile ? "no such drive" : nil, operation: .read)
        }
    }

    /// Reads a small fact file (`library/NAME/size`…) without its trailing newline.
    func readFact(_ path: String) throws(Errno) -> String {
        var text = try io.read(path)
        while text.hasSuffix("\n") { text.removeLast() }
        return text
    }
}
