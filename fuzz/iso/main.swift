// libFuzzer harness: the disc reader (Sources/ISO9660) over an image held in memory.
//
// Compiled together with Sources/ISO9660/*.swift into one module (fuzz/build.sh), so it sees
// the module's internals as the module itself does. The image is opened with the automatic
// choice of tree, then once more for each other tree the disc has (Rock Ridge, UDF, Joliet,
// plain ISO 9660), and each tree is walked whole, bounded: every directory listed and looked
// up in, the head and tail of every file read, every symlink's target taken. El Torito images
// reach the same code through their boot record descriptor and catalog.
//
// Input: a sparse image, so that an image is a few KB instead of hundreds (a UDF anchor sits at
// sector 256; most sectors are zeros): records `[skip (2 bytes, little-endian), 2048 bytes]`,
// each one the next non-zero sector after `skip` zero sectors. A short last record is a sector
// padded with zeros; every other sector reads as zeros (fuzz/iso/sparse.py writes the seeds).

/// A `SectorReader` over the sparse image; the sectors' bytes stay in the fuzzer's buffer.
struct SparseImageReader: SectorReader, @unchecked Sendable {
    // Valid for the duration of one LLVMFuzzerTestOneInput call; the Volume does not outlive it.
    let input: UnsafeRawBufferPointer
    /// Sector number -> offset of its bytes in `input`.
    let sectors: [UInt64: Int]
    let sectorCount: UInt64

    init(_ input: UnsafeRawBufferPointer) {
        self.input = input
        var map: [UInt64: Int] = [:]
        var next: UInt64 = 0
        var at = 0
        while at + 2 < input.count {
            next += UInt64(input[at]) | UInt64(input[at + 1]) << 8
            map[next] = at + 2
            next += 1
            at += 2 + sectorSize
        }
        sectors = map
        sectorCount = next
    }

    func readSectors(_ sector: UInt64, count: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        precondition(count >= 0 && buffer.count == count * sectorSize, "the reader was asked for a malformed buffer")
        guard sector <= sectorCount, UInt64(count) <= sectorCount - sector else {
            throw DiscFormatError(.outOfRange, "read past the end of the input")
        }
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        for i in 0..<count {
            guard let start = sectors[sector + UInt64(i)] else { continue }
            let end = min(input.count, start + sectorSize)
            UnsafeMutableRawBufferPointer(rebasing: buffer[(i * sectorSize)...])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: input[start..<end]))
        }
    }
}

/// Small limits: a hostile image is cut short quickly instead of being walked for seconds.
let limits = OpenOptions(maxEntriesPerDirectory: 2000, maxNodes: 5000, maxDepth: 48,
                         maxDirectoryBytes: 1 << 20, maxExtentsPerFile: 4096,
                         maxTotalDirectoryBytes: 8 << 20)

func walk(_ volume: Volume) {
    var queue: [NodeID] = [Volume.rootID]
    var seen: Set<NodeID> = []
    while let id = queue.popLast() {
        guard seen.insert(id).inserted else { continue }
        precondition(seen.count <= limits.maxNodes, "more nodes than maxNodes")
        guard let attributes = try? volume.attributes(of: id) else { continue }
        switch attributes.kind {
        case .directory:
            guard let children = try? volume.children(of: id) else { continue }
            precondition(children.count <= limits.maxEntriesPerDirectory + 2, "a listing over the limit")
            for child in children {
                let found = try? volume.lookup(child.name, in: id)
                precondition(found == nil || found?.id == child.id, "lookup found another node than the listing")
                queue.append(child.id)
            }
        case .regularFile:
            _ = try? volume.extents(of: id)
            let head = (try? volume.read(id, at: 0, count: 4096)) ?? []
            precondition(head.count <= 4096, "read returned more than asked")
            if attributes.size > 4096 {
                _ = try? volume.read(id, at: attributes.size - 100, count: 4096)
                _ = try? volume.read(id, at: attributes.size / 2, count: 1)
            }
            _ = try? volume.read(id, at: attributes.size, count: 10)  // at the end: nothing
        case .symlink:
            let target = attributes.symlinkTarget ?? ""
            precondition(UInt64(target.utf8.count) == attributes.size, "a symlink's size is not its target's length")
        case .other:
            _ = try? volume.read(id, at: 0, count: 16)
        }
    }
    _ = try? volume.attributes(of: 0)
    _ = try? volume.children(of: NodeID(volume.nodeCount + 1))
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDiscReader(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let reader = SparseImageReader(UnsafeRawBufferPointer(start: data, count: size))
    guard let volume = try? Volume.open(reader, options: limits) else { return 0 }
    walk(volume)
    for format in volume.availableFormats where format != volume.format {
        var options = limits
        options.format = format
        if let other = try? Volume.open(reader, options: options) { walk(other) }
    }
    return 0
}
