/// ECMA-167 descriptor tags, CS0 strings and the UDF volume structure: anchor, volume descriptor
/// sequence, partitions (type 1 and the UDF 2.50+ metadata partition) and the file set descriptor.
enum UDFTag {
    static let primaryVolume: UInt16 = 1, anchor: UInt16 = 2, pointer: UInt16 = 3
    static let partition: UInt16 = 5, logicalVolume: UInt16 = 6, terminating: UInt16 = 8
    static let fileSet: UInt16 = 256, fileIdentifier: UInt16 = 257, allocationExtent: UInt16 = 258
    static let indirectEntry: UInt16 = 259, fileEntry: UInt16 = 261, extendedFileEntry: UInt16 = 266

    /// The tag identifier of a descriptor at `offset` in `b`, or nil when the tag checksum or the
    /// CRC of the descriptor body is wrong (ECMA-167 3/7.2).
    static func verify(_ b: [UInt8], at offset: Int = 0) -> UInt16? {
        guard offset >= 0, offset + 16 <= b.count else { return nil }
        var sum: UInt8 = 0
        for i in 0..<16 where i != 4 { sum &+= b[offset + i] }
        guard sum == b[offset + 4] else { return nil }
        let crcLength = Int(b.le16(offset + 10))
        if offset + 16 + crcLength <= b.count, crc16(b, from: offset + 16, count: crcLength) != b.le16(offset + 8) { return nil }
        return b.le16(offset)
    }

    /// CRC-16/CCITT (polynomial 0x1021, initial value 0), as ECMA-167 specifies for descriptors.
    static func crc16(_ b: [UInt8], from: Int, count: Int) -> UInt16 {
        var crc: UInt16 = 0
        for i in from..<(from + count) {
            crc = (crc << 8) ^ crcTable[Int(UInt8(crc >> 8) ^ b[i])]
        }
        return crc
    }

    static let crcTable: [UInt16] = (0..<256).map { byte in
        var crc = UInt16(byte) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }
}

/// OSTA CS0 text (UDF 2.1.1): a compression id byte, 8 (Latin-1) or 16 (UTF-16BE), then the text.
enum CS0 {
    static func decode(_ bytes: [UInt8]) -> String? {
        guard let id = bytes.first else { return nil }
        let body = Array(bytes.dropFirst())
        switch id {
        case 8, 254:
            var text = ""
            text.unicodeScalars.append(contentsOf: body.map { Unicode.Scalar($0) })
            return text
        case 16, 255:
            return decodeUTF16BE(body)
        default:
            return nil
        }
    }

    /// A fixed-size dstring field: the last byte holds the used length.
    static func dstring(_ b: [UInt8], at offset: Int, size: Int) -> String {
        let used = Int(b.u8(offset + size - 1))
        guard used > 0, used < size else { return "" }
        return (decode(b.slice(offset, used)) ?? "").trimmingSpaces()
    }
}

/// A long_ad / lb_addr: a block within a partition reference.
struct UDFAddress: Sendable, Hashable {
    var block: UInt32
    var partition: UInt16
}

/// How logical blocks of one partition reference map onto the disc.
enum UDFPartition: Sendable {
    /// Blocks from an absolute starting sector.
    case physical(startSector: UInt64, blocks: UInt64)
    /// UDF 2.50 metadata partition: blocks are positions in the metadata file, whose extents are given.
    case metadata(extents: [Extent])
    /// UDF 1.50+ virtual partition of write-once discs: block n is block `table[n]` of the
    /// physical partition at `physicalIndex` (the virtual allocation table, VAT).
    case virtual(physicalIndex: Int, table: [UInt32])
    /// A partition type this reader does not handle.
    case unsupported(String)
}

/// The parts of a UDF logical volume needed to walk its files.
struct UDFVolumeStructure: Sendable {
    var label: String
    var partitions: [UDFPartition]
    var rootICB: UDFAddress

    static let maxSequenceSectors = 256

