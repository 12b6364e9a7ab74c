import FuseKernel
import Glibc
import ISO9660
import SCSI
import VirtualMedia

/// A drive's `contents/`: one inode for the drive's life, listing whatever disc is loaded
/// now (nothing when empty or not a disc format the reader knows). Its mtime is the time
/// the current media came (or went), and every media change invalidates its attributes,
/// so the kernel drops the listing it kept.
struct ContentsRootNode: FixedDirectory {
    let fs: VMediaFileSystem
    let driveID: Int64
    var key: NodeKey { .contentsRoot(driveID) }
    var isOnDisc: Bool { true }
    var listingMayBeKept: Bool { true }

    /// Modes and owners from the disc's root where it has one; the times are when the
    /// current media came or went, so that each media change moves the mtime.
    func attributes() throws(FSError) -> FileAttributes {
        guard let d = fs.host.drive(id: driveID), let gen = fs.currentGeneration(driveID) else { throw FSError(ENOENT) }
        let when = Timestamp(nanos: d.loaded?.loadedAt ?? d.changed)
        if fs.contents.isEmpty(drive: driveID, generation: gen) {
            return fs.attributes(key, mode: S_IFDIR | (0o555 & d.owner.mode), links: 2, uid: d.owner.uid, gid: d.owner.gid,
                                 time: when)
        }
        var a = try fs.contents.attributes(drive: driveID, generation: gen, node: ContentsCache.rootNode, ino: fs.inodes.ino(key))
        a.modificationTime = when
        a.changeTime = when
        return a
    }

    func child(named name: String) -> NodeKey? {
        guard let gen = fs.currentGeneration(driveID) else { return nil }
        return ContentsNode(fs: fs, driveID: driveID, generation: gen, node: ContentsCache.rootNode).child(named: name)
    }

    func list() throws(FSError) -> [DirectoryItem] {
        guard let gen = fs.currentGeneration(driveID) else { throw FSError(ENOENT) }
        return try ContentsNode(fs: fs, driveID: driveID, generation: gen, node: ContentsCache.rootNode).list()
    }
}

/// A file, directory or symlink of a loaded disc's own tree, of one media generation.
struct ContentsNode: TreeNode {
    let fs: VMediaFileSystem
    let driveID: Int64
    let generation: UInt64
    let node: UInt64
    var key: NodeKey { .contents(driveID, generation: generation, node: node) }
    var isOnDisc: Bool { true }
    var listingMayBeKept: Bool { true }

    func attributes() throws(FSError) -> FileAttributes {
        try fs.contents.attributes(drive: driveID, generation: generation, node: node, ino: fs.inodes.ino(key))
    }

    /// One media generation never changes while it exists; but the names directly in
    /// `contents/` lead into whichever generation is loaded, so they are looked up afresh.
    func timeouts(in parent: NodeKey?) -> (entry: Double, attributes: Double) {
        if case .contentsRoot? = parent { return (VMediaFileSystem.volatileTimeout, VMediaFileSystem.generationTimeout) }
        return (VMediaFileSystem.generationTimeout, VMediaFileSystem.generationTimeout)
    }

    func child(named name: String) -> NodeKey? {
        fs.contents.child(drive: driveID, generation: generation, node: node, name: name)
            .map { .contents(driveID, generation: generation, node: $0) }
    }

    func list() throws(FSError) -> [DirectoryItem] {
        try fs.contents.children(drive: driveID, generation: generation, node: node).map {
            fs.item($0.name, .contents(driveID, generation: generation, node: $0.node), $0.type)
        }
    }

    func open(flags: Int32, _ ctx: RequestContext) throws(FSError) -> OpenResult {
        guard (flags & O_ACCMODE) == O_RDONLY else { throw FSError(EROFS) }
        let h = try fs.contents.open(drive: driveID, generation: generation, node: node)
        return OpenResult(handle: h.retainForKernel(), keepCache: true, noFlush: true)
    }

    func rmdir(_ name: String, _ ctx: RequestContext) throws(VMError) { throw VMError(EPERM, "this directory is part of the tree") }

    func readlink() throws(FSError) -> String { try fs.contents.linkTarget(drive: driveID, generation: generation, node: node) }
}

/// An open file of `contents/`: where its bytes are on the disc.
final class ContentsHandle: OpenHandle, @unchecked Sendable {
    let volume: Volume
    let reader: EmulatorSectorReader
    let node: NodeID
    let size: UInt64
    /// The file's extents with the file offset each starts at.
    let extents: [(start: UInt64, extent: Extent)]

    init(volume: Volume, reader: EmulatorSectorReader, node: NodeID, size: UInt64, extents: [Extent]) {
        self.volume = volume; self.reader = reader; self.node = node; self.size = size
        var at: UInt64 = 0
        var list: [(UInt64, Extent)] = []
        for e in extents { list.append((at, e)); at += e.length }
        self.extents = list
    }

    /// A read inside one recorded extent is answered from that READ like `disc` (spliced
    /// where it can be); anything else (extent boundaries, sparse or embedded data) is
    /// assembled by the disc's reader.
    override func read(offset: UInt64, size: Int, flags: Int32, reply: consuming DataReply) {
        guard offset < self.size, size > 0 else { return reply.data([]) }
        let length = Int(min(UInt64(size), self.size - offset))
        if let (start, ext) = extents.last(where: { $0.start <= offset }),
           case .disc(let at, let extLength) = ext, offset + UInt64(length) <= start + extLength {
            let discOffset = at + (offset - start)
            let lba = discOffset / 2048
            let count = (discOffset + UInt64(length) + 2047) / 2048 - lba
            let range: BlockRange
            do throws(FSError) { range = try reader.range(lba, count: Int(count)) } catch { return reply.fail(error.errno) }
            return replyBlocks(range, skip: Int(discOffset - lba * 2048), length: length, reply: reply)
        }
        do {
            reply.data(try volume.read(node, at: offset, count: length))
        } catch {
            reply.fail(ContentsCache.fsError(error).errno)
        }
    }
}
