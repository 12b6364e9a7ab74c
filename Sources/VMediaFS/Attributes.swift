import FuseKernel
import Glibc
import SCSI
import VirtualMedia

extension Timestamp {
    init(nanos: Int64) { self.init(seconds: nanos / 1_000_000_000, nanoseconds: nanos % 1_000_000_000) }
}

extension VMediaFileSystem {
    private func make(_ key: NodeKey, mode: UInt32, links: UInt32 = 1, uid: UInt32? = nil, gid: UInt32? = nil,
                      size: UInt64 = 0, time: Timestamp? = nil, changed: Timestamp? = nil) -> FileAttributes {
        let t = time ?? mountTime
        return FileAttributes(ino: inodes.ino(key), mode: mode, linkCount: links, uid: uid ?? daemonUID, gid: gid ?? daemonGID,
                              size: size, accessTime: t, modificationTime: changed ?? t, changeTime: changed ?? t, blockSize: 2048)
    }

    /// The attributes of any node of the tree, computed from the host's current state.
    func attributes(_ key: NodeKey) throws(FSError) -> FileAttributes {
        switch key {
        case .root, .guests:
            return make(key, mode: S_IFDIR | 0o755, links: 2)
        case .library:
            return make(key, mode: S_IFDIR | 0o755, links: 2, changed: libraryStamp())
        case .events:
            return make(key, mode: S_IFREG | 0o444)
        case .guest(let id):
            guard let g = host.guest(id: id) else { throw FSError(ENOENT) }
            return make(key, mode: S_IFDIR | g.owner.mode, links: 2, uid: g.owner.uid, gid: g.owner.gid,
                        time: Timestamp(nanos: g.created), changed: Timestamp(nanos: g.changed))
        case .initiators(let id):
            guard let g = host.guest(id: id) else { throw FSError(ENOENT) }
            return make(key, mode: S_IFREG | 0o644, uid: g.owner.uid, gid: g.owner.gid,
                        size: UInt64(initiatorsText(g).utf8.count), time: Timestamp(nanos: g.changed))
        case .chap(let id):
            guard let g = host.guest(id: id) else { throw FSError(ENOENT) }
            return make(key, mode: S_IFREG | 0o200, uid: g.owner.uid, gid: g.owner.gid, time: Timestamp(nanos: g.changed))
        case .drive(let id):
            guard let d = host.drive(id: id) else { throw FSError(ENOENT) }
            return make(key, mode: S_IFDIR | d.owner.mode, links: 3, uid: d.owner.uid, gid: d.owner.gid,
                        time: Timestamp(nanos: d.created), changed: Timestamp(nanos: d.changed))
        case .media(let id):
            // Looked up only while loaded; but a `media` just created for an insert exists
            // (empty) for its writer until the insert completes.
            guard let d = host.drive(id: id) else { throw FSError(ENOENT) }
            return make(key, mode: S_IFREG | (d.owner.mode & 0o666), uid: d.owner.uid, gid: d.owner.gid,
                        size: d.loaded.map { UInt64($0.path.utf8.count + 1) } ?? 0,
                        time: d.loaded.map { Timestamp(nanos: $0.loadedAt) } ?? .now)
        case .status(let id):
            guard let d = host.drive(id: id), let text = host.status(driveID: id) else { throw FSError(ENOENT) }
            return make(key, mode: S_IFREG | 0o444, uid: d.owner.uid, gid: d.owner.gid, size: UInt64(text.utf8.count), time: .now)
        case .disc(let id, _, let size):
            guard let d = host.drive(id: id) else { throw FSError(ENOENT) }
            return make(key, mode: S_IFREG | (0o444 & d.owner.mode), uid: d.owner.uid, gid: d.owner.gid, size: size,
                        time: d.loaded.map { Timestamp(nanos: $0.loadedAt) } ?? Timestamp(nanos: d.created))
        case .contentsRoot(let id):
            // Modes and owners from the disc's root where it has one; the times are when the
            // current media came or went, so that each media change moves the mtime.
            guard let d = host.drive(id: id), let gen = currentGeneration(id) else { throw FSError(ENOENT) }
            let when = Timestamp(nanos: d.loaded?.loadedAt ?? d.changed)
            if contents.isEmpty(drive: id, generation: gen) {
                return make(key, mode: S_IFDIR | (0o555 & d.owner.mode), links: 2, uid: d.owner.uid, gid: d.owner.gid,
                            time: when)
            }
            var a = try contents.attributes(drive: id, generation: gen, node: ContentsCache.rootNode, ino: inodes.ino(key))
            a.modificationTime = when
            a.changeTime = when
            return a
        case .contents(let id, let gen, let node):
            return try contents.attributes(drive: id, generation: gen, node: node, ino: inodes.ino(key))
        case .libraryItem(let name):
            guard let item = host.libraryItem(named: name) else { throw FSError(ENOENT) }
            return make(key, mode: S_IFDIR | 0o755, links: 2, uid: item.uid, gid: item.gid, time: Timestamp(nanos: item.modificationTime))
        case .libraryFile(let name, let field):
            guard let item = host.libraryItem(named: name) else { throw FSError(ENOENT) }
            let text = libraryText(item, field)
            return make(key, mode: S_IFREG | (field == .sharable ? 0o644 : 0o444), uid: item.uid, gid: item.gid,
                        size: UInt64(text.utf8.count), time: Timestamp(nanos: item.modificationTime))
        case .temporary:
            guard let f = temporaries.withLock({ $0[key] }) else { throw FSError(ENOENT) }
            let (size, mode, uid, gid) = f.lock.withLock { (UInt64($0.data.count), $0.mode, $0.uid, $0.gid) }
            return make(key, mode: S_IFREG | mode, uid: uid, gid: gid, size: size)
        }
    }

