import FuseKernel
import Glibc
import ISO9660
import SCSI
import Synchronization
import VirtualMedia

// The disc read path: `disc` itself, the sector reader that `contents/` shares, the block
// replies of both, and the one decision the tree makes about a read (sense to errno).

/// The SCSI sense an emulator answered with, as the errno a reader of `disc` gets.
/// This is the only decision the filesystem makes about a read; the emulator makes the rest.
func errno(for sense: SenseCode?) -> Int32 {
    guard let s = sense else { return EIO }
    switch s {
    case .mediumNotPresent, .mediumNotPresentTrayClosed, .mediumNotPresentTrayOpen: return ENOMEDIUM
    case .lbaOutOfRange: return EINVAL
    default:
        switch s.key {
        case SenseKey.unitAttention: return ESTALE      // the media changed
        case SenseKey.dataProtect: return EROFS
        default: return EIO
        }
    }
}

/// A drive's `disc` as one media generation (a new generation is a new inode, see
/// `NodeKey.disc`): the drive's data as a read-only block device image.
struct DiscNode: TreeNode {
    let fs: VMediaFileSystem
    let driveID: Int64
    let generation: UInt64
    /// The medium's size in whole blocks, in bytes.
    let size: UInt64
    var key: NodeKey { .disc(driveID, generation: generation, size: size) }

    func attributes() throws(FSError) -> FileAttributes {
        guard let d = fs.host.drive(id: driveID) else { throw FSError(ENOENT) }
        return fs.attributes(key, mode: S_IFREG | (0o444 & d.owner.mode), uid: d.owner.uid, gid: d.owner.gid, size: size,
                             time: d.loaded.map { Timestamp(nanos: $0.loadedAt) } ?? Timestamp(nanos: d.created))
    }

    /// The name follows the media; the mode follows the drive, whose chmod invalidates it.
    func timeouts(in parent: NodeKey?) -> (entry: Double, attributes: Double) {
        (VMediaFileSystem.volatileTimeout, VMediaFileSystem.structureTimeout)
    }

    var isOnDisc: Bool { true }

    func open(flags: Int32, _ ctx: RequestContext) throws(FSError) -> OpenResult {
        guard (flags & O_ACCMODE) == O_RDONLY else { throw FSError(EROFS) }
        let (h, image) = try openHandle()
        var result: OpenResult
        switch fs.discIO {
        case .direct: result = OpenResult(handle: h.retainForKernel(), directIO: true, noFlush: true)
        case .cached: result = OpenResult(handle: h.retainForKernel(), keepCache: true, noFlush: true)
        }
        // Passthrough: the kernel reads the image file itself. The checks above were the
        // emulator's (medium, generation, the image unchanged); from here on the handle
        // reads that image's bytes, also after a media change (docs/performance.md). Only
        // for image files of whole blocks: the kernel would end a short last block early,
        // where `disc` completes it with zeros.
        if fs.passthrough, let image, image.kind == .file, image.byteCount % 2048 == 0, let fd = image.fileDescriptor {
            let copy = fcntl(fd, F_DUPFD_CLOEXEC, 3)
            if copy >= 0 { result.passthroughDescriptor = copy }
        }
        return result
    }

    /// Opens the disc as it is now: its own initiator on the emulator, bound to the media
    /// generation the path named. A name looked up before a media change opens nothing.
    private func openHandle() throws(FSError) -> (DiscHandle, ImageSource?) {
        guard let rt = fs.host.runtime(driveID: driveID) else { throw FSError(ENOENT) }
        let initiator = rt.emulator.attach()
        // The medium and its generation from one look at the emulator: the drive record is
        // updated after the emulator (once the change is durable), so sizes taken from it
        // can belong to the previous media.
        let (medium, current) = rt.emulator.mediumAndGeneration
        guard current == generation else {
            rt.emulator.detach(initiator)
            throw FSError(ESTALE)
        }
        guard let medium else {
            rt.emulator.detach(initiator)
            throw FSError(ENOMEDIUM)
        }
        if let src = medium.source as? ImageSource {
            // The path too, now: an open must see a replaced image at once. A change found
            // here is recorded by the source (status, events, log) like one found by a READ.
            do throws(MediumError) {
                try src.validate(forcingPathCheck: true)
            } catch {
                rt.emulator.detach(initiator)
                if let ino = fs.inodes.existing(key) { fs.session?.invalidateInode(ino) }
                throw FSError(EIO)
            }
        }
        rt.openers.add(1, ordering: .relaxed)
        let reader = EmulatorSectorReader(runtime: rt, initiator: initiator, generation: generation, sectorCount: medium.blockCount)
        return (DiscHandle(fs: fs, reader: reader, key: key, capacity: size), medium.source as? ImageSource)
    }
}

