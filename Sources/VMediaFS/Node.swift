import FuseKernel
import Glibc
import VirtualMedia

/// One node of the tree: what it looks like (attributes, how long the kernel may keep it)
/// and what can be done to it. Each kind of node is one type in its own file; the
/// filesystem routes every request to the node its inode names (`VMediaFileSystem.node`).
///
/// The defaults answer as the tree does for a node that does not allow the operation, so a
/// kind states only what it does. Node values are made per request from a `NodeKey` and
/// hold no state of their own: the host, the inode table and the handles hold it.
protocol TreeNode {
    var key: NodeKey { get }
    /// The attributes now, from the host's current state.
    func attributes() throws(FSError) -> FileAttributes
    /// How long the kernel may keep this node's name and its attributes; `parent` is the
    /// directory it was looked up in, when it was.
    func timeouts(in parent: NodeKey?) -> (entry: Double, attributes: Double)
    /// Opens the node as a file; `flags` are open(2)'s.
    func open(flags: Int32, _ ctx: RequestContext) throws(FSError) -> OpenResult
    /// chmod, chown, truncate; `handle` is the open file a ftruncate came through.
    func setAttributes(_ changes: AttributeChanges, handle: OpenHandle?, _ ctx: RequestContext) throws(VMError)
    /// True for the disc's own files: writing any of them is EROFS, whoever asks.
    var isOnDisc: Bool { get }
    func readlink() throws(FSError) -> String

    // Directories
    /// The child called `name`, if there is one.
    func child(named name: String) -> NodeKey?
    /// The children (without "." and "..").
    func list() throws(FSError) -> [DirectoryItem]
    /// Whether the kernel may keep this directory's listing (see `directoryListingMayBeKept`).
    var listingMayBeKept: Bool { get }
    func mkdir(_ name: String, mode: UInt32, _ ctx: RequestContext) throws(VMError) -> NodeKey
    func rmdir(_ name: String, _ ctx: RequestContext) throws(VMError)
    /// Creates and opens a file that does not exist yet.
    func create(_ name: String, mode: UInt32, flags: Int32, _ ctx: RequestContext) throws(FSError) -> (Entry, OpenResult)
    func unlink(_ name: String, _ ctx: RequestContext) throws(VMError)
    func rename(_ name: String, to newName: String, _ ctx: RequestContext) throws(VMError)
}

extension TreeNode {
    func timeouts(in parent: NodeKey?) -> (entry: Double, attributes: Double) {
        (VMediaFileSystem.structureTimeout, VMediaFileSystem.structureTimeout)
    }
    func open(flags: Int32, _ ctx: RequestContext) throws(FSError) -> OpenResult { throw FSError(EACCES) }
    func setAttributes(_ changes: AttributeChanges, handle: OpenHandle?, _ ctx: RequestContext) throws(VMError) {
        try fixedAttributes(changes)
    }
    /// Refuses any change of mode, owner or size (a touch, setting times only, passes).
    func fixedAttributes(_ changes: AttributeChanges) throws(VMError) {
        if changes.mode != nil || changes.uid != nil || changes.gid != nil || changes.size != nil {
            throw VMError(EPERM, "this file's attributes are fixed")
        }
    }
    var isOnDisc: Bool { false }
    func readlink() throws(FSError) -> String { throw FSError(EINVAL) }

    func child(named name: String) -> NodeKey? { nil }
    func list() throws(FSError) -> [DirectoryItem] { throw FSError(ENOTDIR) }
    var listingMayBeKept: Bool { false }
    func mkdir(_ name: String, mode: UInt32, _ ctx: RequestContext) throws(VMError) -> NodeKey {
        throw VMError(EPERM, "directories can be made only in guests/ and in a guest")
    }
    func rmdir(_ name: String, _ ctx: RequestContext) throws(VMError) { throw VMError(ENOTDIR, "not a directory") }
    func create(_ name: String, mode: UInt32, flags: Int32, _ ctx: RequestContext) throws(FSError) -> (Entry, OpenResult) {
        throw FSError(EPERM)
    }
    func unlink(_ name: String, _ ctx: RequestContext) throws(VMError) { throw VMError(EPERM, "files cannot be removed here") }
    func rename(_ name: String, to newName: String, _ ctx: RequestContext) throws(VMError) {
        throw VMError(EPERM, "files cannot be renamed here")
    }
}

