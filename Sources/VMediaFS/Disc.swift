import FuseKernel
import Glibc
import SCSI
import VirtualMedia

/// The SCSI sense an emulator answered with, as the errno a reader of `disc` gets.
/// This is the only decision the filesystem makes about a read; the emulator makes the rest.
func errno(for sense: SenseCode?) -> Int32 {
    guard let s = sense else { return EIO }
    switch s.key {
    case 0x02 where s.asc == 0x3A: return ENOMEDIUM      // medium not present
    case 0x06: return ESTALE                             // unit attention: the media changed
    case 0x07: return EROFS                              // data protect
    case 0x05 where s.asc == 0x21: return EINVAL         // LBA out of range
    default: return EIO
    }
}

extension VMediaFileSystem {
    /// Opens a drive's disc as it is now: its own initiator on the emulator, bound to the
    /// media generation the path named. A name looked up before a media change opens nothing.
    func openDisc(_ key: NodeKey) throws(FSError) -> DiscHandle {
        guard case .disc(let driveID, let generation, _) = key, let rt = host.runtime(driveID: driveID) else {
            throw FSError(ENOENT)
        }
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
                session?.invalidateInode(inodes.ino(key))
                throw FSError(EIO)
            }
        }
        rt.openers.add(1, ordering: .relaxed)
        let capacity = medium.blockCount * UInt64(Medium.blockSize)
        return DiscHandle(runtime: rt, initiator: initiator, key: key, generation: generation, capacity: capacity)
    }

    /// Serves a read of `disc` with a READ(12) of the covering blocks (`OpticalDrive.read`). Whole-block ranges
    /// inside the image go back by splice from the image's descriptor; a short last block
    /// is completed with zeros by copying.
    func readDisc(_ h: DiscHandle, offset: UInt64, size: Int, reply: consuming DataReply) {
        if h.stale.load(ordering: .relaxed) { return reply.fail(ESTALE) }
        guard offset < h.capacity, size > 0 else { return reply.data([]) }
        let length = Int(min(UInt64(size), h.capacity - offset))
        let lba = offset / 2048
        let count = (offset + UInt64(length) + 2047) / 2048 - lba
        let result = h.runtime.emulator.read(lba: lba, blocks: UInt32(count), from: h.initiator)
        guard result.status == .good else {
            let e = errno(for: result.sense)
            // The kernel sends several READs of one handle at once (readahead): one of them
            // takes the unit attention of a media change, the others then fail against the
            // new medium (an LBA past its end). Any failure after a change is the change.
            if e == ESTALE || e == ENOMEDIUM || h.runtime.emulator.state.generation != h.generation {
                h.stale.store(true, ordering: .relaxed)
                return reply.fail(ESTALE)
            }
            if e == EIO { session?.invalidateInode(inodes.ino(h.key)) }
            return reply.fail(e)
        }
        guard case .blocks(let range) = result.data else { return reply.fail(EIO) }
        guard range.generation == h.generation else {
            h.stale.store(true, ordering: .relaxed)
            return reply.fail(ESTALE)
        }
        let skip = Int(offset - lba * 2048)
        // The source owns the descriptor the reply splices from: keep it alive until the
        // reply is sent, or a concurrent eject could close it and an insert reuse its number.
        defer { withExtendedLifetime(range.source) {} }
        if skip + length <= range.length, let fd = range.source.fileDescriptor {
            return reply.data(.file(descriptor: fd, offset: range.offset + UInt64(skip), length: length))
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
}
