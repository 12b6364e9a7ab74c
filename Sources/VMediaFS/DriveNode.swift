import FuseKernel
import Glibc
import VirtualMedia

/// A drive's directory: `media` while loaded, `disc`, `status`, `contents/`, and the files
/// editors create while saving `media`. chmod and chown work as on any directory; `disc`
/// and `contents/` take their modes from it.
struct DriveNode: FixedDirectory {
    let fs: VMediaFileSystem
    let id: Int64
    var key: NodeKey { .drive(id) }
    var media: MediaNode { MediaNode(fs: fs, driveID: id) }

    func attributes() throws(FSError) -> FileAttributes {
        guard let d = fs.host.drive(id: id) else { throw FSError(ENOENT) }
        return fs.attributes(key, mode: S_IFDIR | d.owner.mode, links: 3, uid: d.owner.uid, gid: d.owner.gid,
                             time: Timestamp(nanos: d.created), changed: Timestamp(nanos: d.changed))
    }

    func setAttributes(_ changes: AttributeChanges, handle: OpenHandle?, _ ctx: RequestContext) throws(VMError) {
        guard let d = fs.host.drive(id: id) else { throw VMError(ENOENT, "no such drive") }
        try fs.host.setOwnership(.drive(id), try d.owner.changed(by: changes, ctx))
        // `disc` and `contents/` take their modes from the drive.
        if let session = fs.session, let rt = fs.host.runtime(driveID: id) {
            for k in [fs.discKey(id, rt), .contentsRoot(id)] {
                if let ino = fs.inodes.existing(k) { session.invalidateAttributes(ino) }
            }
        }
    }

    func child(named name: String) -> NodeKey? {
        guard let d = fs.host.drive(id: id), let rt = fs.host.runtime(driveID: id) else { return nil }
        switch name {
        case "media": return d.loaded == nil ? nil : .media(id)
        case "disc": return fs.discKey(id, rt)
        case "status": return .status(id)
        case "contents": return .contentsRoot(id)
        default: return fs.temporaryFile(.temporary(id, name)) == nil ? nil : .temporary(id, name)
        }
    }

    func list() throws(FSError) -> [DirectoryItem] {
        guard let d = fs.host.drive(id: id), let rt = fs.host.runtime(driveID: id) else { throw FSError(ENOENT) }
        var items: [DirectoryItem] = []
        if d.loaded != nil { items.append(fs.item("media", .media(id), S_IFREG)) }
        items += [fs.item("disc", fs.discKey(id, rt), S_IFREG), fs.item("status", .status(id), S_IFREG),
                  fs.item("contents", .contentsRoot(id), S_IFDIR)]
        for name in fs.temporaryNames(drive: id) { items.append(fs.item(name, .temporary(id, name), S_IFREG)) }
        return items
    }

    /// Changes only through this mount, except `media` coming or going by a guest's or a
    /// deferred eject, which moves the directory's mtime (`DriveRecord.changed`).
    var listingMayBeKept: Bool { true }

    /// `media` (an insert or a swap) or an editor's temporary file.
    func create(_ name: String, mode: UInt32, flags: Int32, _ ctx: RequestContext) throws(FSError) -> (Entry, OpenResult) {
        guard fs.host.drive(id: id) != nil else { throw FSError(EPERM) }
        if name == "media" { return media.createForWriting(ctx) }
        guard !Names.reserved.contains(name), !name.contains("/"), name.utf8.count <= 255 else { throw FSError(EPERM) }
        let file = fs.addTemporary(.temporary(id, name), mode: mode & ~ctx.umask & 0o777, ctx)
        let node = TemporaryNode(fs: fs, driveID: id, name: name)
        return (try fs.entry(node), OpenResult(handle: TemporaryHandle(file).retainForKernel(), directIO: true))
    }

    /// `rm media` ejects; an editor's temporary file goes.
    func unlink(_ name: String, _ ctx: RequestContext) throws(VMError) {
        if name == "media" { return try media.remove(ctx) }
        let key = NodeKey.temporary(id, name)
        guard fs.removeTemporary(key) else {
            throw VMError(Names.reserved.contains(name) ? EPERM : ENOENT, "no such file")
        }
    }

    /// Only an editor's save is a rename here: a temporary file renamed onto `media` writes
    /// what it holds into `media`; renamed to another free name it is only renamed.
    func rename(_ name: String, to newName: String, _ ctx: RequestContext) throws(VMError) {
        let key = NodeKey.temporary(id, name)
        guard let file = fs.temporaryFile(key) else {
            throw VMError(Names.reserved.contains(name) ? EPERM : ENOENT, "no such file")
        }
        if newName == "media" {
            try media.replace(with: file.lock.withLock { $0.data }, ctx)
            _ = fs.removeTemporary(key)
            return
        }
        guard !Names.reserved.contains(newName) else { throw VMError(EPERM, "a name of the tree") }
        fs.renameTemporary(key, to: .temporary(id, newName))
    }
}