/// A directory that is part of the tree's own shape (the root, `guests/`, `library/`, a
/// library entry, a drive, `contents/`): it cannot be opened as a file or removed.
protocol FixedDirectory: TreeNode {}

extension FixedDirectory {
    func open(flags: Int32, _ ctx: RequestContext) throws(FSError) -> OpenResult { throw FSError(EISDIR) }
    func rmdir(_ name: String, _ ctx: RequestContext) throws(VMError) { throw VMError(EPERM, "this directory is part of the tree") }
}

extension VMediaFileSystem {
    /// The node an inode's key names: the one place that knows every kind.
    func node(_ key: NodeKey) -> any TreeNode {
        switch key {
        case .root: RootNode(fs: self)
        case .guests: GuestsNode(fs: self)
        case .library: LibraryNode(fs: self)
        case .events: EventsNode(fs: self)
        case .guest(let id): GuestNode(fs: self, id: id)
        case .initiators(let id): AccessFileNode(fs: self, guestID: id, file: .initiators)
        case .chap(let id): AccessFileNode(fs: self, guestID: id, file: .chap)
        case .drive(let id): DriveNode(fs: self, id: id)
        case .media(let id): MediaNode(fs: self, driveID: id)
        case .status(let id): StatusNode(fs: self, driveID: id)
        case .disc(let id, let generation, let size): DiscNode(fs: self, driveID: id, generation: generation, size: size)
        case .contentsRoot(let id): ContentsRootNode(fs: self, driveID: id)
        case .contents(let id, let generation, let node): ContentsNode(fs: self, driveID: id, generation: generation, node: node)
        case .libraryItem(let name): LibraryItemNode(fs: self, name: name)
        case .libraryFile(let name, let field): LibraryFileNode(fs: self, name: name, field: field)
        case .temporary(let id, let name): TemporaryNode(fs: self, driveID: id, name: name)
        }
    }

    /// Attributes of a node of the tree's own (not of a disc): the daemon's owner and the
    /// mount's time unless given.
    func attributes(_ key: NodeKey, mode: UInt32, links: UInt32 = 1, uid: UInt32? = nil, gid: UInt32? = nil,
                    size: UInt64 = 0, time: Timestamp? = nil, changed: Timestamp? = nil) -> FileAttributes {
        let t = time ?? mountTime
        return FileAttributes(ino: inodes.ino(key), mode: mode, linkCount: links, uid: uid ?? daemonUID, gid: gid ?? daemonGID,
                              size: size, accessTime: t, modificationTime: changed ?? t, changeTime: changed ?? t, blockSize: 2048)
    }

    /// A directory entry for `key`.
    func item(_ name: String, _ key: NodeKey, _ type: UInt32) -> DirectoryItem {
        DirectoryItem(name: name, ino: inodes.ino(key), type: type)
    }

    /// A small text file, as read at open.
    func openText(_ text: String) -> OpenResult {
        OpenResult(handle: TextHandle(text).retainForKernel(), directIO: true)
    }
}

extension Timestamp {
    init(nanos: Int64) { self.init(seconds: nanos / 1_000_000_000, nanoseconds: nanos % 1_000_000_000) }
}

extension Ownership {
    /// chmod and chown as on any directory: the owner (or root) may chmod, only root may
    /// give a directory away, the owner may change its group to one of their own.
    func changed(by ch: AttributeChanges, _ ctx: RequestContext) throws(VMError) -> Ownership {
        var n = self
        let root = ctx.uid == 0
        if let m = ch.mode {
            guard root || ctx.uid == uid else { throw VMError(EPERM, "only the owner may chmod") }
            n.mode = m & 0o7777
        }
        if let u = ch.uid, u != uid {
            guard root else { throw VMError(EPERM, "only root may chown") }
            n.uid = u
        }
        if let g = ch.gid, g != gid {
            guard root || (ctx.uid == uid && (ctx.gid == g || ctx.groups.contains(g))) else {
                throw VMError(EPERM, "not allowed to change the group")
            }
            n.gid = g
        }
        return n
    }
}
