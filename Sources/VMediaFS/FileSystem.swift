import FuseKernel
import Glibc
import SCSI
import Synchronization
import VirtualMedia

/// How reads of `disc` reach the kernel.
public enum DiscIO: String, Sendable {
    /// The kernel keeps the pages it read for as long as the media generation lasts (a new
    /// generation is a new inode): later reads and opens are served from memory. A first
    /// read costs two copies (image to the kernel's cache, cache to the reader).
    case cached
    /// Every read goes to the daemon and is spliced from the image straight into the
    /// reader's buffer (one copy). Nothing is kept, and libfuse 3.14 cannot let the kernel
    /// map such a file shared (mmap MAP_SHARED fails with ENODEV; MAP_PRIVATE works).
    case direct
}

/// The vmediafs tree (contract section 2) over a `Host`: maps each FUSE operation onto
/// guests, drives, media and the repository. It holds no domain state of its own beyond
/// inode numbers, open handles, editors' temporary files and event readers.
public final class VMediaFileSystem: FileSystem, HostObserver, @unchecked Sendable {
    let host: Host
    let inodes = InodeTable()
    let mountTime = Timestamp.now
    let daemonUID = geteuid()
    let daemonGID = getegid()
    /// Editors' temporary files, by drive and name.
    let temporaries = Mutex<[NodeKey: TemporaryFile]>([:])
    let sessionBox = Mutex<FuseSession?>(nil)
    let contents: ContentsCache
    let discIO: DiscIO

    /// How long the kernel may keep names and attributes that change only through this
    /// mount (guest and drive directories, `contents/` itself), or that the daemon
    /// invalidates when they change behind the kernel's back (see `driveChanged`).
    let structureTimeout = 3600.0
    /// The repository follows its media folders, which change behind everyone's back.
    let repositoryTimeout = 1.0
    /// Names whose target changes with the media (`disc`, `media`, the names directly in
    /// `contents/`): looked up afresh on every path walk, so that a new open always sees
    /// the current media.
    let volatileTimeout = 0.0
    /// Nodes tied to one media generation never change while they exist.
    let generationTimeout = 3600.0

    public init(host: Host, discIO: DiscIO = .cached) {
        self.host = host
        self.discIO = discIO
        self.contents = ContentsCache(host: host)
        host.setObserver(self)
    }

    public func sessionStarted(_ session: FuseSession) { sessionBox.withLock { $0 = session } }
    var session: FuseSession? { sessionBox.withLock { $0 } }

    /// A drive's media or lock changed, through a file or behind the kernel's back (a
    /// guest's eject, a deferred eject, a backing image changing).
    ///
    /// The kernel keeps the drive directory's and `contents/`'s listings and attributes for
    /// long; both directories' mtimes have moved, so invalidating their attributes is
    /// enough: the next listing fetches them, sees the new mtime and reads the directory
    /// again. An attributes-only invalidation waits for no lock. Names whose target follows
    /// the media (`media`, `disc`, `status`, the names in `contents/`) are answered with an
    /// entry timeout of 0, and a failed lookup leaves no cached negative entry, so the next
    /// path walk asks again and sees the change.
    ///
    /// Do not send `notify_inval_entry` here. It takes the drive directory's lock, which a
    /// request in flight on that directory (the `rm media` or `mkdir` this daemon is still
    /// answering) holds. A SIGKILL landing while the notifying thread waited left it in
    /// uninterruptible sleep: the daemon could never exit, so the connection was never
    /// aborted and the client and the mount hung until someone wrote to
    /// /sys/fs/fuse/connections/N/abort.
    ///
    /// What the daemon drops itself: the opened disc tree, and the inode numbers of the
    /// drive's older media generations.
    public func driveChanged(_ driveID: Int64) {
        if let session {
            for key in [NodeKey.drive(driveID), .contentsRoot(driveID)] {
                if let ino = inodes.existing(key) { session.invalidateAttributes(ino) }
            }
        }
        // A lock or unlock (a guest sends them at every open and close) keeps the disc's
        // parsed tree; only a new media generation drops the old one.
        guard let current = currentGeneration(driveID) else { return contents.forget(drive: driveID) }
        contents.forget(drive: driveID, unlessGeneration: current)
        inodes.forgetDiscTrees(drive: driveID, keeping: current)
        let dropped = inodes.purge(drive: driveID) { key in
            switch key {
            case .disc(_, let g, _), .contents(_, let g, _): return g != current
            default: return false
            }
        }
        // A handle opened on an older disc may still be served the pages the kernel kept for
        // it. With `auto_inval_data` each buffered read first checks that the inode's
        // attributes are valid; invalidating them (attributes only: no page or inode lock is
        // waited for) makes the next read of that inode ask GETATTR, which answers ESTALE for
        // a number just forgotten, and the read fails with it: no old byte after a change.
        if let session {
            for (ino, key) in dropped { if case .disc = key { session.invalidateAttributes(ino) } }
        }
    }

