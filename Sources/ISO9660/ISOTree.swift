/// Where a directory's entries are stored, for listing it later.
enum DirectorySource: Sendable {
    /// An ISO 9660 directory extent: absolute byte offset and length.
    case iso(dataOffset: UInt64, length: UInt64)
    /// A UDF directory's data (file identifier descriptors), as extents.
    case udf(extents: [Extent])
}

/// A node as found in its parent's listing, before it is given an id.
struct ParsedEntry: Sendable {
    var name: String
    var attributes: NodeAttributes
    var extents: [Extent] = []
    /// Set when the node's data (or listing, for a directory) cannot be read, e.g. interleaved files.
    var dataError: DiscFormatError?
    var directory: DirectorySource?
    /// Identifies a directory's storage, to detect directories that contain their own ancestors.
    var locationKey: UInt64 = 0
}

/// The ISO 9660 directory hierarchy of one volume descriptor, with Rock Ridge when present.
struct ISOTree: Sendable {
    let disc: Disc
    let blockSize: UInt64
    let joliet: Bool
    /// Rock Ridge is in use (SP in the root "." record), with this many bytes skipped before each area.
    let suspSkip: Int?
    let rootSource: DirectorySource
    let limits: OpenOptions

    var usesRockRidge: Bool { suspSkip != nil }

    /// Opens the tree of `descriptor`; looks for SUSP/Rock Ridge when `rockRidge` and not `joliet`.
    init(disc: Disc, descriptor: VolumeDescriptorSet.Tree, joliet: Bool, rockRidge: Bool = true, limits: OpenOptions) throws {
        guard let root = DirectoryRecord(descriptor.rootRecord, at: 0) else {
            throw DiscFormatError.corrupt("the root directory record of the volume descriptor is invalid")
        }
        self.disc = disc
        self.blockSize = descriptor.blockSize
        self.joliet = joliet
        self.limits = limits
        let offset = root.dataOffset(blockSize: descriptor.blockSize)
        self.rootSource = .iso(dataOffset: offset, length: root.dataLength)
        var skip: Int?
        if !joliet, rockRidge, let first = try? disc.bytes(at: offset, count: sectorSize),
           let dot = DirectoryRecord(first, at: 0), dot.isDot, let spSkip = SUSP.spSkip(dot.systemUse) {
            var cache = SectorCache(disc)
            let entries = SUSP.entries(dot.systemUse, blockSize: descriptor.blockSize, cache: &cache)
            let rripIDs = ["RRIP_1991A", "IEEE_P1282", "IEEE_1282"]
            let hasER = entries.contains { entry in entry.signature == "ER" && rripIDs.contains(Self.erIdentifier(entry.data)) }
            let hasRR = entries.contains { ["RR", "PX", "NM", "TF"].contains($0.signature) }
            if hasER || hasRR { skip = spSkip }
        }
        self.suspSkip = skip
    }

    /// The identifier of an ER entry (IEEE P1281 5.5): length byte at 0, text at 4.
    static func erIdentifier(_ data: [UInt8]) -> String {
        String(decoding: data.slice(4, Int(data.u8(0))), as: UTF8.self)
    }

    /// The root node, from the root directory's "." record.
    func rootEntry() throws -> ParsedEntry {
        guard case .iso(let offset, let length) = rootSource else { throw DiscFormatError.corrupt("bad root") }
        let first = try disc.bytes(at: offset, count: sectorSize)
        var cache = SectorCache(disc)
        var info = RockRidgeInfo()
        var time = Timespec.zero
        if let dot = DirectoryRecord(first, at: 0) {
            time = dot.recordingTime
            if suspSkip != nil { info = RockRidgeInfo(SUSP.entries(dot.systemUse, blockSize: blockSize, cache: &cache)) }
        }
        return ParsedEntry(name: "", attributes: attributes(kind: .directory, size: length, info: info, time: time),
                           directory: rootSource, locationKey: offset)
    }