    /// `library/`'s mtime: the newest of the media folders' mtimes, with a fingerprint of
    /// the listing in its nanoseconds. The kernel keeps the listing until the mtime moves.
    func libraryStamp() -> Timestamp {
        let v = host.libraryVersion()
        return Timestamp(seconds: v.newestFolderSeconds, nanoseconds: Int64(v.fingerprint % 1_000_000_000))
    }

    func initiatorsText(_ g: GuestRecord) -> String { g.initiators.map { $0 + "\n" }.joined() }

    func libraryText(_ item: LibraryItem, _ field: LibraryField) -> String {
        switch field {
        case .path: return item.path + "\n"
        case .size: return "\(item.size)\n"
        case .users: return host.users(of: item.path).map { $0 + "\n" }.joined()
        case .sharable: return host.isSharable(item.path) ? "yes\n" : "no\n"
        }
    }

    public func setattr(_ ctx: RequestContext, ino: UInt64, changes: AttributeChanges, reply: consuming AttributeReply) {
        guard let key = inodes.key(ino) else { return reply.fail(ESTALE) }
        do throws(VMError) {
            switch key {
            case .guest(let id):
                guard let g = host.guest(id: id) else { throw VMError(ENOENT, "no such guest") }
                _ = try host.setGuestOwnership(id: id, try changed(g.owner, changes, ctx))
            case .drive(let id):
                guard let d = host.drive(id: id) else { throw VMError(ENOENT, "no such drive") }
                _ = try host.setDriveOwnership(id: id, try changed(d.owner, changes, ctx))
                // `disc` and `contents/` take their modes from the drive.
                if let session, let rt = host.runtime(driveID: id) {
                    for k in [discKey(id, rt), .contentsRoot(id)] {
                        if let ino = inodes.existing(k) { session.invalidateAttributes(ino) }
                    }
                }
            case .media(let id):
                if changes.size == 0 {
                    if let h = changes.handle.flatMap(OpenHandle.from) as? ControlWriter {
                        h.markTruncated()
                    } else {
                        try host.eject(driveID: id, by: credentials(ctx))
                    }
                }
            case .libraryFile(_, .sharable):
                break
            case .temporary:
                guard let f = temporaries.withLock({ $0[key] }) else { throw VMError(ENOENT, "gone") }
                f.lock.withLock { t in
                    if let s = changes.size { t.data = Array(t.data.prefix(Int(s))) + [UInt8](repeating: 0, count: max(0, Int(s) - t.data.count)) }
                    if let m = changes.mode { t.mode = m & 0o777 }
                    if let u = changes.uid { t.uid = u }
                    if let g = changes.gid { t.gid = g }
                }
            default:
                if changes.mode != nil || changes.uid != nil || changes.gid != nil || changes.size != nil {
                    throw VMError(EPERM, "this file's attributes are fixed")
                }
            }
        } catch {
            return reply.fail(error.errno)
        }
        do throws(FSError) {
            let e = try entry(key)
            reply.attributes(e.attributes, timeout: e.attributeTimeout)
        } catch { reply.fail(error.errno) }
    }

    /// access(2) on a mount without `default_permissions`: the usual owner, group and
    /// other bits for the caller (root passes every read and write check, and an execute
    /// check where any execute bit is set); writing anything of a disc (`disc`, `contents/`)
    /// is EROFS, whoever asks.
    public func access(_ ctx: RequestContext, ino: UInt64, mask: Int32, reply: consuming StatusReply) {
        guard let key = inodes.key(ino) else { return reply.fail(ESTALE) }
        let a: FileAttributes
        do throws(FSError) { a = try attributes(key) } catch { return reply.fail(error.errno) }
        if mask & W_OK != 0 {
            switch key {
            case .disc, .contents, .contentsRoot: return reply.fail(EROFS)
            default: break
            }
        }
        if mask == F_OK || permits(a, mask: mask, ctx) { reply.ok() } else { reply.fail(EACCES) }
    }

    private func permits(_ a: FileAttributes, mask: Int32, _ ctx: RequestContext) -> Bool {
        if ctx.uid == 0 { return mask & X_OK == 0 || a.mode & 0o111 != 0 || a.mode & S_IFMT == S_IFDIR }
        let bits: UInt32
        if ctx.uid == a.uid { bits = (a.mode >> 6) & 7 }
        else if ctx.gid == a.gid || ctx.groups.contains(a.gid) { bits = (a.mode >> 3) & 7 }
        else { bits = a.mode & 7 }
        return UInt32(mask) & 7 & ~bits == 0
    }

    /// chmod and chown as on any directory: the owner (or root) may chmod, only root may
    /// give a directory away, the owner may change its group to one of their own.
    private func changed(_ o: Ownership, _ ch: AttributeChanges, _ ctx: RequestContext) throws(VMError) -> Ownership {
        var n = o
        let root = ctx.uid == 0
        if let m = ch.mode {
            guard root || ctx.uid == o.uid else { throw VMError(EPERM, "only the owner may chmod") }
            n.mode = m & 0o7777
        }
        if let u = ch.uid, u != o.uid {
            guard root else { throw VMError(EPERM, "only root may chown") }
            n.uid = u
        }
        if let g = ch.gid, g != o.gid {
            guard root || (ctx.uid == o.uid && (ctx.gid == g || ctx.groups.contains(g))) else {
                throw VMError(EPERM, "not allowed to change the group")
            }
            n.gid = g
        }
        return n
    }
}