    /// The drive's disc as it is now: generation and size from one look at the emulator (the
    /// drive record is updated after it, so a size taken from there can be the old media's).
    func discKey(_ id: Int64, _ rt: DriveRuntime) -> NodeKey {
        let (medium, generation) = rt.emulator.mediumAndGeneration
        return .disc(id, generation: generation, size: (medium?.blockCount ?? 0) * UInt64(Medium.blockSize))
    }

    func credentials(_ ctx: RequestContext) -> Credentials { Credentials(uid: ctx.uid, gid: ctx.gid, groups: ctx.groups) }

    // MARK: lookup

    func child(of parent: NodeKey, named name: String) -> NodeKey? {
        switch parent {
        case .root:
            switch name {
            case "guests": return .guests
            case "library": return .library
            case "events": return .events
            default: return nil
            }
        case .guests:
            return host.guest(named: name).map { .guest($0.id) }
        case .guest(let gid):
            if name == "initiators" { return .initiators(gid) }
            if name == "chap" { return .chap(gid) }
            guard let d = host.drive(named: name), d.guestID == gid else { return nil }
            return .drive(d.id)
        case .drive(let id):
            guard let d = host.drive(id: id), let rt = host.runtime(driveID: id) else { return nil }
            let disc = discKey(id, rt)
            switch name {
            case "media": return d.loaded == nil ? nil : .media(id)
            case "disc": return disc
            case "status": return .status(id)
            case "contents": return .contentsRoot(id)
            default:
                let key = NodeKey.temporary(id, name)
                return temporaries.withLock { $0[key] } == nil ? nil : key
            }
        case .library:
            return host.libraryItem(named: name).map { .libraryItem($0.name) }
        case .libraryItem(let item):
            return LibraryField(rawValue: name).map { .libraryFile(item, $0) }
        case .contentsRoot(let d):
            guard let gen = currentGeneration(d) else { return nil }
            return contents.child(drive: d, generation: gen, node: ContentsCache.rootNode, name: name)
                .map { .contents(d, generation: gen, node: $0) }
        case .contents(let d, let gen, let node):
            return contents.child(drive: d, generation: gen, node: node, name: name).map { .contents(d, generation: gen, node: $0) }
        default:
            return nil
        }
    }

    func currentGeneration(_ driveID: Int64) -> UInt64? { host.runtime(driveID: driveID)?.emulator.mediumAndGeneration.1 }