    /// The entries of a directory, "." and ".." excluded, relocated (RE) entries hidden.
    func list(_ source: DirectorySource) throws -> [ParsedEntry] {
        var (entries, _) = try scan(source)
        if case .iso(let offset, _) = source, case .iso(let rootOffset, _) = rootSource, offset == rootOffset, usesRockRidge {
            // Hide the relocation directory: a root entry "rr_moved" holding only relocated directories.
            entries.removeAll { entry in
                guard let dir = entry.directory, ["rr_moved", ".rr_moved"].contains(entry.name.lowercased()),
                      let (inside, relocated) = try? scan(dir) else { return false }
                return inside.isEmpty && relocated > 0
            }
        }
        return entries
    }

    /// All entries of a directory plus the number of relocated (RE) ones left out.
    private func scan(_ source: DirectorySource) throws -> ([ParsedEntry], Int) {
        guard case .iso(let start, let declaredLength) = source else { return ([], 0) }
        var cache = SectorCache(disc)
        var entries: [ParsedEntry] = []
        var relocated = 0
        var records = 0
        var group: [DirectoryRecord] = []
        let length = min(declaredLength, UInt64(limits.maxDirectoryBytes))
        let firstSector = start / UInt64(sectorSize)
        let sectorCount = (length + UInt64(sectorSize) - 1) / UInt64(sectorSize)
        let chunk: UInt64 = 16

        func finish() {
            defer { group.removeAll() }
            guard !group.isEmpty else { return }
            if let entry = makeEntry(group, cache: &cache) {
                if entry.name.isEmpty { relocated += 1 } else { entries.append(entry) }
            }
        }

        var sector: UInt64 = 0
        outer: while sector < sectorCount {
            let count = min(chunk, sectorCount - sector)
            guard firstSector + sector < disc.sectorCount else { break }       // truncated disc
            let available = min(count, disc.sectorCount - (firstSector + sector))
            let data = try disc.sectors(firstSector + sector, count: Int(available))
            for index in 0..<Int(available) {
                var position = index * sectorSize
                let sectorEnd = position + sectorSize
                while position < sectorEnd {
                    let recordLength = Int(data[position])
                    guard recordLength > 0, position + recordLength <= sectorEnd,
                          let record = DirectoryRecord(data, at: position) else { break }   // in place: no copy per record
                    position += recordLength
                    records += 1
                    if records > limits.maxEntriesPerDirectory || entries.count >= limits.maxEntriesPerDirectory { break outer }
                    if record.isDot || record.isDotDot { continue }
                    if let last = group.last, !(last.flags.contains(.multiExtent) && last.identifier == record.identifier
                                                && group.count < limits.maxExtentsPerFile) {
                        finish()
                    }
                    group.append(record)
                    if !record.flags.contains(.multiExtent) { finish() }
                }
            }
            sector += available
            if available < count { break }
        }
        finish()
        return (entries, relocated)
    }

