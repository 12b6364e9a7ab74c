import CFuseABI
import Glibc

/// The kernel's answer structures (<linux/fuse.h>) built from this module's Swift values, for
/// the wire layer. Each returns the structure that follows `fuse_out_header` (sent from the
/// stack by `KernelChannel.reply(_:value:)`); `bytes(of:)` gives its bytes.
enum WireFormat {
    /// The bytes of a C struct as laid out in memory.
    static func bytes<T>(of value: T) -> [UInt8] {
        withUnsafeBytes(of: value) { Array($0) }
    }

    /// A validity period in seconds as the kernel takes it: whole seconds and nanoseconds.
    static func validity(_ seconds: Double) -> (UInt64, UInt32) {
        guard seconds > 0 else { return (0, 0) }
        guard seconds < Double(UInt64.max) else { return (UInt64.max, 0) }
        let whole = seconds.rounded(.down)
        return (UInt64(whole), UInt32(min(999_999_999, (seconds - whole) * 1e9)))
    }

    static func attr(_ a: FileAttributes) -> fuse_attr {
        var r = fuse_attr()
        r.ino = a.ino
        r.size = a.size
        r.blocks = (a.size + 511) / 512
        r.atime = UInt64(bitPattern: a.accessTime.seconds)
        r.mtime = UInt64(bitPattern: a.modificationTime.seconds)
        r.ctime = UInt64(bitPattern: a.changeTime.seconds)
        r.atimensec = UInt32(truncatingIfNeeded: a.accessTime.nanoseconds)
        r.mtimensec = UInt32(truncatingIfNeeded: a.modificationTime.nanoseconds)
        r.ctimensec = UInt32(truncatingIfNeeded: a.changeTime.nanoseconds)
        r.mode = a.mode
        r.nlink = a.linkCount
        r.uid = a.uid
        r.gid = a.gid
        r.blksize = a.blockSize
        return r
    }

    static func entry(_ e: Entry) -> fuse_entry_out {
        var out = fuse_entry_out()
        out.nodeid = e.attributes.ino
        out.generation = e.generation
        (out.entry_valid, out.entry_valid_nsec) = validity(e.entryTimeout)
        (out.attr_valid, out.attr_valid_nsec) = validity(e.attributeTimeout)
        out.attr = attr(e.attributes)
        return out
    }

    static func attributes(_ a: FileAttributes, timeout: Double) -> fuse_attr_out {
        var out = fuse_attr_out()
        (out.attr_valid, out.attr_valid_nsec) = validity(timeout)
        out.attr = attr(a)
        return out
    }

    /// FOPEN_* flags for an open answer.
    static func openFlags(_ o: OpenResult) -> UInt32 {
        var flags: UInt32 = 0
        if o.directIO { flags |= UInt32(FOPEN_DIRECT_IO) }
        if o.keepCache { flags |= UInt32(FOPEN_KEEP_CACHE) }
        if o.nonSeekable { flags |= UInt32(FOPEN_NONSEEKABLE) }
        if o.noFlush { flags |= UInt32(FOPEN_NOFLUSH) }
        return flags
    }

    /// `fuse_open_out`; `backingID` (> 0) asks for passthrough to that backing file, in the
    /// field that protocol 7.40 took from the padding.
    static func open(handle: UInt64, flags: UInt32, backingID: Int32 = 0) -> fuse_open_out {
        var out = fuse_open_out()
        out.fh = handle
        out.open_flags = flags
        out.padding = UInt32(bitPattern: backingID)
        return out
    }

    static func written(_ count: Int) -> fuse_write_out {
        var out = fuse_write_out()
        out.size = UInt32(clamping: count)
        return out
    }

    static func statfs(_ s: VolumeStatistics) -> fuse_statfs_out {
        var out = fuse_statfs_out()
        out.st.bsize = UInt32(clamping: s.blockSize)
        out.st.frsize = UInt32(clamping: s.blockSize)
        out.st.blocks = s.blocks
        out.st.files = s.files
        out.st.namelen = UInt32(clamping: s.nameMax)
        return out
    }

    static func poll(_ revents: UInt32) -> fuse_poll_out {
        var out = fuse_poll_out()
        out.revents = revents
        return out
    }

    /// Directory entries from `offset` packed as `fuse_dirent` records (8-byte aligned) into
    /// at most `size` bytes. Each entry's offset is the index of the entry after it.
    static func directory(_ items: [DirectoryItem], from offset: Int, size: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(min(size, 64 * 1024))
        var index = max(0, offset)
        while index < items.count {
            let item = items[index]
            let name = Array(item.name.utf8)
            let record = 24 + name.count
            let padded = (record + 7) & ~7
            if out.count + padded > size { break }
            var d = fuse_dirent()
            d.ino = item.ino
            d.off = UInt64(index + 1)
            d.namelen = UInt32(name.count)
            d.type = (item.type & UInt32(S_IFMT)) >> 12
            withUnsafeBytes(of: d) { out.append(contentsOf: $0.prefix(24)) }
            out.append(contentsOf: name)
            out.append(contentsOf: repeatElement(0, count: padded - record))
            index += 1
        }
        return out
    }
}
