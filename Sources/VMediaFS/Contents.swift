import FuseKernel
import Glibc
import ISO9660
import SCSI
import Synchronization
import VirtualMedia

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
            // Sectors past the end asked for by the disc's own structures mean a damaged disc.
            let reader = EmulatorSectorReader(runtime: rt, initiator: initiator, generation: generation,
                                              sectorCount: medium.blockCount, pastTheEnd: EIO)
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

    static func fsError(_ error: any Error) -> FSError {
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
        } catch { throw Self.fsError(error) }
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
        do { a = try v.attributes(of: node) } catch { throw Self.fsError(error) }
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
            // A target holding NUL cannot be given to the kernel whole (it would be cut at the
            // NUL and point somewhere the disc does not say): the link cannot be read.
            guard !t.utf8.contains(0) else { throw FSError(EIO) }
            return t
        } catch { throw Self.fsError(error) }
    }

    func open(drive: Int64, generation: UInt64, node: UInt64) throws(FSError) -> ContentsHandle {
        guard let (v, r) = try volume(drive: drive, generation: generation) else { throw FSError(ENOENT) }
        do {
            let a = try v.attributes(of: node)
            guard a.kind != .directory else { throw FSError(EISDIR) }
            let extents = a.kind == .regularFile ? try v.extents(of: node) : []
            return ContentsHandle(volume: v, reader: r, node: node, size: a.size, extents: extents)
        } catch { throw Self.fsError(error) }
    }
}
