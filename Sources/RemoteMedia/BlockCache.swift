import Glibc
import Synchronization

/// The local copy of URL images' bytes: one sparse file per image under `directory`, filled
/// chunk by chunk as they arrive, with one byte limit over all images. When an arrival would
/// pass the limit, the least recently used chunks (of any image) are dropped: their range is
/// punched out of the file and their image forgets them.
///
/// The cache holds the images that have chunks in it, so that ejecting and inserting the same
/// URL again (or a guest that reboots) finds its bytes still here; an image with no chunks
/// left and no drive holding it ends, which closes and removes its file.
///
/// Lock order: the cache's state before an image's (`HTTPImage.forget` runs under this lock).
final class BlockCache: Sendable {
    struct Key: Hashable { let image: ObjectIdentifier; let chunk: Int }
    private struct Entry { let image: HTTPImage; let bytes: Int; var lastUse: UInt64 }
    private struct State {
        var entries: [Key: Entry] = [:]
        var bytes: UInt64 = 0
        var tick: UInt64 = 0
        var hits: UInt64 = 0
        var misses: UInt64 = 0
    }
    let directory: String
    let limit: UInt64
    private let state = Mutex(State())
    private let fileCounter = Atomic<UInt64>(0)

    /// Makes `directory` (mode 0700) and empties it: what an earlier run left is dropped.
    init(directory: String, limit: UInt64) {
        self.directory = directory
        self.limit = limit
        mkdir(directory, 0o700)
        if let dir = opendir(directory) {
            while let ent = readdir(dir) {
                let name = withUnsafeBytes(of: ent.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if name.hasSuffix(".blocks") { unlink(directory + "/" + name) }
            }
            closedir(dir)
        }
    }

    /// A new, empty cache file of `size` bytes; nil (the image then reads uncached) if it cannot be made.
    func makeFile(size: UInt64) -> (fd: Int32, path: String)? {
        let path = "\(directory)/\(getpid())-\(fileCounter.add(1, ordering: .relaxed).newValue).blocks"
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return nil }
        guard ftruncate(fd, off_t(size)) == 0 else { close(fd); unlink(path); return nil }
        return (fd, path)
    }

    /// A chunk of `image` is now in its file: count it, then drop the least recently used
    /// chunks of any image (never this one, nor one a reader has pinned) until the cache is
    /// within its limit. While readers pin more than the limit, the cache holds more.
    func added(_ image: HTTPImage, chunk: Int, bytes: Int) {
        let key = Key(image: ObjectIdentifier(image), chunk: chunk)
        var dropped: [Entry] = []
        state.withLock { s in
            s.tick += 1
            if s.entries.updateValue(Entry(image: image, bytes: bytes, lastUse: s.tick), forKey: key) == nil {
                s.bytes += UInt64(bytes)
            }
            var pinned: Set<Key> = [key]
            while s.bytes > limit {
                // Linear in the number of chunks (the limit / 1 MiB): a few thousand at most.
                guard let oldest = s.entries.lazy.filter({ !pinned.contains($0.key) }).min(by: { $0.value.lastUse < $1.value.lastUse }) else { break }
                guard oldest.value.image.forget(chunk: oldest.key.chunk) else {
                    pinned.insert(oldest.key)
                    continue
                }
                s.entries[oldest.key] = nil
                s.bytes -= UInt64(oldest.value.bytes)
                dropped.append(oldest.value)
            }
        }
        _ = dropped   // the images released here, after the lock, may end
    }

    /// Chunks of `image` were read from the cache (`hit`) or had to be fetched.
    func used(_ image: HTTPImage, chunks: ClosedRange<Int>, hit: Bool) {
        state.withLock { s in
            s.tick += 1
            for c in chunks { s.entries[Key(image: ObjectIdentifier(image), chunk: c)]?.lastUse = s.tick }
            if hit { s.hits += UInt64(chunks.count) } else { s.misses += UInt64(chunks.count) }
        }
    }

    /// Bytes held, and reads served from the cache against reads that fetched.
    var statistics: (bytes: UInt64, hits: UInt64, misses: UInt64) {
        state.withLock { ($0.bytes, $0.hits, $0.misses) }
    }
}