    /// Finds the anchor (sector 256, then N-256, then N-1) and reads the volume.
    static func read(_ disc: Disc) throws -> UDFVolumeStructure {
        var anchor: [UInt8]?
        let n = disc.sectorCount
        for candidate in [256, n &- 256, n &- 1] where candidate < n && candidate >= 256 {
            if let data = try? disc.sector(candidate), UDFTag.verify(data) == UDFTag.anchor {
                anchor = data
                break
            }
        }
        guard let anchor else { throw DiscFormatError(.notRecognized, "no UDF anchor volume descriptor pointer at sector 256, N-256 or N-1") }
        var lastError = DiscFormatError.corrupt("the UDF volume descriptor sequences are unreadable")
        for offset in [16, 24] {
            let length = UInt64(anchor.le32(offset)), location = UInt64(anchor.le32(offset + 4))
            do {
                return try readSequence(disc, location: location, sectors: length / UInt64(sectorSize))
            } catch let error as DiscFormatError {
                lastError = error
            }
        }
        throw lastError
    }

    /// Reads the volume descriptor sequence (following volume descriptor pointers) and the file set.
    private static func readSequence(_ disc: Disc, location: UInt64, sectors: UInt64) throws -> UDFVolumeStructure {
        var sector = location, end = location &+ min(sectors, UInt64(maxSequenceSectors))
        var seen = 0
        var physical: [UInt16: (UInt64, UInt64)] = [:]
        var logicalVolume: [UInt8]?
        var volumeLabel = ""
        scan: while sector < end, seen < maxSequenceSectors {
            seen += 1
            guard let data = try? disc.sector(sector), let tag = UDFTag.verify(data) else { break }
            sector += 1
            switch tag {
            case UDFTag.primaryVolume where volumeLabel.isEmpty:
                volumeLabel = CS0.dstring(data, at: 24, size: 32)
            case UDFTag.pointer:
                sector = UInt64(data.le32(24))
                end = sector &+ min(UInt64(data.le32(20)) / UInt64(sectorSize), UInt64(maxSequenceSectors))
            case UDFTag.partition:
                let number = data.le16(22)
                if physical[number] == nil { physical[number] = (UInt64(data.le32(188)), UInt64(data.le32(192))) }
            case UDFTag.logicalVolume where logicalVolume == nil:
                logicalVolume = data
            case UDFTag.terminating:
                break scan
            default:
                continue
            }
        }
        guard let lvd = logicalVolume else { throw DiscFormatError.corrupt("the UDF volume has no logical volume descriptor") }
        let blockSize = lvd.le32(212)
        guard blockSize == UInt32(sectorSize) else {
            throw DiscFormatError.unsupported("UDF logical block size \(blockSize) (only 2048 is supported)")
        }
        let partitions = try partitionMaps(lvd, physical: physical, disc: disc)
        var structure = UDFVolumeStructure(label: CS0.dstring(lvd, at: 84, size: 128), partitions: partitions,
                                           rootICB: UDFAddress(block: 0, partition: 0))
        if structure.label.isEmpty { structure.label = volumeLabel }
        // The file set descriptor, from the logical volume contents use (a long_ad at 248).
        let fsdAddress = UDFAddress(block: lvd.le32(252), partition: lvd.le16(256))
        let fsd = try UDFReader(disc: disc, partitions: partitions).block(fsdAddress)
        guard UDFTag.verify(fsd) == UDFTag.fileSet else { throw DiscFormatError.corrupt("no UDF file set descriptor at the logical volume's address") }
        structure.rootICB = UDFAddress(block: fsd.le32(404), partition: fsd.le16(408))
        return structure
    }

