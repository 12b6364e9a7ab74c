import Synchronization

/// The files of a `library/NAME/` directory.
enum LibraryField: String, CaseIterable, Sendable {
    case path, size, users, sharable
}

/// What an inode is. Every inode of the tree is one of these; the table below gives each
/// key a number for as long as the daemon runs (or the object lives).
enum NodeKey: Hashable, Sendable {
    case root, guests, library, events
    case guest(Int64)
    /// A guest's iSCSI allow list and its (write-only) CHAP credentials.
    case initiators(Int64)
    case chap(Int64)
    case drive(Int64)
    case media(Int64)
    case status(Int64)
    /// A drive's disc as one media generation: a new generation gets a new inode, so pages
    /// the kernel cached for the old media can never be served to a new open.
    case disc(Int64, generation: UInt64)
    /// A node of the disc's own tree (`contents/`), per drive and media generation.
    case contents(Int64, generation: UInt64, node: UInt64)
    case libraryItem(String)
    case libraryFile(String, LibraryField)
    /// A file an editor created in a drive directory; lives in memory until renamed onto `media`.
    case temporary(Int64, String)

    var driveID: Int64? {
        switch self {
        case .drive(let d), .media(let d), .status(let d), .disc(let d, _), .contents(let d, _, _), .temporary(let d, _): d
        default: nil
        }
    }
}

/// Inode numbers for keys, and keys for inode numbers. The four fixed nodes have fixed
/// numbers; the rest are handed out in order and dropped when their object goes away.
final class InodeTable: Sendable {
    private struct Maps {
        var byKey: [NodeKey: UInt64] = [.root: 1, .guests: 2, .library: 3, .events: 4]
        var byIno: [UInt64: NodeKey] = [1: .root, 2: .guests, 3: .library, 4: .events]
        var next: UInt64 = 16
    }
    private let maps = Mutex(Maps())

    func ino(_ key: NodeKey) -> UInt64 {
        maps.withLock { m in
            if let i = m.byKey[key] { return i }
            let i = m.next
            m.next += 1
            m.byKey[key] = i
            m.byIno[i] = key
            return i
        }
    }

    func key(_ ino: UInt64) -> NodeKey? { maps.withLock { $0.byIno[ino] } }

    /// Forgets every key for which `drop` is true (a removed drive, an old media generation).
    func purge(where drop: (NodeKey) -> Bool) {
        maps.withLock { m in
            for (k, i) in m.byKey where drop(k) {
                m.byKey[k] = nil
                m.byIno[i] = nil
            }
        }
    }

    var count: Int { maps.withLock { $0.byKey.count } }
}
