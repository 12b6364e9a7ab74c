/// The UDF directory hierarchy: file identifier descriptors (ECMA-167 4/14.4) of directories, and
/// the nodes they name.
struct UDFTree: Sendable {
    let reader: UDFReader
    let root: UDFAddress
    let limits: OpenOptions

    /// Symlink data longer than this is not decoded.
    static let maxSymlinkBytes = 8192

    init(disc: Disc, structure: UDFVolumeStructure, limits: OpenOptions) {
        reader = UDFReader(disc: disc, partitions: structure.partitions)
        root = structure.rootICB
        self.limits = limits
    }

    func rootEntry() throws -> ParsedEntry {
        let entry = try reader.fileEntry(root)
        guard entry.fileType == 4 else { throw DiscFormatError.corrupt("the UDF root ICB is not a directory") }
        guard let parsed = try makeEntry(name: "", entry) else { throw DiscFormatError.corrupt("unreadable UDF root directory") }
        return parsed
    }

    /// The named entries of a directory (parent and deleted entries left out).
    func list(_ source: DirectorySource) throws -> [ParsedEntry] {
        guard case .udf(let extents) = source else { return [] }
        let data = try reader.bytes(of: extents, limit: limits.maxDirectoryBytes)
        var entries: [ParsedEntry] = []
        var position = 0
        var records = 0
        while position + 38 <= data.count, records < limits.maxEntriesPerDirectory {
            let identifierLength = Int(data[position + 19]), implementationLength = Int(data.le16(position + 36))
            let total = (38 + implementationLength + identifierLength + 3) & ~3
            guard position + 38 + implementationLength + identifierLength <= data.count,
                  UDFTag.verify(Array(data[position..<min(data.count, position + total)])) == UDFTag.fileIdentifier else { break }
            records += 1
            let characteristics = data[position + 18]
            let nameStart = position + 38 + implementationLength
            let icb = UDFAddress(block: data.le32(position + 24), partition: data.le16(position + 28))
            let rawName = Array(data[nameStart..<(nameStart + identifierLength)])
            position += total
            // Bit 2: deleted; bit 3: the parent directory.
            guard characteristics & 0x0C == 0, let decoded = CS0.decode(rawName),
                  let name = ISOTree.sanitize(decoded),
                  let entry = try? reader.fileEntry(icb),
                  let parsed = try? makeEntry(name: name, entry) else { continue }
            entries.append(parsed)
        }
        return entries
    }

    /// The node for one file entry; nil for kinds that are not shown (stream directories...).
    private func makeEntry(name: String, _ entry: UDFFileEntry) throws -> ParsedEntry? {
        let kind: NodeKind
        var typeBits: UInt32
        switch entry.fileType {
        case 4: kind = .directory; typeBits = FileType.directory
        case 0, 5, 248: kind = .regularFile; typeBits = FileType.regular
        case 12: kind = .symlink; typeBits = FileType.symlink
        case 6: kind = .other; typeBits = FileType.block
        case 7: kind = .other; typeBits = FileType.character
        case 9: kind = .other; typeBits = FileType.fifo
        case 10: kind = .other; typeBits = FileType.socket
        default: return nil
        }
        let p = entry.permissions
        // Owner, group and other: five bits each (execute, write, read, change attributes, delete).
        var mode = (p & 7) | ((p >> 5) & 7) << 3 | ((p >> 10) & 7) << 6
        if entry.icbFlags & 0x40 != 0 { mode |= 0o4000 }
        if entry.icbFlags & 0x80 != 0 { mode |= 0o2000 }
        if entry.icbFlags & 0x100 != 0 { mode |= 0o1000 }
        var attributes = NodeAttributes(
            kind: kind, size: entry.informationLength, mode: typeBits | mode,
            uid: entry.uid == .max ? 0 : entry.uid, gid: entry.gid == .max ? 0 : entry.gid,
            linkCount: UInt32(max(1, entry.linkCount)), modificationTime: entry.modificationTime,
            accessTime: entry.accessTime, changeTime: entry.attributeTime)
        var parsed = ParsedEntry(name: name, attributes: attributes)
        let extents: [Extent]
        do {
            extents = try reader.dataExtents(entry, limit: limits.maxExtentsPerFile)
        } catch let error as DiscFormatError {
            parsed.dataError = error
            parsed.attributes.size = 0
            return parsed
        }
        let recorded = extents.reduce(UInt64(0)) { $0 + $1.length }
        attributes.size = min(attributes.size, recorded)
        switch kind {
        case .directory:
            parsed.directory = .udf(extents: extents)
            parsed.locationKey = entry.byteOffset
        case .symlink:
            let data = (try? reader.bytes(of: extents, limit: UDFTree.maxSymlinkBytes)) ?? []
            let target = UDFTree.symlinkTarget(data)
            attributes.symlinkTarget = target
            attributes.size = UInt64(target.utf8.count)
        case .regularFile:
            parsed.extents = extents
        case .other:
            attributes.size = 0
        }
        parsed.attributes = attributes
        return parsed
    }

    /// A path from ECMA-167 4/14.16 path components: type (1-2 root, 3 parent, 4 current,
    /// 5 named), identifier length, version, CS0 identifier.
    static func symlinkTarget(_ data: [UInt8]) -> String {
        var parts: [String] = []
        var absolute = false
        var position = 0
        while position + 4 <= data.count {
            let type = data[position], length = Int(data[position + 1])
            let identifier = data.slice(position + 4, length)
            position += 4 + length
            switch type {
            case 1, 2: absolute = true; parts.removeAll()
            case 3: parts.append("..")
            case 4: parts.append(".")
            case 5: parts.append(CS0.decode(identifier) ?? "")
            default: break
            }
        }
        return (absolute ? "/" : "") + parts.joined(separator: "/")
    }
}