    /// Partition maps (ECMA-167 3/10.7; UDF 2.2.8-2.2.10) in reference-number order.
    private static func partitionMaps(_ lvd: [UInt8], physical: [UInt16: (UInt64, UInt64)], disc: Disc) throws -> [UDFPartition] {
        let count = min(Int(lvd.le32(268)), 64)
        let tableLength = min(Int(lvd.le32(264)), lvd.count - 440)
        var offset = 440
        var maps: [UDFPartition] = []
        var pendingMetadata: [(index: Int, physicalIndex: UInt16, file: UInt32, mirror: UInt32)] = []
        var pendingVirtual: [(index: Int, number: UInt16)] = []
        var referenceOf: [UInt16: Int] = [:]    // partition number -> index of its type 1 map
        for _ in 0..<count {
            let type = lvd.u8(offset), length = Int(lvd.u8(offset + 1))
            guard length >= 2, offset + length <= 440 + tableLength else { break }
            if type == 1 {
                let number = lvd.le16(offset + 4)
                referenceOf[number] = maps.count
                if let (start, blocks) = physical[number] {
                    maps.append(.physical(startSector: start, blocks: blocks))
                } else {
                    maps.append(.unsupported("partition \(number) has no partition descriptor"))
                }
            } else if type == 2 {
                let identifier = lvd.paddedText(offset + 5, 23)
                let number = lvd.le16(offset + 38)
                if identifier.hasPrefix("*UDF Metadata Partition") {
                    pendingMetadata.append((maps.count, number, lvd.le32(offset + 40), lvd.le32(offset + 44)))
                    maps.append(.unsupported("metadata partition"))
                } else if identifier.hasPrefix("*UDF Virtual Partition") {
                    pendingVirtual.append((maps.count, number))
                    maps.append(.unsupported("UDF virtual partition without a readable VAT"))
                } else if identifier.hasPrefix("*UDF Sparable Partition"), let (start, blocks) = physical[number] {
                    maps.append(.physical(startSector: start, blocks: blocks))   // sparing tables ignored
                } else {
                    maps.append(.unsupported("UDF partition type \"\(identifier)\" is not supported"))
                }
            } else {
                maps.append(.unsupported("UDF partition map type \(type) is not supported"))
            }
            offset += length
        }
        for pending in pendingVirtual {
            guard let physicalIndex = referenceOf[pending.number],
                  let table = virtualAllocationTable(disc: disc, partitions: maps, physicalIndex: physicalIndex) else { continue }
            maps[pending.index] = .virtual(physicalIndex: physicalIndex, table: table)
        }
        // The metadata file (or its mirror) is a file entry in the physical partition it names.
        for pending in pendingMetadata {
            guard let physicalIndex = referenceOf[pending.physicalIndex] else { continue }
            let reader = UDFReader(disc: disc, partitions: maps)
            for location in [pending.file, pending.mirror] {
                let address = UDFAddress(block: location, partition: UInt16(physicalIndex))
                if let entry = try? reader.fileEntry(address), let extents = try? reader.dataExtents(entry, limit: 1 << 16) {
                    maps[pending.index] = .metadata(extents: extents)
                    break
                }
            }
        }
        guard !maps.isEmpty else { throw DiscFormatError.corrupt("the UDF logical volume has no partition maps") }
        return maps
    }

    /// At most this many VAT entries are kept (a 16 MiB table).
    static let maxVATEntries = 4 << 20

    /// The VAT (UDF 2.2.11): a file entry in one of the last recorded sectors of the disc, of file
    /// type 248 (UDF 2.00+: a header, then 32-bit entries) or 0 (UDF 1.50: entries, then a 36-byte
    /// trailer naming "*UDF Virtual Alloc Tbl").
    private static func virtualAllocationTable(disc: Disc, partitions: [UDFPartition], physicalIndex: Int) -> [UInt32]? {
        guard case .physical(let start, _) = partitions[physicalIndex] else { return nil }
        let reader = UDFReader(disc: disc, partitions: partitions)
        let last = disc.sectorCount - 1
        for back in 0..<UInt64(32) where last >= start + back {
            let address = UDFAddress(block: UInt32(truncatingIfNeeded: last - back - start), partition: UInt16(physicalIndex))
            guard let entry = try? reader.fileEntry(address), entry.fileType == 248 || entry.fileType == 0,
                  entry.informationLength <= UInt64(maxVATEntries * 4 + 4096),
                  let extents = try? reader.dataExtents(entry, limit: 1024),
                  let data = try? reader.bytes(of: extents, limit: Int(entry.informationLength)) else { continue }
            var entries: ArraySlice<UInt8>
            if entry.fileType == 248 {
                let headerLength = Int(data.le16(0))
                guard headerLength >= 152, headerLength <= data.count else { continue }
                entries = data[headerLength...]
            } else {
                guard data.count >= 36, data.paddedText(data.count - 35, 23).hasPrefix("*UDF Virtual Alloc Tbl") else { continue }
                entries = data[..<(data.count - 36)]
            }
            let bytes = Array(entries)
            return (0..<(bytes.count / 4)).map { bytes.le32($0 * 4) }
        }
        return nil
    }
}
