import Synchronization

/// An open disc: its file tree, listed lazily, with attributes, extents and reads.
///
/// Directories are parsed the first time they are listed (or looked up in) and cached for the life
/// of the `Volume`; `open` reads only the volume descriptors and the root. Every method may be
/// called from many threads at once.
///
/// Locking: one mutex guards the node table; it is never held while reading the disc (a directory
/// is parsed outside the lock and published under it; if two threads parse the same directory,
/// the first to publish wins and the other's result is dropped).
public final class Volume: Sendable {
    /// The id of the root directory.
    public static let rootID: NodeID = 1

    /// Which tree is shown.
    public let format: VolumeFormat
    /// The volume's name: Joliet or UDF label when that tree is shown, else the ISO 9660 volume id.
    public let label: String
    /// The formats found on the disc, in no particular order.
    public let availableFormats: [VolumeFormat]

    private enum Tree: Sendable {
        case iso(ISOTree)
        case udf(UDFTree)

        func list(_ source: DirectorySource) throws -> [ParsedEntry] {
            switch self {
            case .iso(let tree): return try tree.list(source)
            case .udf(let tree): return try tree.list(source)
            }
        }
    }

    private struct Node: Sendable {
        var entry: ParsedEntry
        var parent: NodeID
        var depth: Int
        var children: [DirectoryEntry]?
        var index: [String: NodeID]?
    }

    private struct State: Sendable {
        /// Node `id` is at index `id - 1`.
        var nodes: [Node]
        /// Directory data read so far, against `directoryBudget`.
        var directoryBytesRead: UInt64 = 0
    }

    private let disc: Disc
    private let tree: Tree
    private let options: OpenOptions
    private let state: Mutex<State>
    /// The most directory data the volume reads: `options.maxTotalDirectoryBytes`, at most the disc.
    private let directoryBudget: UInt64

    private init(disc: Disc, tree: Tree, root: ParsedEntry, format: VolumeFormat, label: String,
                 available: [VolumeFormat], options: OpenOptions) {
        self.disc = disc
        self.tree = tree
        self.format = format
        self.label = label
        self.availableFormats = available
        self.options = options
        self.directoryBudget = min(options.maxTotalDirectoryBytes ?? .max, disc.byteCount)
        self.state = Mutex(State(nodes: [Node(entry: root, parent: Volume.rootID, depth: 0)]))
    }