    /// A node's attributes with how long the kernel may keep its name and its attributes.
    /// `parent` is given when the name is being looked up in it.
    func entry(_ key: NodeKey, in parent: NodeKey? = nil) throws(FSError) -> Entry {
        let attrs = try attributes(key)
        let timeout: (Double, Double)
        switch key {
        case .media, .status, .temporary, .initiators, .chap: timeout = (volatileTimeout, volatileTimeout)
        // Its size is the reader's stream so far (`getattr` with a handle): never kept.
        case .events: timeout = (structureTimeout, volatileTimeout)
        // `disc` takes its mode from the drive: a chmod of the drive invalidates it.
        case .disc: timeout = (volatileTimeout, structureTimeout)
        // The names directly in `contents/` lead into one media generation's tree.
        case .contents where parent.map({ if case .contentsRoot = $0 { true } else { false } }) == true:
            timeout = (volatileTimeout, generationTimeout)
        case .contents: timeout = (generationTimeout, generationTimeout)
        // The repository's listing and its files follow the media folders.
        case .library: timeout = (structureTimeout, volatileTimeout)
        case .libraryFile(_, .users), .libraryFile(_, .sharable): timeout = (repositoryTimeout, volatileTimeout)
        case .libraryItem, .libraryFile: timeout = (repositoryTimeout, repositoryTimeout)
        default: timeout = (structureTimeout, structureTimeout)
        }
        return Entry(attributes: attrs, entryTimeout: timeout.0, attributeTimeout: timeout.1)
    }

    public func lookup(_ ctx: RequestContext, parent: UInt64, name: String, reply: consuming EntryReply) {
        guard let pk = inodes.key(parent) else { return reply.fail(ESTALE) }
        guard let key = child(of: pk, named: name) else { return reply.fail(ENOENT) }
        do throws(FSError) { reply.entry(try entry(key, in: pk)) } catch { reply.fail(error.errno) }
    }

    public func getattr(_ ctx: RequestContext, ino: UInt64, handle: UInt64?, reply: consuming AttributeReply) {
        guard let key = inodes.key(ino) else { return reply.fail(ESTALE) }
        do throws(FSError) {
            var e = try entry(key)
            if case .events = key, let h = handle.flatMap(OpenHandle.from) as? EventsHandle {
                e.attributes.size = h.streamLength
            }
            reply.attributes(e.attributes, timeout: e.attributeTimeout)
        } catch { reply.fail(error.errno) }
    }

    // MARK: directories

    public func listDirectory(_ ctx: RequestContext, ino: UInt64) throws(FSError) -> [DirectoryItem] {
        guard let key = inodes.key(ino) else { throw FSError(ESTALE) }
        var items = [DirectoryItem(name: ".", ino: ino, type: S_IFDIR), DirectoryItem(name: "..", ino: 1, type: S_IFDIR)]
        func add(_ name: String, _ k: NodeKey, _ type: UInt32) { items.append(DirectoryItem(name: name, ino: inodes.ino(k), type: type)) }
        switch key {
        case .root:
            add("guests", .guests, S_IFDIR); add("library", .library, S_IFDIR); add("events", .events, S_IFREG)
        case .guests:
            for g in host.guests() { add(g.name, .guest(g.id), S_IFDIR) }
        case .guest(let gid):
            guard host.guest(id: gid) != nil else { throw FSError(ENOENT) }
            add("initiators", .initiators(gid), S_IFREG)
            add("chap", .chap(gid), S_IFREG)
            for d in host.drives(ofGuest: gid) { add(d.name, .drive(d.id), S_IFDIR) }
        case .drive(let id):
            guard let d = host.drive(id: id), let rt = host.runtime(driveID: id) else { throw FSError(ENOENT) }
            let disc = discKey(id, rt)
            if d.loaded != nil { add("media", .media(id), S_IFREG) }
            add("disc", disc, S_IFREG)
            add("status", .status(id), S_IFREG)
            add("contents", .contentsRoot(id), S_IFDIR)
            for k in temporaries.withLock({ Array($0.keys) }) {
                if case .temporary(id, let name) = k { add(name, k, S_IFREG) }
            }
        case .library:
            for item in host.library() { add(item.name, .libraryItem(item.name), S_IFDIR) }
        case .libraryItem(let name):
            guard host.libraryItem(named: name) != nil else { throw FSError(ENOENT) }
            for f in LibraryField.allCases { add(f.rawValue, .libraryFile(name, f), S_IFREG) }
        case .contentsRoot(let d):
            guard let gen = currentGeneration(d) else { throw FSError(ENOENT) }
            for c in try contents.children(drive: d, generation: gen, node: ContentsCache.rootNode) {
                add(c.name, .contents(d, generation: gen, node: c.node), c.type)
            }
        case .contents(let d, let gen, let node):
            for c in try contents.children(drive: d, generation: gen, node: node) {
                add(c.name, .contents(d, generation: gen, node: c.node), c.type)
            }
        default:
            throw FSError(ENOTDIR)
        }
        return items
    }

