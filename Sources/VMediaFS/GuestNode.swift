import FuseKernel
import Glibc
import VirtualMedia

/// A guest's directory: its drives, and its iSCSI access files. mkdir makes a drive, rmdir
/// removes one; chmod and chown work as on any directory.
struct GuestNode: TreeNode {
    let fs: VMediaFileSystem
    let id: Int64
    var key: NodeKey { .guest(id) }

    func attributes() throws(FSError) -> FileAttributes {
        guard let g = fs.host.guest(id: id) else { throw FSError(ENOENT) }
        return fs.attributes(key, mode: S_IFDIR | g.owner.mode, links: 2, uid: g.owner.uid, gid: g.owner.gid,
                             time: Timestamp(nanos: g.created), changed: Timestamp(nanos: g.changed))
    }

    func open(flags: Int32, _ ctx: RequestContext) throws(FSError) -> OpenResult { throw FSError(EISDIR) }

    func setAttributes(_ changes: AttributeChanges, handle: OpenHandle?, _ ctx: RequestContext) throws(VMError) {
        guard let g = fs.host.guest(id: id) else { throw VMError(ENOENT, "no such guest") }
        try fs.host.setOwnership(.guest(id), try g.owner.changed(by: changes, ctx))
    }

    func child(named name: String) -> NodeKey? {
        if name == "initiators" { return .initiators(id) }
        if name == "chap" { return .chap(id) }
        guard let d = fs.host.drive(named: name), d.guestID == id else { return nil }
        return .drive(d.id)
    }

    func list() throws(FSError) -> [DirectoryItem] {
        guard fs.host.guest(id: id) != nil else { throw FSError(ENOENT) }
        return [fs.item("initiators", .initiators(id), S_IFREG), fs.item("chap", .chap(id), S_IFREG)]
            + fs.host.drives(ofGuest: id).map { fs.item($0.name, .drive($0.id), S_IFDIR) }
    }

    /// Changes only through this mount.
    var listingMayBeKept: Bool { true }

    func mkdir(_ name: String, mode: UInt32, _ ctx: RequestContext) throws(VMError) -> NodeKey {
        guard let g = fs.host.guest(id: id) else { throw VMError(ENOENT, "guest is gone") }
        let owner = Ownership(uid: ctx.uid, gid: ctx.gid, mode: mode & ~ctx.umask)
        return .drive(try fs.host.createDrive(guest: g.name, name: name, owner: owner).id)
    }

    func rmdir(_ name: String, _ ctx: RequestContext) throws(VMError) {
        guard let g = fs.host.guest(id: id), let d = fs.host.drive(named: name), d.guestID == id else {
            throw VMError(ENOENT, "no drive \(name)")
        }
        try fs.host.removeDrive(guest: g.name, name: name, by: ctx.credentials)
        fs.forgetDrive(d.id)
    }
}

/// A guest's `initiators` (the initiator IQNs that may log in, one per line) and `chap`
/// (`user:secret`, write-only): writable by the guest's owner (or root) only, each taking
/// the whole file at close.
struct AccessFileNode: TreeNode, ControlTarget {
    enum File: Sendable { case initiators, chap }
    let fs: VMediaFileSystem
    let guestID: Int64
    let file: File
    var key: NodeKey { file == .initiators ? .initiators(guestID) : .chap(guestID) }

    func attributes() throws(FSError) -> FileAttributes {
        guard let g = fs.host.guest(id: guestID) else { throw FSError(ENOENT) }
        switch file {
        case .initiators:
            return fs.attributes(key, mode: S_IFREG | 0o644, uid: g.owner.uid, gid: g.owner.gid,
                                 size: UInt64(Self.text(g).utf8.count), time: Timestamp(nanos: g.changed))
        case .chap:
            return fs.attributes(key, mode: S_IFREG | 0o200, uid: g.owner.uid, gid: g.owner.gid, time: Timestamp(nanos: g.changed))
        }
    }

    func timeouts(in parent: NodeKey?) -> (entry: Double, attributes: Double) {
        (VMediaFileSystem.volatileTimeout, VMediaFileSystem.volatileTimeout)
    }

    func open(flags: Int32, _ ctx: RequestContext) throws(FSError) -> OpenResult {
        guard let g = fs.host.guest(id: guestID) else { throw FSError(ENOENT) }
        if (flags & O_ACCMODE) != O_RDONLY {
            guard ctx.uid == 0 || ctx.uid == g.owner.uid else { throw FSError(EACCES) }
            let w = ControlWriter(self, truncated: flags & O_TRUNC != 0, opener: ctx.credentials)
            return OpenResult(handle: w.retainForKernel(), directIO: true)
        }
        // The CHAP secret is never read back, not even by its owner.
        guard file == .initiators else { throw FSError(EACCES) }
        return fs.openText(Self.text(g))
    }

    var wholeFile: Bool { true }

    func take(_ text: [UInt8], by user: Credentials) throws(VMError) {
        switch file {
        case .initiators: try fs.host.setInitiators(guestID: guestID, text: text, by: user)
        case .chap: try fs.host.setChap(guestID: guestID, text: text, by: user)
        }
    }

    static func text(_ g: GuestRecord) -> String { g.initiators.map { $0 + "\n" }.joined() }
}
