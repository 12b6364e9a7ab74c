import FuseKernel
import Glibc
import ISO9660
import SCSI
import Synchronization
import VirtualMedia

/// Reads a loaded disc's sectors through its drive's emulator, as one initiator bound to
/// one media generation: once the media changes, every read fails (`ESTALE`).
final class EmulatorSectorReader: SectorReader, @unchecked Sendable {
    let runtime: DriveRuntime
    let initiator: InitiatorID
    let generation: UInt64
    let sectorCount: UInt64

    init(runtime: DriveRuntime, initiator: InitiatorID, generation: UInt64, sectorCount: UInt64) {
        self.runtime = runtime; self.initiator = initiator; self.generation = generation; self.sectorCount = sectorCount
    }

    deinit { runtime.emulator.detach(initiator) }

    /// The READ's answer for `count` sectors at `sector`, checked to be of this generation.
    func range(_ sector: UInt64, count: Int) throws(FSError) -> BlockRange {
        let result = runtime.emulator.read(lba: sector, blocks: UInt32(count), from: initiator)
        guard result.status == .good, case .blocks(let range) = result.data else {
            // As for `disc`: a failure once the media changed is the change.
            let e = errno(for: result.sense)
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
}

/// A child of a `contents/` directory.
struct ContentsChild {
    var name: String
    var node: UInt64
    var type: UInt32
}

/// The loaded discs' own file trees (ISO 9660, Rock Ridge, Joliet, UDF), one per drive and
/// media generation, opened on first use and read through the drive's emulator. A disc the
/// reader does not recognise shows an empty `contents/` (and the reason in the log).
final class ContentsCache: Sendable {
    static let rootNode: UInt64 = Volume.rootID
    let host: Host
    private struct Opened {
        var generation: UInt64
        var volume: Volume?
        var reader: EmulatorSectorReader?
    }
    private let opened = Mutex<[Int64: Opened]>([:])

    init(host: Host) { self.host = host }

    /// The disc's tree for `drive` at `generation`; nil when the drive is empty or the
    /// disc's format is not recognised. Throws ESTALE for a generation that is gone.
    func volume(drive: Int64, generation: UInt64) throws(FSError) -> (Volume, EmulatorSectorReader)? {
        if let o = opened.withLock({ $0[drive] }), o.generation == generation {
            guard let v = o.volume, let r = o.reader else { return nil }
            return (v, r)
        }
        guard let rt = host.runtime(driveID: drive) else { throw FSError(ENOENT) }
        let initiator = rt.emulator.attach()
        let (medium, current) = rt.emulator.mediumAndGeneration
        guard current == generation else {
            rt.emulator.detach(initiator)
            throw FSError(ESTALE)
        }
        var entry = Opened(generation: generation)
        if let medium {
            let reader = EmulatorSectorReader(runtime: rt, initiator: initiator, generation: generation,
                                              sectorCount: medium.blockCount)
            do {
                entry.volume = try Volume.open(reader)
                entry.reader = reader
            } catch let e as FSError {
                throw e
            } catch {
                Log.warning("drive \(host.drive(id: drive)?.name ?? "?"): contents/ is empty: \(error)")
            }
        } else {
            rt.emulator.detach(initiator)
        }
        // Two first lookups can race to open the same disc: the first one kept wins, so that
        // node numbers already given to the kernel keep meaning the same files.
        entry = opened.withLock { o in
            if let kept = o[drive], kept.generation == generation { return kept }
            o[drive] = entry
            return entry
        }
        guard let v = entry.volume, let r = entry.reader else { return nil }
        return (v, r)
    }

    /// Drops what was opened for a drive (its media changed or it was removed).
    /// Drops a drive's opened disc tree, unless it is of `generation` (still current).
    func forget(drive: Int64, unlessGeneration generation: UInt64? = nil) {
        opened.withLock { o in
            if let g = generation, o[drive]?.generation == g { return }
            o[drive] = nil
        }
    }

    /// The nodes of every disc tree open now (statfs counts them as files).
    var nodeCount: Int {
        opened.withLock { $0.values.compactMap { $0.volume?.nodeCount }.reduce(0, +) }
    }

    private func map(_ error: any Error) -> FSError {
        if let e = error as? FSError { return e }
        if let d = error as? DiscFormatError {
            switch d.code {
            case .noSuchNode: return FSError(ENOENT)
            case .notDirectory: return FSError(ENOTDIR)
            case .unsupported: return FSError(EOPNOTSUPP)
            default: return FSError(EIO)
            }
        }
        return FSError(EIO)
    }

    func isEmpty(drive: Int64, generation: UInt64) -> Bool {
        ((try? volume(drive: drive, generation: generation)) ?? nil) == nil
    }

    func child(drive: Int64, generation: UInt64, node: UInt64, name: String) -> UInt64? {
        guard let (v, _) = (try? volume(drive: drive, generation: generation)) ?? nil else { return nil }
        return (try? v.lookup(name, in: node))??.id
    }

    func children(drive: Int64, generation: UInt64, node: UInt64) throws(FSError) -> [ContentsChild] {
        guard let (v, _) = try volume(drive: drive, generation: generation) else { return [] }
        do {
            return try v.children(of: node).map { ContentsChild(name: $0.name, node: $0.id, type: ContentsCache.type($0.kind)) }
        } catch { throw map(error) }
    }

    static func type(_ kind: NodeKind) -> UInt32 {
        switch kind {
        case .directory: S_IFDIR
        case .regularFile: S_IFREG
        case .symlink: S_IFLNK
        case .other: S_IFREG
        }
    }

    func attributes(drive: Int64, generation: UInt64, node: UInt64, ino: UInt64) throws(FSError) -> FileAttributes {
        guard let (v, _) = try volume(drive: drive, generation: generation) else { throw FSError(ENOENT) }
        let a: NodeAttributes
        do { a = try v.attributes(of: node) } catch { throw map(error) }
        func ts(_ t: Timespec) -> Timestamp { Timestamp(seconds: t.seconds, nanoseconds: Int64(t.nanoseconds)) }
        var mode = a.mode
        if mode & S_IFMT == 0 { mode |= ContentsCache.type(a.kind) }
        if a.kind == .other { mode = S_IFREG | (mode & 0o7777) }
        // A disc is read-only: no write bits, so that access(2) and file managers agree.
        mode &= ~0o222
        return FileAttributes(ino: ino, mode: mode, linkCount: max(1, a.linkCount), uid: a.uid, gid: a.gid,
                              size: a.kind == .symlink ? UInt64(a.symlinkTarget?.utf8.count ?? 0) : a.size,
                              accessTime: ts(a.accessTime), modificationTime: ts(a.modificationTime),
                              changeTime: ts(a.changeTime), blockSize: 2048)
    }

    func linkTarget(drive: Int64, generation: UInt64, node: UInt64) throws(FSError) -> String {
        guard let (v, _) = try volume(drive: drive, generation: generation) else { throw FSError(ENOENT) }
        do {
            guard let t = try v.attributes(of: node).symlinkTarget else { throw FSError(EINVAL) }
            return t
        } catch { throw map(error) }
    }

    func open(drive: Int64, generation: UInt64, node: UInt64) throws(FSError) -> ContentsHandle {
        guard let (v, r) = try volume(drive: drive, generation: generation) else { throw FSError(ENOENT) }
        do {
            let a = try v.attributes(of: node)
            guard a.kind != .directory else { throw FSError(EISDIR) }
            let extents = a.kind == .regularFile ? try v.extents(of: node) : []
            return ContentsHandle(volume: v, reader: r, node: node, size: a.size, extents: extents)
        } catch { throw map(error) }
    }

    /// A read inside one recorded extent is answered from that READ like `disc` (spliced
    /// where it can be); anything else (extent boundaries, sparse or embedded data) is
    /// assembled by the disc's reader.
    func read(_ h: ContentsHandle, offset: UInt64, size: Int, reply: consuming DataReply) {
        guard offset < h.size, size > 0 else { return reply.data([]) }
        let length = Int(min(UInt64(size), h.size - offset))
        if let (start, ext) = h.extents.last(where: { $0.start <= offset }),
           case .disc(let at, let extLength) = ext, offset + UInt64(length) <= start + extLength {
            let discOffset = at + (offset - start)
            let lba = discOffset / 2048
            let count = (discOffset + UInt64(length) + 2047) / 2048 - lba
            let range: BlockRange
            do throws(FSError) { range = try h.reader.range(lba, count: Int(count)) } catch { return reply.fail(error.errno) }
            return replyBlocks(range, skip: Int(discOffset - lba * 2048), length: length, reply: reply)
        }
        do {
            reply.data(try h.volume.read(h.node, at: offset, count: length))
        } catch {
            reply.fail(map(error).errno)
        }
    }
}