    /// Detects the disc's formats and opens the preferred tree: Rock Ridge, then UDF, then Joliet,
    /// then plain ISO 9660 (or `options.format` when given). A tree that fails to open falls back
    /// to the next one.
    public static func open(_ reader: any SectorReader, options: OpenOptions = .init()) throws -> Volume {
        let disc = Disc(reader)
        guard disc.sectorCount > 16 else { throw DiscFormatError(.notRecognized, "the disc is too small to hold a file system (\(disc.sectorCount) sectors)") }
        let descriptors = try VolumeDescriptorSet.read(disc)
        var candidates: [(VolumeFormat, () throws -> (Tree, ParsedEntry, String))] = []
        var available: [VolumeFormat] = []
        if let primary = descriptors.primary, let iso = try? ISOTree(disc: disc, descriptor: primary, joliet: false, limits: options) {
            let opener = { () throws -> (Tree, ParsedEntry, String) in (.iso(iso), try iso.rootEntry(), primary.label) }
            if iso.usesRockRidge { available.append(.rockRidge); candidates.append((.rockRidge, opener)) }
        }
        if descriptors.hasUDFMarker || descriptors.primary == nil {
            let opener = { () throws -> (Tree, ParsedEntry, String) in
                let structure = try UDFVolumeStructure.read(disc)
                let udf = UDFTree(disc: disc, structure: structure, limits: options)
                return (.udf(udf), try udf.rootEntry(), structure.label)
            }
            if descriptors.hasUDFMarker { available.append(.udf) }
            candidates.append((.udf, opener))
        }
        if let joliet = descriptors.joliet {
            available.append(.joliet)
            candidates.append((.joliet, {
                let tree = try ISOTree(disc: disc, descriptor: joliet, joliet: true, limits: options)
                return (.iso(tree), try tree.rootEntry(), joliet.label)
            }))
        }
        if let primary = descriptors.primary {
            available.append(.iso9660)
            candidates.append((.iso9660, {
                let plain = try ISOTree(disc: disc, descriptor: primary, joliet: false, rockRidge: false, limits: options)
                return (.iso(plain), try plain.rootEntry(), primary.label)
            }))
        }
        if let wanted = options.format {
            candidates = candidates.filter { $0.0 == wanted }
            guard !candidates.isEmpty else { throw DiscFormatError(.notRecognized, "the disc has no \(wanted) tree") }
        }
        var firstError: Error?
        for (format, opener) in candidates {
            do {
                let (tree, root, label) = try opener()
                return Volume(disc: disc, tree: tree, root: root, format: format, label: label,
                              available: available, options: options)
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        throw firstError ?? DiscFormatError(.notRecognized, "no ISO 9660 or UDF file system found")
    }

    /// The attributes of a node (`stat`).
    public func attributes(of id: NodeID) throws -> NodeAttributes {
        try node(id).entry.attributes
    }

    /// The entries of a directory, without "." and "..", in disc order.
    /// How many nodes of the tree have been parsed so far.
    public var nodeCount: Int { state.withLock { $0.nodes.count } }

    public func children(of id: NodeID) throws -> [DirectoryEntry] {
        try listed(id).children ?? []
    }

    /// The entry called `name` in a directory, or nil.
    public func lookup(_ name: String, in dir: NodeID) throws -> DirectoryEntry? {
        let node = try listed(dir)
        guard let id = node.index?[name] else { return nil }
        return DirectoryEntry(name: name, id: id, kind: try self.node(id).entry.attributes.kind)
    }

    /// Where a regular file's (or directory's) bytes are, in file order; empty for symlinks and
    /// other nodes. Throws for files whose data this reader refuses (e.g. interleaved files).
    public func extents(of id: NodeID) throws -> [Extent] {
        let entry = try node(id).entry
        if let error = entry.dataError { throw error }
        switch entry.directory {
        case .udf(let extents)?: return extents
        case .iso(let offset, let length)?: return length == 0 ? [] : [.disc(byteOffset: offset, length: length)]
        case nil: return entry.extents
        }
    }

    /// Copies up to `count` bytes of a node's data from `offset`; fewer only at the end of the file.
    /// The result is allocated for `count` bytes at most: the caller bounds the allocation.
    /// Throws `outOfRange` when the data lies past the end of the disc (damaged images).
    public func read(_ id: NodeID, at offset: UInt64, count: Int) throws -> [UInt8] {
        let size = try attributes(of: id).size
        guard count > 0, offset < size else { return [] }
        let wanted = Int(min(UInt64(count), size - offset))
        var result = try disc.bytes(of: extents(of: id), from: offset, count: wanted)
        if result.count < wanted { result += [UInt8](repeating: 0, count: wanted - result.count) }
        return result
    }

    // MARK: - Node table

    private func node(_ id: NodeID) throws -> Node {
        try state.withLock { state in
            guard id >= 1, id <= UInt64(state.nodes.count) else {
                throw DiscFormatError(.noSuchNode, "node \(id) does not exist on this volume")
            }
            return state.nodes[Int(id - 1)]
        }
    }

    /// The node with its children parsed and published.
    private func listed(_ id: NodeID) throws -> Node {
        let current = try node(id)
        if current.children != nil { return current }
        guard let source = current.entry.directory else {
            throw DiscFormatError(.notDirectory, "\(current.entry.name.isEmpty ? "node \(id)" : current.entry.name) is not a directory")
        }
        if let error = current.entry.dataError { throw error }
        guard current.depth < options.maxDepth else {
            throw DiscFormatError(.limitExceeded, "\(current.entry.name) is nested \(current.depth) directories deep, deeper than the limit of \(options.maxDepth)")
        }
        // Past the node limit nothing more would be kept: do not parse at all, so that a walk of
        // a hostile disc whose directories all share one huge extent stays quick.
        let full = state.withLock { $0.nodes.count >= options.maxNodes }
        if !full { try charge(source, listing: current.entry.name) }
        let parsed = full ? [] : try tree.list(source)
        let ancestors = ancestorKeys(of: id)
        return state.withLock { state in
            let index = Int(id - 1)
            if state.nodes[index].children != nil { return state.nodes[index] }
            var children: [DirectoryEntry] = []
            var names: [String: NodeID] = [:]
            for entry in parsed {
                // A directory that is one of its own ancestors would make an endless tree.
                if entry.directory != nil && ancestors.contains(entry.locationKey) { continue }
                if names[entry.name] != nil { continue }       // keep the first of duplicate names
                guard state.nodes.count < options.maxNodes else { break }   // truncated view
                state.nodes.append(Node(entry: entry, parent: id, depth: current.depth + 1))
                let childID = NodeID(state.nodes.count)
                names[entry.name] = childID
                children.append(DirectoryEntry(name: entry.name, id: childID, kind: entry.attributes.kind))
            }
            state.nodes[index].children = children
            state.nodes[index].index = names
            return state.nodes[index]
        }
    }

    /// Takes the bytes that listing `source` reads from the volume's directory budget, or throws
    /// `limitExceeded` when they are not left.
    private func charge(_ source: DirectorySource, listing name: String) throws {
        let cap = UInt64(options.maxDirectoryBytes)
        let cost: UInt64
        switch source {
        case .iso(let start, let length):
            cost = min(length, cap, start < disc.byteCount ? disc.byteCount - start : 0)
        case .udf(let extents):
            cost = min(extents.reduce(0) { $0 &+ $1.length }, cap)
        }
        try state.withLock { state in
            guard cost <= directoryBudget - state.directoryBytesRead else {
                let why = directoryBudget == disc.byteCount ? "more than the disc holds: its directories overlap" : "the volume's directory budget"
                throw DiscFormatError(.limitExceeded, "listing \(name.isEmpty ? "the root" : name) would read more than \(directoryBudget) bytes of directories in all, \(why)")
            }
            state.directoryBytesRead += cost
        }
    }

    /// Location keys of a directory and all its ancestors.
    private func ancestorKeys(of id: NodeID) -> Set<UInt64> {
        state.withLock { state in
            var keys: Set<UInt64> = []
            var current = id
            while true {
                let node = state.nodes[Int(current - 1)]
                keys.insert(node.entry.locationKey)
                if current == Volume.rootID || keys.count > options.maxDepth + 1 { break }
                current = node.parent
            }
            return keys
        }
    }
}
