import Foundation

/// Writes small UDF-only images from a host directory, because no tool here can add files to a
/// UDF image with the UDF 2.50 features: `mkudffs` makes empty file systems only, and
/// `genisoimage -udf` writes UDF 1.02 with file entries, short_ad and type 1 partitions only.
///
/// The images use extended file entries (or plain ones), long_ad allocation descriptors split
/// into several extents, unrecorded (sparse) extents for zero blocks, allocation extent
/// descriptors when a file has many extents, embedded data for small files and directories,
/// 8- and 16-bit CS0 names, symlinks, and (optionally) a metadata partition whose metadata file
/// is split into two extents. 7-Zip 16.02 reads only the plainest of these (file entries, type 1
/// partition, no symlinks, holes or allocation extent descriptors), and is used on those.
package struct UDFImageBuilder {
    package var metadataPartition = true
    package var extendedEntries = true
    package var label = "BuiltUDF"
    /// No unrecorded extents and no allocation extent descriptors (for 7-Zip 16.02, which has neither).
    package var simpleAllocation = false
    /// The metadata file in two extents with a gap between them (7-Zip reads only one extent).
    package var splitMetadata = true

    private enum Item {
        case directory([(String, Node)])
        case file([UInt8])
        case symlink(String)
    }
    private final class Node {
        let item: Item
        let stat: stat
        var icb = 0                                   // metadata block of the ICB
        var chunks: [(block: Int?, length: Int)] = []  // file data: data block, or nil for a hole
        init(_ item: Item, _ stat: stat) { self.item = item; self.stat = stat }
    }

    private var meta: [Int: [UInt8]] = [:]
    private var metaCount = 0
    private var dataBlocks: [[UInt8]] = []
    package var uniqueID: UInt64 = 16

    package init() {}

    // MARK: Building

    package mutating func build(from source: String, to path: String) throws {
        let root = try load(source)
        assignData(root)
        metaCount = 1                                  // block 0: the file set descriptor
        root.icb = allocate(1)
        try writeDirectory(root, parent: root)
        meta[0] = fileSetDescriptor(root: root.icb)
        let partitionLength = (metadataPartition ? 2 : 0) + dataBlocks.count + metaCount + 3
        let partitionStart = 257
        let total = partitionStart + partitionLength + 1
        var disc = [UInt8](repeating: 0, count: total * 2048)
        func put(_ sector: Int, _ bytes: [UInt8]) { disc.replaceSubrange((sector * 2048)..<(sector * 2048 + bytes.count), with: bytes) }

        for (i, id) in ["BEA01", "NSR03", "TEA01"].enumerated() { put(16 + i, [0] + Array(id.utf8) + [1]) }
        for base in [32, 48] {
            put(base, primaryVolumeDescriptor(at: base))
            put(base + 1, partitionDescriptor(at: base + 1, start: partitionStart, length: partitionLength))
            put(base + 2, logicalVolumeDescriptor(at: base + 2))
            put(base + 3, Self.tag(8, location: base + 3, [UInt8](repeating: 0, count: 512)))
        }
        put(64, integrityDescriptor())
        put(256, anchor(at: 256))
        put(total - 1, anchor(at: total - 1))
        // Physical partition: [metadata file, mirror], file data, metadata extent A, gap, extent B.
        let dataBase = metadataPartition ? 2 : 0
        for (i, block) in dataBlocks.enumerated() { put(partitionStart + dataBase + i, block) }
        let split = splitMetadata ? metaCount / 2 : 0
        let extentA = dataBase + dataBlocks.count, extentB = extentA + split + 3
        for (block, bytes) in meta {
            let physical: Int
            if metadataPartition { physical = block < split ? extentA + block : extentB + block - split } else { physical = extentA + block }
            put(partitionStart + physical, bytes)
        }
        if metadataPartition {
            var ads: [UInt8] = []
            if split > 0 { ads += Self.shortAD(length: split * 2048, block: extentA) }
            ads += Self.shortAD(length: (metaCount - split) * 2048, block: extentB)
            for (i, type) in [UInt8(250), 251].enumerated() {
                put(partitionStart + i, fileEntry(type: type, mode: 0, stat: nil, size: UInt64(metaCount * 2048), adType: 0,
                                                 allocation: ads, location: i, links: 1))
            }
        }
        try Data(disc).write(to: URL(fileURLWithPath: path))
    }

    private func load(_ path: String) throws -> Node {
        var st = stat()
        guard lstat(path, &st) == 0 else { throw POSIXError(.EIO) }
        switch st.st_mode & S_IFMT {
        case S_IFDIR:
            // Names longer than a UDF file identifier (255 bytes of CS0) are left out.
            let names = try FileManager.default.contentsOfDirectory(atPath: path).sorted().filter { Self.cs0($0).count <= 255 }
            return Node(.directory(try names.map { ($0, try load(path + "/" + $0)) }), st)
        case S_IFLNK:
            return Node(.symlink(try FileManager.default.destinationOfSymbolicLink(atPath: path)), st)
        default:
            return Node(.file([UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))), st)
        }
    }

    /// Cuts file data into extents of one to three blocks; all-zero extents become holes.
    private mutating func assignData(_ node: Node) {
        switch node.item {
        case .directory(let children): children.forEach { assignData($0.1) }
        case .file(let bytes) where bytes.count > 1500 || bytes.count % 3 == 1:
            var offset = 0, step = 0
            while offset < bytes.count {
                let length = min(bytes.count - offset, 2048 * (1 + step % 3))
                let piece = Array(bytes[offset..<(offset + length)])
                step += 1
                if !simpleAllocation && piece.allSatisfy({ $0 == 0 }) && length % 2048 == 0 {
                    node.chunks.append((nil, length))
                } else {
                    node.chunks.append((dataBlocks.count, length))
                    for start in stride(from: 0, to: length, by: 2048) {
                        var block = Array(piece[start..<min(length, start + 2048)])
                        block += [UInt8](repeating: 0, count: 2048 - block.count)
                        dataBlocks.append(block)
                    }
                }
                offset += length
            }
        default: break
        }
    }

    private mutating func allocate(_ count: Int) -> Int { defer { metaCount += count }; return metaCount }

    package var metaRef: UInt16 { metadataPartition ? 1 : 0 }
    /// Metadata blocks are partition-0 blocks after the file data when there is no metadata partition.
    package func metaBlock(_ b: Int) -> Int { metadataPartition ? b : dataBlocks.count + b }
    package func dataBlock(_ d: Int) -> Int { metadataPartition ? 2 + d : d }

    private mutating func writeDirectory(_ node: Node, parent: Node) throws {
        guard case .directory(let children) = node.item else { return }
        for (_, child) in children { child.icb = allocate(1) }
        var data = fid(name: nil, characteristics: 0x0A, icb: parent.icb)
        for (name, child) in children {
            if case .directory = child.item { data += fid(name: name, characteristics: 0x02, icb: child.icb) } else { data += fid(name: name, characteristics: 0, icb: child.icb) }
        }
        let subdirectories = children.filter { if case .directory = $0.1.item { return true } else { return false } }.count
        let base = extendedEntries ? 216 : 176
        if data.count <= 2048 - base {
            meta[node.icb] = fileEntry(type: 4, mode: node.stat.st_mode, stat: node.stat, size: UInt64(data.count), adType: 3,
                                       allocation: data, location: node.icb, links: 1 + subdirectories)
        } else {
            let first = allocate((data.count + 2047) / 2048)
            for i in 0..<((data.count + 2047) / 2048) {
                var block = Array(data[(i * 2048)..<min(data.count, (i + 1) * 2048)])
                block += [UInt8](repeating: 0, count: 2048 - block.count)
                meta[first + i] = block
            }
            meta[node.icb] = fileEntry(type: 4, mode: node.stat.st_mode, stat: node.stat, size: UInt64(data.count), adType: 1,
                                       allocation: Self.longAD(length: data.count, block: metaBlock(first), partition: metaRef),
                                       location: node.icb, links: 1 + subdirectories)
        }
        for (_, child) in children {
            switch child.item {
            case .directory: try writeDirectory(child, parent: node)
            case .symlink(let target):
                meta[child.icb] = fileEntry(type: 12, mode: child.stat.st_mode, stat: child.stat, size: UInt64(Self.pathComponents(target).count),
                                            adType: 3, allocation: Self.pathComponents(target), location: child.icb, links: 1)
            case .file(let bytes):
                if child.chunks.isEmpty {
                    meta[child.icb] = fileEntry(type: 5, mode: child.stat.st_mode, stat: child.stat, size: UInt64(bytes.count), adType: 3,
                                                allocation: bytes, location: child.icb, links: 1)
                } else {
                    var ads = child.chunks.map { chunk -> [UInt8] in
                        chunk.block.map { Self.longAD(length: chunk.length, block: dataBlock($0), partition: 0) }
                            ?? Self.longAD(length: chunk.length, block: 0, partition: 0, type: 1)
                    }
                    // More than ten extents: the rest go to an allocation extent descriptor.
                    if ads.count > 10 && !simpleAllocation {
                        let aed = allocate(1)
                        let rest = ads[9...].flatMap { $0 }
                        var descriptor = [UInt8](repeating: 0, count: 24) + rest
                        Self.put32(&descriptor, 20, UInt32(rest.count))
                        meta[aed] = Self.tag(258, location: aed, descriptor)
                        ads = Array(ads[..<9]) + [Self.longAD(length: 2048, block: metaBlock(aed), partition: metaRef, type: 3)]
                    }
                    meta[child.icb] = fileEntry(type: 5, mode: child.stat.st_mode, stat: child.stat, size: UInt64(bytes.count), adType: 1,
                                                allocation: ads.flatMap { $0 }, location: child.icb, links: 1)
                }
            }
        }
    }
}
