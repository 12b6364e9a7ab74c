/// The size of one disc sector, in bytes.
let sectorSize = 2048

/// 2048-byte sector access to a disc; implemented by the caller (through the drive's SCSI emulator).
///
/// Implementations must be safe to call from several threads at once.
public protocol SectorReader: Sendable {
    /// The number of readable 2048-byte sectors.
    var sectorCount: UInt64 { get }
    /// Reads `count` whole 2048-byte sectors starting at `sector` into `buffer`
    /// (`buffer.count == count * 2048`). Throws on I/O errors or out-of-range.
    func readSectors(_ sector: UInt64, count: Int, into buffer: UnsafeMutableRawBufferPointer) throws
}

/// Byte-level reads over a `SectorReader`, with range checks against the disc's end.
struct Disc: Sendable {
    let reader: any SectorReader
    let sectorCount: UInt64
    var byteCount: UInt64 { sectorCount &* UInt64(sectorSize) }

    init(_ reader: any SectorReader) {
        self.reader = reader
        // Keep byte offsets representable: 2^52 sectors is far beyond any disc.
        self.sectorCount = min(reader.sectorCount, 1 << 52)
    }

    /// One whole sector.
    func sector(_ index: UInt64) throws -> [UInt8] {
        try sectors(index, count: 1)
    }

    /// `count` whole sectors; throws `outOfRange` past the end of the disc.
    func sectors(_ index: UInt64, count: Int) throws -> [UInt8] {
        guard count > 0 else { return [] }
        guard index < sectorCount, UInt64(count) <= sectorCount - index else {
            throw DiscFormatError(.outOfRange, "sector \(index) (+\(count)) is past the end of the disc (\(sectorCount) sectors)")
        }
        var buffer = [UInt8](repeating: 0, count: count * sectorSize)
        try buffer.withUnsafeMutableBytes { try reader.readSectors(index, count: count, into: $0) }
        return buffer
    }

    /// `count` bytes at an absolute byte offset; throws `outOfRange` past the end of the disc.
    func bytes(at offset: UInt64, count: Int) throws -> [UInt8] {
        guard count > 0 else { return [] }
        guard offset < byteCount, UInt64(count) <= byteCount - offset else {
            throw DiscFormatError(.outOfRange, "bytes \(offset)..+\(count) are past the end of the disc")
        }
        let first = offset / UInt64(sectorSize)
        let skip = Int(offset % UInt64(sectorSize))
        let sectorsNeeded = (skip + count + sectorSize - 1) / sectorSize
        let raw = try sectors(first, count: sectorsNeeded)
        if skip == 0 && raw.count == count { return raw }
        return Array(raw[skip..<(skip + count)])
    }

    /// Up to `count` bytes of the data a list of extents describes, from `offset` into it:
    /// disc bytes, zeros for sparse extents, embedded bytes as they are. Fewer only where
    /// the extents end.
    func bytes(of extents: [Extent], from offset: UInt64 = 0, count: Int) throws -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(min(count, 1 << 20))
        var extentStart: UInt64 = 0
        for extent in extents {
            let extentEnd = extentStart + extent.length
            defer { extentStart = extentEnd }
            let position = offset + UInt64(result.count)
            guard result.count < count, position < extentEnd else { continue }
            let skip = position - extentStart
            let take = Int(min(extent.length - skip, UInt64(count - result.count)))
            switch extent {
            case .disc(let byteOffset, _): result += try bytes(at: byteOffset &+ skip, count: take)
            case .zeros: result += [UInt8](repeating: 0, count: take)
            case .inline(let data): result += data[Int(skip)..<(Int(skip) + take)]
            }
        }
        return result
    }
}

/// A tiny per-walk cache of recently read sectors (SUSP continuation areas are often shared).
/// One lives for one directory scan, and carries that scan's SUSP continuation budget.
struct SectorCache {
    let disc: Disc
    private var entries: [(UInt64, [UInt8])] = []
    /// SUSP continuation bytes this scan may still read (see `SUSP.maxBytesPerDirectory`).
    var continuationBytesLeft = SUSP.maxBytesPerDirectory

    init(_ disc: Disc) { self.disc = disc }

    mutating func sector(_ index: UInt64) throws -> [UInt8] {
        if let hit = entries.first(where: { $0.0 == index }) { return hit.1 }
        let data = try disc.sector(index)
        if entries.count >= 8 { entries.removeFirst() }
        entries.append((index, data))
        return data
    }

    /// Bytes at an absolute offset, read through the cache (the range may span sectors).
    mutating func bytes(at offset: UInt64, count: Int) throws -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(count)
        var position = offset
        while result.count < count {
            let index = position / UInt64(sectorSize)
            let skip = Int(position % UInt64(sectorSize))
            let data = try sector(index)
            let take = min(sectorSize - skip, count - result.count)
            result.append(contentsOf: data[skip..<(skip + take)])
            position += UInt64(take)
        }
        return result
    }
}
