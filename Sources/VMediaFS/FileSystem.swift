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
    /// Whether `disc` opens offer the image to the kernel for passthrough.
    let passthrough: Bool

    /// How long the kernel may keep names and attributes that change only through this
    /// mount (guest and drive directories, `contents/` itself), or that the daemon
    /// invalidates when they change behind the kernel's back (see `driveChanged`).
    static let structureTimeout = 3600.0
    /// The repository follows its media folders, which change behind everyone's back.
    static let repositoryTimeout = 1.0
    /// Names whose target changes with the media (`disc`, `media`, the names directly in
    /// `contents/`): looked up afresh on every path walk, so that a new open always sees
    /// the current media.
    static let volatileTimeout = 0.0
    /// Nodes tied to one media generation never change while they exist.
    static let generationTimeout = 3600.0

    public init(host: Host, discIO: DiscIO = .cached, passthrough: Bool = false) {
        self.host = host
        self.discIO = discIO
        self.passthrough = passthrough
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

    func currentGeneration(_ driveID: Int64) -> UInt64? { host.runtime(driveID: driveID)?.emulator.mediumAndGeneration.1 }

    /// Forgets a removed drive: its temporary files, inode numbers and opened disc tree.
    func forgetDrive(_ id: Int64) {
        temporaries.withLock { t in t = t.filter { $0.key.driveID != id } }
        inodes.purge(drive: id) { _ in true }
        inodes.forgetDiscTrees(drive: id, keeping: nil)
        contents.forget(drive: id)
    }

    /// A node's attributes with how long the kernel may keep its name and its attributes.
    /// `parent` is given when the name is being looked up in it.
    func entry(_ node: any TreeNode, in parent: NodeKey? = nil) throws(FSError) -> Entry {
        let attrs = try node.attributes()
        let timeout = node.timeouts(in: parent)
        return Entry(attributes: attrs, entryTimeout: timeout.entry, attributeTimeout: timeout.attributes)
    }

    /// The node an inode number names; ESTALE for a number that was forgotten.
    private func node(ino: UInt64) throws(FSError) -> any TreeNode {
        guard let key = inodes.key(ino) else { throw FSError(ESTALE) }
        return node(key)
    }

    /// Runs what a node does in the domain; a refusal ends as its errno (the host has
    /// already recorded its reason in status, the log and events).
    private func acting<T>(_ body: () throws(VMError) -> T) throws(FSError) -> T {
        do throws(VMError) { return try body() } catch { throw FSError(error.errno) }
    }

    // MARK: names and attributes

    public func lookup(_ ctx: RequestContext, parent: UInt64, name: String, reply: consuming EntryReply) {
        do throws(FSError) {
            let p = try node(ino: parent)
            guard let key = p.child(named: name) else { throw FSError(ENOENT) }
            reply.entry(try entry(node(key), in: p.key))
        } catch { reply.fail(error.errno) }
    }

    public func getattr(_ ctx: RequestContext, ino: UInt64, handle: UInt64?, reply: consuming AttributeReply) {
        do throws(FSError) {
            let e = try entry(node(ino: ino))
            reply.attributes(e.attributes, timeout: e.attributeTimeout)
        } catch { reply.fail(error.errno) }
    }

    public func setattr(_ ctx: RequestContext, ino: UInt64, changes: AttributeChanges, reply: consuming AttributeReply) {
        do throws(FSError) {
            let n = try node(ino: ino)
            try acting { () throws(VMError) in try n.setAttributes(changes, handle: changes.handle.flatMap(OpenHandle.from), ctx) }
            let e = try entry(n)
            reply.attributes(e.attributes, timeout: e.attributeTimeout)
        } catch { reply.fail(error.errno) }
    }

    /// access(2) on a mount without `default_permissions`: the usual owner, group and
    /// other bits for the caller (root passes every read and write check, and an execute
    /// check where any execute bit is set); writing anything of a disc (`disc`, `contents/`)
    /// is EROFS, whoever asks.
    public func access(_ ctx: RequestContext, ino: UInt64, mask: Int32, reply: consuming StatusReply) {
        do throws(FSError) {
            let n = try node(ino: ino)
            let a = try n.attributes()
            if mask & W_OK != 0 && n.isOnDisc { throw FSError(EROFS) }
            guard mask == F_OK || permits(a, mask: mask, ctx) else { throw FSError(EACCES) }
            reply.ok()
        } catch { reply.fail(error.errno) }
    }

    private func permits(_ a: FileAttributes, mask: Int32, _ ctx: RequestContext) -> Bool {
        if ctx.uid == 0 { return mask & X_OK == 0 || a.mode & 0o111 != 0 || a.mode & S_IFMT == S_IFDIR }
        let bits: UInt32
        if ctx.uid == a.uid { bits = (a.mode >> 6) & 7 }
        else if ctx.gid == a.gid || ctx.groups.contains(a.gid) { bits = (a.mode >> 3) & 7 }
        else { bits = a.mode & 7 }
        return UInt32(mask) & 7 & ~bits == 0
    }

    public func readlink(_ ctx: RequestContext, ino: UInt64, reply: consuming LinkReply) {
        do throws(FSError) { reply.target(try node(ino: ino).readlink()) } catch { reply.fail(error.errno) }
    }

    // MARK: directories

    public func listDirectory(_ ctx: RequestContext, ino: UInt64) throws(FSError) -> [DirectoryItem] {
        let items = try node(ino: ino).list()
        return [DirectoryItem(name: ".", ino: ino, type: S_IFDIR), DirectoryItem(name: "..", ino: 1, type: S_IFDIR)] + items
    }

    /// Listings the kernel may keep: a disc's directories (one media generation never
    /// changes; a new one has new inodes), and `guests/`, guests and drives, which change
    /// only through this mount or move their mtime when they change behind it.
    /// `library/` follows its media folders behind the kernel's back and is never kept.
    public func directoryListingMayBeKept(ino: UInt64) -> Bool {
        inodes.key(ino).map { node($0).listingMayBeKept } ?? false
    }

    public func mkdir(_ ctx: RequestContext, parent: UInt64, name: String, mode: UInt32, reply: consuming EntryReply) {
        do throws(FSError) {
            let key: NodeKey
            let p = try node(ino: parent)
            key = try acting { () throws(VMError) in try p.mkdir(name, mode: mode, ctx) }
            reply.entry(try entry(node(key)))
        } catch { reply.fail(error.errno) }
    }

    public func rmdir(_ ctx: RequestContext, parent: UInt64, name: String, reply: consuming StatusReply) {
        do throws(FSError) {
            let p = try node(ino: parent)
            try acting { () throws(VMError) in try p.rmdir(name, ctx) }
            reply.ok()
        } catch { reply.fail(error.errno) }
    }

    // MARK: files

    /// The kernel sends CREATE for an O_CREAT open of a name it has not cached, even if the
    /// name exists: that is answered as an open of the existing node (`media` excepted: a
    /// create of it is always a new writer).
    public func create(_ ctx: RequestContext, parent: UInt64, name: String, mode: UInt32, flags: Int32, reply: consuming CreateReply) {
        do throws(FSError) {
            let p = try node(ino: parent)
            if name != "media", let existing = p.child(named: name) {
                if flags & O_EXCL != 0 { throw FSError(EEXIST) }
                let n = node(existing)
                let e = try entry(n, in: p.key)
                return reply.created(e, try n.open(flags: flags, ctx))
            }
            let (e, opened) = try p.create(name, mode: mode, flags: flags, ctx)
            reply.created(e, opened)
        } catch { reply.fail(error.errno) }
    }

    public func unlink(_ ctx: RequestContext, parent: UInt64, name: String, reply: consuming StatusReply) {
        do throws(FSError) {
            let p = try node(ino: parent)
            try acting { () throws(VMError) in try p.unlink(name, ctx) }
            reply.ok()
        } catch { reply.fail(error.errno) }
    }

    /// Renames stay in one directory (only an editor's save is a rename here).
    public func rename(_ ctx: RequestContext, parent: UInt64, name: String, newParent: UInt64, newName: String,
                       flags: UInt32, reply: consuming StatusReply) {
        do throws(FSError) {
            let p = try node(ino: parent)
            guard parent == newParent else { throw FSError(EPERM) }
            try acting { () throws(VMError) in try p.rename(name, to: newName, ctx) }
            reply.ok()
        } catch { reply.fail(error.errno) }
    }

    public func open(_ ctx: RequestContext, ino: UInt64, flags: Int32, reply: consuming OpenReply) {
        do throws(FSError) { reply.opened(try node(ino: ino).open(flags: flags, ctx)) } catch { reply.fail(error.errno) }
    }

    public func read(_ ctx: RequestContext, ino: UInt64, handle: UInt64, offset: UInt64, size: Int, flags: Int32,
                     reply: consuming DataReply) {
        guard let h = OpenHandle.from(handle) else { return reply.fail(EBADF) }
        h.read(offset: offset, size: size, flags: flags, reply: reply)
    }

    public func write(_ ctx: RequestContext, ino: UInt64, handle: UInt64, offset: UInt64, data: UnsafeRawBufferPointer,
                      reply: consuming WriteReply) {
        guard let h = OpenHandle.from(handle) else { return reply.fail(EBADF) }
        h.write(offset: offset, data: data, ctx, reply: reply)
    }

    public func flush(_ ctx: RequestContext, ino: UInt64, handle: UInt64, reply: consuming StatusReply) {
        do throws(VMError) { try OpenHandle.from(handle)?.flush(ctx) } catch { return reply.fail(error.errno) }
        reply.ok()
    }

    public func release(_ ctx: RequestContext, ino: UInt64, handle: UInt64, flags: Int32, reply: consuming StatusReply) {
        OpenHandle.release(handle)?.release()
        reply.ok()
    }

    public func poll(_ ctx: RequestContext, ino: UInt64, handle: UInt64, wake: PollHandle?, reply: consuming PollReply) {
        reply.events(OpenHandle.from(handle)?.poll(wake) ?? UInt32(POLLIN | POLLRDNORM))
    }

    public func interrupted(requestID: UInt64) {
        // Only event reads wait; the id is the handle's number.
        OpenHandle.from(requestID)?.interrupt()
    }

    public func statfs(_ ctx: RequestContext, ino: UInt64, reply: consuming StatfsReply) {
        var s = VolumeStatistics()
        s.files = UInt64(inodes.count + contents.nodeCount)
        reply.statistics(s)
    }
}