    /// Listings the kernel may keep: a disc's directories (one media generation never
    /// changes; a new one has new inodes), and `guests/`, guests and drives, which change
    /// only through this mount, except a drive's `media` appearing or going by a guest's
    /// or a deferred eject, which moves the drive directory's mtime (`DriveRecord.changed`).
    /// `library/` follows its media folders behind the kernel's back and is never kept.
    public func directoryListingMayBeKept(ino: UInt64) -> Bool {
        switch inodes.key(ino) {
        case .contents?, .contentsRoot?, .guests?, .guest?, .drive?: return true
        default: return false
        }
    }

    public func mkdir(_ ctx: RequestContext, parent: UInt64, name: String, mode: UInt32, reply: consuming EntryReply) {
        guard let pk = inodes.key(parent) else { return reply.fail(ESTALE) }
        let owner = Ownership(uid: ctx.uid, gid: ctx.gid, mode: mode & ~ctx.umask)
        do throws(VMError) {
            let key: NodeKey
            switch pk {
            case .guests: key = .guest(try host.createGuest(name, owner: owner).id)
            case .guest(let gid):
                guard let g = host.guest(id: gid) else { throw VMError(ENOENT, "guest is gone") }
                key = .drive(try host.createDrive(guest: g.name, name: name, owner: owner).id)
            default: throw VMError(EPERM, "directories can be made only in guests/ and in a guest")
            }
            do throws(FSError) { reply.entry(try entry(key)) } catch { reply.fail(error.errno) }
        } catch {
            reply.fail(error.errno)
        }
    }

    public func rmdir(_ ctx: RequestContext, parent: UInt64, name: String, reply: consuming StatusReply) {
        guard let pk = inodes.key(parent) else { return reply.fail(ESTALE) }
        do throws(VMError) {
            switch pk {
            case .guests:
                guard let g = host.guest(named: name) else { throw VMError(ENOENT, "no guest \(name)") }
                try host.removeGuest(name, by: credentials(ctx))
                inodes.purge { $0 == .guest(g.id) || $0 == .initiators(g.id) || $0 == .chap(g.id) }
            case .guest(let gid):
                guard let g = host.guest(id: gid), let d = host.drive(named: name), d.guestID == gid else {
                    throw VMError(ENOENT, "no drive \(name)")
                }
                try host.removeDrive(guest: g.name, name: name, by: credentials(ctx))
                temporaries.withLock { t in t = t.filter { $0.key.driveID != d.id } }
                inodes.purge(drive: d.id) { _ in true }
                inodes.forgetDiscTrees(drive: d.id, keeping: nil)
                contents.forget(drive: d.id)
            case .drive, .root, .library, .libraryItem, .contents, .contentsRoot:
                throw VMError(EPERM, "this directory is part of the tree")
            default:
                throw VMError(ENOTDIR, "not a directory")
            }
            reply.ok()
        } catch {
            reply.fail(error.errno)
        }
    }

    public func statfs(_ ctx: RequestContext, ino: UInt64, reply: consuming StatfsReply) {
        var s = VolumeStatistics()
        s.files = UInt64(inodes.count + contents.nodeCount)
        reply.statistics(s)
    }
}