/// An open `disc`: its own I_T nexus to the drive's emulator, bound to the media
/// generation it was opened on (the reader; detached when the handle goes). Once the
/// emulator reports a change (unit attention or no medium) the handle is stale for good: it
/// never reads another media's bytes.
final class DiscHandle: OpenHandle, @unchecked Sendable {
    let fs: VMediaFileSystem
    let reader: EmulatorSectorReader
    /// The inode it was opened through: `.disc(drive, generation, size)`.
    let key: NodeKey
    /// The disc's size in bytes: whole blocks of the medium it was opened on.
    let capacity: UInt64
    let stale = Atomic<Bool>(false)

    init(fs: VMediaFileSystem, reader: EmulatorSectorReader, key: NodeKey, capacity: UInt64) {
        self.fs = fs; self.reader = reader; self.key = key; self.capacity = capacity
    }

    /// A READ(12) of the covering blocks, as the handle's own initiator.
    override func read(offset: UInt64, size: Int, flags: Int32, reply: consuming DataReply) {
        if stale.load(ordering: .relaxed) { return reply.fail(ESTALE) }
        guard offset < capacity, size > 0 else { return reply.data([]) }
        let length = Int(min(UInt64(size), capacity - offset))
        let lba = offset / 2048
        let count = (offset + UInt64(length) + 2047) / 2048 - lba
        let range: BlockRange
        do throws(FSError) {
            range = try reader.range(lba, count: Int(count))
        } catch {
            if error.errno == ESTALE { stale.store(true, ordering: .relaxed) }
            if error.errno == EIO, let ino = fs.inodes.existing(key) { fs.session?.invalidateInode(ino) }
            return reply.fail(error.errno)
        }
        replyBlocks(range, skip: Int(offset - lba * 2048), length: length, reply: reply)
    }

    override func release() {
        // Its initiator is detached with its reader, once no READ in flight holds it.
        reader.runtime.openers.add(-1, ordering: .relaxed)
    }
}

/// Reads a loaded disc's sectors through its drive's emulator, as one initiator bound to
/// one media generation: once the media changes, every read fails (`ESTALE`). `disc`
/// handles and the disc trees of `contents/` each have one.
final class EmulatorSectorReader: SectorReader, @unchecked Sendable {
    let runtime: DriveRuntime
    let initiator: InitiatorID
    let generation: UInt64
    let sectorCount: UInt64
    /// The errno for blocks past the end of the medium: `EINVAL` for a reader of `disc` (a
    /// bad offset), `EIO` for the disc's own trees (`contents/`: the disc is damaged).
    let pastTheEnd: Int32

    init(runtime: DriveRuntime, initiator: InitiatorID, generation: UInt64, sectorCount: UInt64, pastTheEnd: Int32 = EINVAL) {
        self.runtime = runtime; self.initiator = initiator; self.generation = generation; self.sectorCount = sectorCount
        self.pastTheEnd = pastTheEnd
    }

    deinit { runtime.emulator.detach(initiator) }

    /// The READ's answer for `count` sectors at `sector`, checked to be of this generation.
    func range(_ sector: UInt64, count: Int) throws(FSError) -> BlockRange {
        let result = runtime.emulator.read(lba: sector, blocks: UInt32(count), from: initiator)
        guard result.status == .good, case .blocks(let range) = result.data else {
            // A failure once the media changed is the change.
            let e = result.sense == .lbaOutOfRange ? pastTheEnd : errno(for: result.sense)
            let changed = e == ENOMEDIUM || runtime.emulator.state.generation != generation
            throw FSError(changed ? ESTALE : e)
        }
        guard range.generation == generation else { throw FSError(ESTALE) }
        return range
    }

    func readSectors(_ sector: UInt64, count: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        let r = try range(sector, count: count)
        do { try r.copy(into: buffer) } catch { throw FSError(EIO) }
    }
}

/// Answers a read with `length` bytes from `skip` into a READ's blocks: by splice from a
/// lease of them (the image's descriptor; a URL image's cache file) when they lie inside the
/// image, else by copying (a short last block is completed with zeros). Used by `disc` and
/// `contents/` alike.
func replyBlocks(_ range: BlockRange, skip: Int, length: Int, reply: consuming DataReply) {
    // The source owns the descriptor the reply splices from: keep it alive until the
    // reply is sent, or a concurrent eject could close it and an insert reuse its number.
    defer { withExtendedLifetime(range.source) {} }
    if skip + length <= range.length {
        let lease: ByteLease?
        do throws(MediumError) {
            lease = try range.source.lease(offset: range.offset + UInt64(skip), length: length)
        } catch {
            return reply.fail(EIO)
        }
        if let lease {
            // The reply reads the descriptor before it returns; only then may the bytes go.
            defer { lease.end() }
            return reply.data(.file(descriptor: lease.descriptor, offset: lease.offset, length: length))
        }
    }
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: range.count, alignment: 4096)
    defer { buffer.deallocate() }
    do throws(MediumError) {
        try range.copy(into: buffer)
    } catch {
        return reply.fail(EIO)
    }
    reply.data(.bytes(UnsafeRawBufferPointer(rebasing: buffer[skip..<(skip + length)])))
}
