import FuseKernel
import Glibc
import VirtualMedia

/// `library/`: one directory per image file in the media folders, and per URL image in use. Its mtime is the newest
/// of the folders' mtimes with a fingerprint of the listing in its nanoseconds, so the
/// kernel keeps the listing until either moves.
struct LibraryNode: FixedDirectory {
    let fs: VMediaFileSystem
    var key: NodeKey { .library }

    func attributes() throws(FSError) -> FileAttributes {
        let v = fs.host.libraryVersion()
        let stamp = Timestamp(seconds: v.newestFolderSeconds, nanoseconds: Int64(v.fingerprint % 1_000_000_000))
        return fs.attributes(key, mode: S_IFDIR | 0o755, links: 2, changed: stamp)
    }

    /// The listing follows the media folders, which change behind everyone's back.
    func timeouts(in parent: NodeKey?) -> (entry: Double, attributes: Double) {
        (VMediaFileSystem.structureTimeout, VMediaFileSystem.volatileTimeout)
    }

    func child(named name: String) -> NodeKey? { fs.host.libraryItem(named: name).map { .libraryItem($0.name) } }

    func list() throws(FSError) -> [DirectoryItem] {
        fs.host.library().map { fs.item($0.name, .libraryItem($0.name), S_IFDIR) }
    }
}

/// The files of a `library/NAME/` directory.
enum LibraryField: String, CaseIterable, Sendable {
    case path, kind, size, users, sharable
}

/// `library/NAME/`: the facts of one image.
struct LibraryItemNode: FixedDirectory {
    let fs: VMediaFileSystem
    let name: String
    var key: NodeKey { .libraryItem(name) }

    func attributes() throws(FSError) -> FileAttributes {
        guard let item = fs.host.libraryItem(named: name) else { throw FSError(ENOENT) }
        return fs.attributes(key, mode: S_IFDIR | 0o755, links: 2, uid: item.uid, gid: item.gid,
                             time: Timestamp(nanos: item.modificationTime))
    }

    func timeouts(in parent: NodeKey?) -> (entry: Double, attributes: Double) {
        (VMediaFileSystem.repositoryTimeout, VMediaFileSystem.repositoryTimeout)
    }

    func child(named field: String) -> NodeKey? { LibraryField(rawValue: field).map { .libraryFile(name, $0) } }

    func list() throws(FSError) -> [DirectoryItem] {
        guard fs.host.libraryItem(named: name) != nil else { throw FSError(ENOENT) }
        return LibraryField.allCases.map { fs.item($0.rawValue, .libraryFile(name, $0), S_IFREG) }
    }
}

/// `path` (a file's path or the URL), `kind` (`file` or `url`), `size` and `users` (read-only facts) and `sharable` ("yes"/"no", writable by
/// the image file's owner or root).
struct LibraryFileNode: TreeNode, ControlTarget {
    let fs: VMediaFileSystem
    let name: String
    let field: LibraryField
    var key: NodeKey { .libraryFile(name, field) }

    func attributes() throws(FSError) -> FileAttributes {
        guard let item = fs.host.libraryItem(named: name) else { throw FSError(ENOENT) }
        return fs.attributes(key, mode: S_IFREG | (field == .sharable ? 0o644 : 0o444), uid: item.uid, gid: item.gid,
                             size: UInt64(text(item).utf8.count), time: Timestamp(nanos: item.modificationTime))
    }

    /// Who uses an image and whether it is sharable change through other files.
    func timeouts(in parent: NodeKey?) -> (entry: Double, attributes: Double) {
        switch field {
        case .users, .sharable: (VMediaFileSystem.repositoryTimeout, VMediaFileSystem.volatileTimeout)
        case .path, .kind, .size: (VMediaFileSystem.repositoryTimeout, VMediaFileSystem.repositoryTimeout)
        }
    }

    func open(flags: Int32, _ ctx: RequestContext) throws(FSError) -> OpenResult {
        guard let item = fs.host.libraryItem(named: name) else { throw FSError(ENOENT) }
        guard (flags & O_ACCMODE) != O_RDONLY else { return fs.openText(text(item)) }
        guard field == .sharable, ctx.uid == 0 || ctx.uid == item.uid else { throw FSError(EACCES) }
        let w = ControlWriter(self, truncated: false, opener: ctx.credentials)
        return OpenResult(handle: w.retainForKernel(), directIO: true)
    }

    /// The shell's `echo yes > sharable` truncates first: nothing to do.
    func setAttributes(_ changes: AttributeChanges, handle: OpenHandle?, _ ctx: RequestContext) throws(VMError) {
        guard field != .sharable else { return }
        try fixedAttributes(changes)
    }

    func take(_ text: [UInt8], by user: Credentials) throws(VMError) {
        try fs.host.setSharable(name: name, try ControlText.sharable(text), by: user)
    }

    private func text(_ item: LibraryItem) -> String {
        switch field {
        case .path: item.path + "\n"
        case .kind: item.kind.rawValue + "\n"
        case .size: "\(item.size)\n"
        case .users: fs.host.users(of: item.path).map { $0 + "\n" }.joined()
        case .sharable: fs.host.isSharable(item.path) ? "yes\n" : "no\n"
        }
    }
}
