import FuseKernel
import Glibc
import VirtualMedia

/// The mount's root: `guests/`, `library/` and `events`.
struct RootNode: FixedDirectory {
    let fs: VMediaFileSystem
    var key: NodeKey { .root }

    func attributes() throws(FSError) -> FileAttributes { fs.attributes(key, mode: S_IFDIR | 0o755, links: 2) }

    func child(named name: String) -> NodeKey? {
        switch name {
        case "guests": .guests
        case "library": .library
        case "events": .events
        default: nil
        }
    }

    func list() throws(FSError) -> [DirectoryItem] {
        [fs.item("guests", .guests, S_IFDIR), fs.item("library", .library, S_IFDIR), fs.item("events", .events, S_IFREG)]
    }
}

/// `guests/`: one directory per guest; mkdir makes a guest, rmdir removes one.
struct GuestsNode: TreeNode {
    let fs: VMediaFileSystem
    var key: NodeKey { .guests }

    func attributes() throws(FSError) -> FileAttributes { fs.attributes(key, mode: S_IFDIR | 0o755, links: 2) }
    func open(flags: Int32, _ ctx: RequestContext) throws(FSError) -> OpenResult { throw FSError(EISDIR) }

    func child(named name: String) -> NodeKey? { fs.host.guest(named: name).map { .guest($0.id) } }

    func list() throws(FSError) -> [DirectoryItem] { fs.host.guests().map { fs.item($0.name, .guest($0.id), S_IFDIR) } }

    /// Changes only through this mount.
    var listingMayBeKept: Bool { true }

    func mkdir(_ name: String, mode: UInt32, _ ctx: RequestContext) throws(VMError) -> NodeKey {
        .guest(try fs.host.createGuest(name, owner: Ownership(uid: ctx.uid, gid: ctx.gid, mode: mode & ~ctx.umask)).id)
    }

    func rmdir(_ name: String, _ ctx: RequestContext) throws(VMError) {
        guard let g = fs.host.guest(named: name) else { throw VMError(ENOENT, "no guest \(name)") }
        try fs.host.removeGuest(name, by: ctx.credentials)
        fs.inodes.purge { $0 == .guest(g.id) || $0 == .initiators(g.id) || $0 == .chap(g.id) }
    }
}
