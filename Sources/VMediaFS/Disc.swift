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
                if let ino = inodes.existing(key) { session?.invalidateInode(ino) }
                throw FSError(EIO)
            }
        }
        rt.openers.add(1, ordering: .relaxed)
        let reader = EmulatorSectorReader(runtime: rt, initiator: initiator, generation: generation, sectorCount: medium.blockCount)
        return DiscHandle(reader: reader, key: key)
    }

    /// Serves a read of `disc` with a READ(12) of the covering blocks, as the handle's own
    /// initiator (`EmulatorSectorReader.range`).
    func readDisc(_ h: DiscHandle, offset: UInt64, size: Int, reply: consuming DataReply) {
        if h.stale.load(ordering: .relaxed) { return reply.fail(ESTALE) }
        guard offset < h.capacity, size > 0 else { return reply.data([]) }
        let length = Int(min(UInt64(size), h.capacity - offset))
        let lba = offset / 2048
        let count = (offset + UInt64(length) + 2047) / 2048 - lba
        let range: BlockRange
        do throws(FSError) {
            range = try h.reader.range(lba, count: Int(count))
        } catch {
            if error.errno == ESTALE { h.stale.store(true, ordering: .relaxed) }
            if error.errno == EIO, let ino = inodes.existing(h.key) { session?.invalidateInode(ino) }
            return reply.fail(error.errno)
        }
        replyBlocks(range, skip: Int(offset - lba * 2048), length: length, reply: reply)
    }
}

/// Answers a read with `length` bytes from `skip` into a READ's blocks: by splice from the
/// image's descriptor when they lie inside the image, else by copying (a short last block
/// is completed with zeros). Used by `disc` and `contents/` alike.
func replyBlocks(_ range: BlockRange, skip: Int, length: Int, reply: consuming DataReply) {
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
