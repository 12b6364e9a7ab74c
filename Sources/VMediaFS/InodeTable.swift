import Synchronization

/// Which node an inode is. Every inode of the tree is one of these; the table below gives
/// each key a number for as long as the daemon runs (or the object lives), and
/// `VMediaFileSystem.node(_:)` gives each key the `TreeNode` that behaves as it.
enum NodeKey: Hashable, Sendable {
    case root, guests, library, events
    case guest(Int64)
    /// A guest's iSCSI allow list and its (write-only) CHAP credentials.
    case initiators(Int64)
    case chap(Int64)
    case drive(Int64)
    case media(Int64)
    case status(Int64)
    /// A drive's disc as one media generation, with that medium's size in whole blocks: a
    /// new generation gets a new inode, so pages the kernel cached for the old media can
    /// never be served to a new open, and the old inode keeps its own size (0 would turn an
    /// old descriptor's ESTALE into a silent end of file).
    case disc(Int64, generation: UInt64, size: UInt64)
    /// A drive's `contents/` itself: one inode for the drive's life, listing whatever disc
    /// is loaded now. Its mtime is the time the current media came (or went), and every
    /// media change invalidates its attributes, so the kernel drops the listing it kept.
    case contentsRoot(Int64)
    /// A node of the disc's own tree below `contents/`, per drive and media generation.
    case contents(Int64, generation: UInt64, node: UInt64)
    case libraryItem(String)
    case libraryFile(String, LibraryField)
    /// A file an editor created in a drive directory; lives in memory until renamed onto `media`.
    case temporary(Int64, String)

    var driveID: Int64? {
        switch self {
        case .drive(let d), .media(let d), .status(let d), .disc(let d, _, _), .contentsRoot(let d),
             .contents(let d, _, _), .temporary(let d, _): d
        default: nil
        }
    }
}

/// Inode numbers for keys, and keys for inode numbers. The four fixed nodes have fixed
/// numbers; the rest are handed out in order (never reused) and dropped when their object
/// goes away: a removed guest or drive, or an older media generation of a drive (whose
/// disc node would otherwise pile up with every swap). The kernel asking about a dropped
/// number gets ESTALE.
///
/// The nodes of a disc's own tree (`contents/` below its root: thousands per disc) are not
/// stored one by one: their numbers are computed. Bit 62 marks them, bits 24-61 hold a slot
/// given to the drive's media generation, bits 0-23 the node's number in the disc's tree
/// (the ISO9660 reader numbers nodes densely from 1 and stops at 2 million). Forgetting a
/// generation forgets its slot, and with it every number of that disc at once.
final class InodeTable: Sendable {
    private struct Generation: Hashable {
        var drive: Int64
        var generation: UInt64
    }
    static let computedBit: UInt64 = 1 << 62
    static let nodeBits: UInt64 = 24
    static let nodeMask: UInt64 = (1 << nodeBits) - 1

    private struct Maps {
        var byKey: [NodeKey: UInt64] = [.root: 1, .guests: 2, .library: 3, .events: 4]
        var byIno: [UInt64: NodeKey] = [1: .root, 2: .guests, 3: .library, 4: .events]
        /// The numbers of each drive's nodes, so that one drive's can be dropped without
        /// looking at every other drive's.
        var byDrive: [Int64: Set<UInt64>] = [:]
        var next: UInt64 = 16
        /// Slots of the media generations whose disc trees have numbers, both ways.
        var slots: [Generation: UInt64] = [:]
        var generations: [UInt64: Generation] = [:]
        var nextSlot: UInt64 = 1

        mutating func remove(_ ino: UInt64) {
            guard let k = byIno.removeValue(forKey: ino) else { return }
            byKey[k] = nil
            if let d = k.driveID { byDrive[d]?.remove(ino) }
        }
    }
    private let maps = Mutex(Maps())

    func ino(_ key: NodeKey) -> UInt64 {
        maps.withLock { m in
            if case .contents(let d, let g, let node) = key, node <= Self.nodeMask {
                let gen = Generation(drive: d, generation: g)
                let slot: UInt64
                if let s = m.slots[gen] {
                    slot = s
                } else {
                    slot = m.nextSlot
                    m.nextSlot += 1
                    m.slots[gen] = slot
                    m.generations[slot] = gen
                }
                return Self.computedBit | (slot << Self.nodeBits) | node
            }
            if let i = m.byKey[key] { return i }
            let i = m.next
            m.next += 1
            m.byKey[key] = i
            m.byIno[i] = key
            if let d = key.driveID { m.byDrive[d, default: []].insert(i) }
            return i
        }
    }

    func key(_ ino: UInt64) -> NodeKey? {
        maps.withLock { m in
            if ino & Self.computedBit != 0 {
                guard let gen = m.generations[(ino & ~Self.computedBit) >> Self.nodeBits] else { return nil }
                return .contents(gen.drive, generation: gen.generation, node: ino & Self.nodeMask)
            }
            return m.byIno[ino]
        }
    }

    /// The number of `key` if the kernel may have been told it (never hands out a new one).
    func existing(_ key: NodeKey) -> UInt64? {
        maps.withLock { m in
            if case .contents(let d, let g, let node) = key, node <= Self.nodeMask {
                return m.slots[Generation(drive: d, generation: g)].map { Self.computedBit | ($0 << Self.nodeBits) | node }
            }
            return m.byKey[key]
        }
    }

    /// Forgets the disc trees of a drive's media generations other than `keeping` (all of
    /// them when nil): their numbers then answer ESTALE.
    func forgetDiscTrees(drive: Int64, keeping: UInt64?) {
        maps.withLock { m in
            for (gen, slot) in m.slots where gen.drive == drive && gen.generation != keeping {
                m.slots[gen] = nil
                m.generations[slot] = nil
            }
        }
    }

    /// Forgets every key for which `drop` is true (looks at every key: for rare changes).
    func purge(where drop: (NodeKey) -> Bool) {
        maps.withLock { m in
            for (k, i) in m.byKey where drop(k) { m.remove(i) }
        }
    }

    /// Forgets those of one drive's keys for which `drop` is true; returns their numbers.
    @discardableResult
    func purge(drive: Int64, where drop: (NodeKey) -> Bool) -> [UInt64: NodeKey] {
        maps.withLock { m in
            var dropped: [UInt64: NodeKey] = [:]
            for i in m.byDrive[drive] ?? [] {
                if let k = m.byIno[i], drop(k) { m.remove(i); dropped[i] = k }
            }
            if m.byDrive[drive]?.isEmpty == true { m.byDrive[drive] = nil }
            return dropped
        }
    }

    var count: Int { maps.withLock { $0.byKey.count } }
}