    /// Builds the entry for one record, or for the records of a multi-extent file. Returns nil for
    /// entries that are not shown; an empty name marks a relocated (RE) directory.
    private func makeEntry(_ records: [DirectoryRecord], cache: inout SectorCache) -> ParsedEntry? {
        let first = records[0]
        if first.flags.contains(.associated) { return nil }
        var info = RockRidgeInfo()
        if let skip = suspSkip, skip <= first.systemUse.count {
            info = RockRidgeInfo(SUSP.entries(Array(first.systemUse[skip...]), blockSize: blockSize, cache: &cache))
        }
        if info.isRelocated && first.isDirectory {
            return ParsedEntry(name: "", attributes: NodeAttributes(kind: .directory, size: 0, mode: 0))
        }
        guard let name = Self.sanitize(info.name ?? ISOName.display(first.identifier, joliet: joliet)) else { return nil }
        let interleaved = records.contains { $0.fileUnitSize != 0 || $0.interleaveGap != 0 }
        let error = interleaved ? DiscFormatError.unsupported("\(name) is an interleaved file (file unit size \(first.fileUnitSize), gap \(first.interleaveGap)), which is not supported") : nil

        if let target = info.childLink {
            // A Rock Ridge placeholder for a directory relocated to block `target`: its "." record
            // there gives the directory's length and its own attributes.
            let offset = target &* blockSize
            guard let bytes = try? cache.bytes(at: offset, count: sectorSize),
                  let dot = DirectoryRecord(bytes, at: 0), dot.isDirectory || dot.isDot else { return nil }
            var dotInfo = info
            if let skip = suspSkip, skip <= dot.systemUse.count {
                let real = RockRidgeInfo(SUSP.entries(Array(dot.systemUse[skip...]), blockSize: blockSize, cache: &cache))
                if real.mode != nil { dotInfo.mode = real.mode; dotInfo.uid = real.uid; dotInfo.gid = real.gid; dotInfo.linkCount = real.linkCount }
                if real.modificationTime != nil { dotInfo.modificationTime = real.modificationTime; dotInfo.accessTime = real.accessTime; dotInfo.changeTime = real.changeTime }
            }
            let source = DirectorySource.iso(dataOffset: dot.dataOffset(blockSize: blockSize), length: dot.dataLength)
            return ParsedEntry(name: name, attributes: attributes(kind: .directory, size: dot.dataLength, info: dotInfo, time: dot.recordingTime),
                               dataError: error, directory: source, locationKey: dot.dataOffset(blockSize: blockSize))
        }
        if first.isDirectory {
            let offset = first.dataOffset(blockSize: blockSize)
            return ParsedEntry(name: name, attributes: attributes(kind: .directory, size: first.dataLength, info: info, time: first.recordingTime),
                               dataError: error, directory: .iso(dataOffset: offset, length: first.dataLength), locationKey: offset)
        }
        let kind: NodeKind
        if info.symlinkTarget != nil {
            kind = .symlink
        } else if let mode = info.mode, let modeKind = FileType.kind(ofMode: mode), modeKind != .directory, modeKind != .symlink {
            kind = modeKind
        } else {
            kind = info.isDevice ? .other : .regularFile
        }
        var extents: [Extent] = []
        var size: UInt64 = 0
        if kind == .regularFile {
            for record in records where record.dataLength > 0 {
                extents.append(.disc(byteOffset: record.dataOffset(blockSize: blockSize), length: record.dataLength))
                size += record.dataLength
            }
        } else if kind == .symlink {
            size = UInt64(info.symlinkTarget?.utf8.count ?? 0)
        }
        return ParsedEntry(name: name, attributes: attributes(kind: kind, size: size, info: info, time: first.recordingTime),
                           extents: extents, dataError: error)
    }

    /// Attributes from Rock Ridge where present, else read-only defaults.
    private func attributes(kind: NodeKind, size: UInt64, info: RockRidgeInfo, time: Timespec) -> NodeAttributes {
        var typeBits = FileType.bits(for: kind)
        if kind == .other, let mode = info.mode, FileType.kind(ofMode: mode) == .other { typeBits = mode & FileType.mask }
        let defaultPermissions: UInt32 = kind == .directory ? 0o555 : (kind == .symlink ? 0o777 : 0o444)
        let mode = typeBits | (info.mode.map { $0 & 0o7777 } ?? defaultPermissions)
        let modified = info.modificationTime ?? time
        return NodeAttributes(kind: kind, size: size, mode: mode, uid: info.uid ?? 0, gid: info.gid ?? 0,
                              linkCount: max(1, info.linkCount ?? 1), modificationTime: modified,
                              accessTime: info.accessTime ?? modified, changeTime: info.changeTime ?? modified,
                              symlinkTarget: kind == .symlink ? info.symlinkTarget : nil)
    }

    /// A name usable in a path: nil for empty, "." and ".."; "/" and NUL replaced by "_".
    static func sanitize(_ name: String) -> String? {
        guard !name.isEmpty, name != ".", name != ".." else { return nil }
        // Bytes, not Characters: walking grapheme clusters cost more than the rest of a record.
        guard name.utf8.contains(where: { $0 == 0x2F || $0 == 0 }) else { return name }
        return String(name.map { $0 == "/" || $0 == "\u{0}" ? "_" : $0 })
    }
}
