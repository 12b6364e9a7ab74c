/// UDF file entries (ECMA-167 4/14.9), extended file entries (4/14.17), allocation descriptors
/// (4/14.14) and the address translation through partition maps.
struct UDFFileEntry: Sendable {
    var fileType: UInt8
    var icbFlags: UInt16
    var uid: UInt32
    var gid: UInt32
    var permissions: UInt32
    var linkCount: UInt16
    var informationLength: UInt64
    var accessTime: Timespec
    var modificationTime: Timespec
    var attributeTime: Timespec
    /// The allocation descriptors (or the embedded data).
    var allocation: [UInt8]
    /// Where this entry is, for short_ad partitions and for cycle detection.
    var address: UDFAddress
    var byteOffset: UInt64

    /// ICB tag flags bits 0-2: 0 short_ad, 1 long_ad, 2 ext_ad, 3 data embedded in the entry.
    var descriptorType: UInt16 { icbFlags & 7 }
}

struct UDFReader: Sendable {
    let disc: Disc
    let partitions: [UDFPartition]

    static let maxIndirections = 8
    static let maxAllocationExtents = 4096

    /// Absolute disc ranges for `length` bytes from `block` of a partition.
    func resolve(_ address: UDFAddress, length: UInt64) throws -> [Extent] {
        guard Int(address.partition) < partitions.count else {
            throw DiscFormatError.corrupt("UDF partition reference \(address.partition) does not exist")
        }
        switch partitions[Int(address.partition)] {
        case .physical(let start, _):
            return [.disc(byteOffset: (start &+ UInt64(address.block)) &* UInt64(sectorSize), length: length)]
        case .metadata(let fileExtents):
            // Positions in the metadata file, mapped through its own extents.
            var skip = UInt64(address.block) * UInt64(sectorSize), remaining = length
            var result: [Extent] = []
            for extent in fileExtents where remaining > 0 {
                if skip >= extent.length { skip -= extent.length; continue }
                let take = min(extent.length - skip, remaining)
                switch extent {
                case .disc(let offset, _): result.append(.disc(byteOffset: offset &+ skip, length: take))
                default: result.append(.zeros(length: take))
                }
                skip = 0
                remaining -= take
            }
            guard remaining == 0 else { throw DiscFormatError.corrupt("UDF metadata block \(address.block) is past the metadata file") }
            return result
        case .virtual(let physicalIndex, let table):
            // Each block is mapped on its own; runs of consecutive blocks are merged.
            var result: [Extent] = []
            var block = Int(address.block), remaining = length
            while remaining > 0 {
                guard block < table.count, table[block] != .max, result.count < 1 << 16 else {
                    throw DiscFormatError.corrupt("UDF virtual block \(block) is not in the VAT")
                }
                let take = min(remaining, UInt64(sectorSize))
                let piece = try resolve(UDFAddress(block: table[block], partition: UInt16(physicalIndex)), length: take)
                if case .disc(let previousOffset, let previousLength)? = result.last, case .disc(let offset, _)? = piece.first,
                   previousOffset &+ previousLength == offset {
                    result[result.count - 1] = .disc(byteOffset: previousOffset, length: previousLength + take)
                } else {
                    result += piece
                }
                block += 1
                remaining -= take
            }
            return result
        case .unsupported(let why):
            throw DiscFormatError.unsupported(why)
        }
    }

    /// Bytes of a list of extents, at most `limit` of them.
    func bytes(of extents: [Extent], limit: Int) throws -> [UInt8] { try disc.bytes(of: extents, count: limit) }

    /// One logical block.
    func block(_ address: UDFAddress) throws -> [UInt8] {
        try bytes(of: resolve(address, length: UInt64(sectorSize)), limit: sectorSize)
    }

    /// The file entry or extended file entry at an ICB address, following indirect entries.
    func fileEntry(_ start: UDFAddress) throws -> UDFFileEntry {
        var address = start
        for _ in 0...UDFReader.maxIndirections {
            let b = try block(address)
            let tag = UDFTag.verify(b)
            if tag == UDFTag.indirectEntry {
                address = UDFAddress(block: b.le32(40), partition: b.le16(44))
                continue
            }
            let extended = tag == UDFTag.extendedFileEntry
            guard extended || tag == UDFTag.fileEntry else {
                throw DiscFormatError.corrupt("no UDF file entry at block \(address.block) of partition \(address.partition)")
            }
            let base = extended ? 216 : 176
            let eaLength = Int(b.le32(base - 8)), adLength = Int(b.le32(base - 4))
            guard eaLength >= 0, adLength >= 0, base + eaLength + adLength <= b.count else {
                throw DiscFormatError.corrupt("UDF file entry at block \(address.block) has impossible lengths")
            }
            let timeBase = extended ? 80 : 72
            var byteOffset: UInt64 = 0
            if case .disc(let offset, _)? = try resolve(address, length: 1).first { byteOffset = offset }
            return UDFFileEntry(
                fileType: b.u8(27), icbFlags: b.le16(34), uid: b.le32(36), gid: b.le32(40), permissions: b.le32(44),
                linkCount: b.le16(48), informationLength: b.le64(56),
                accessTime: CivilTime.udf(b, at: timeBase), modificationTime: CivilTime.udf(b, at: timeBase + 12),
                attributeTime: CivilTime.udf(b, at: extended ? 116 : 96),
                allocation: b.slice(base + eaLength, adLength), address: address, byteOffset: byteOffset)
        }
        throw DiscFormatError.corrupt("too many UDF indirect entries from block \(start.block)")
    }

    /// The file's data as disc extents, cut to its information length (a truncated view when the
    /// descriptors describe less).
    func dataExtents(_ entry: UDFFileEntry, limit: Int) throws -> [Extent] {
        if entry.descriptorType == 3 {
            return [.inline(Array(entry.allocation.prefix(Int(min(entry.informationLength, UInt64(entry.allocation.count))))))]
        }
        let width: Int
        switch entry.descriptorType {
        case 0: width = 8
        case 1: width = 16
        case 2: width = 20
        default: throw DiscFormatError.unsupported("UDF allocation descriptor type \(entry.descriptorType)")
        }
        var result: [Extent] = []
        var remaining = entry.informationLength
        var area = entry.allocation
        var position = 0
        var hops = 0
        var continuations: Set<UDFAddress> = []
        while remaining > 0, result.count < limit {
            guard position + width <= area.count else { break }
            let raw = area.le32(position)
            let length = UInt64(raw & 0x3FFF_FFFF), type = raw >> 30
            let address: UDFAddress
            switch width {
            case 8: address = UDFAddress(block: area.le32(position + 4), partition: entry.address.partition)
            case 16: address = UDFAddress(block: area.le32(position + 4), partition: area.le16(position + 8))
            default: address = UDFAddress(block: area.le32(position + 12), partition: area.le16(position + 16))
            }
            position += width
            if length == 0 { break }
            if type == 3 {
                // The rest of the descriptors continue in an allocation extent descriptor.
                // A descriptor already read means the chain loops: what was found so far is the file.
                hops += 1
                guard hops <= UDFReader.maxAllocationExtents, continuations.insert(address).inserted else { break }
                let b = try block(address)
                guard UDFTag.verify(b) == UDFTag.allocationExtent else { break }
                area = b.slice(24, Int(min(b.le32(20), UInt32(sectorSize - 24))))
                position = 0
                continue
            }
            let take = min(length, remaining)
            if type == 0 {
                result += try resolve(address, length: take)
            } else {
                result.append(.zeros(length: take))
            }
            remaining -= take
        }
        return result
    }
}
