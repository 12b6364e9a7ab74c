/// System Use Sharing Protocol (IEEE P1281): the entries of a directory record's system use
/// area, following CE continuation areas, stopping at ST.
struct SUSPEntry: Sendable {
    /// Two-letter signature, e.g. "NM".
    var signature: String
    var version: UInt8
    /// The entry's bytes after the 4-byte header.
    var data: [UInt8]
}

enum SUSP {
    /// Limits against hostile continuation chains: hops per record, entries kept per record, and
    /// continuation bytes read per directory (`SectorCache.continuationBytesLeft` starts here).
    /// Real discs stay far below the last: xorriso spends about 150 bytes of continuation on a
    /// 255-byte name, so 200,000 such names take 30 MiB; a hostile directory whose records all
    /// share one long chain stops there instead of costing 64 KiB per record.
    static let maxContinuations = 32
    static let maxEntries = 256
    static let maxBytesPerDirectory = 64 << 20

    /// The signatures anything here reads (Rock Ridge fields, and ER/RR to detect Rock Ridge).
    /// Other entries are stepped over without being copied: a hostile area full of tiny unknown
    /// entries then costs a scan, not an allocation per entry.
    private static let kept: Set<UInt16> = Set(["PX", "PN", "NM", "SL", "TF", "CL", "RE", "ER", "RR"].map(code))

    private static func code(_ signature: String) -> UInt16 {
        let bytes = Array(signature.utf8)
        return UInt16(bytes[0]) << 8 | UInt16(bytes[1])
    }

    /// The SP entry that opens the root "." record's system use area: returns the skip length
    /// (bytes to ignore at the start of every other system use area) when SUSP is in use.
    static func spSkip(_ area: [UInt8]) -> Int? {
        guard area.count >= 7, area[0] == 0x53, area[1] == 0x50, area[2] >= 7,
              area[4] == 0xBE, area[5] == 0xEF else { return nil }
        return Int(area[6])
    }

    /// All entries of a system use area, its continuation areas included.
    ///
    /// A continuation area must lie inside one logical block (as Linux also requires); one that
    /// does not, lies past the disc's end, or was already read for this record ends the chain, as
    /// does running out of the directory's continuation budget (kept in `cache`).
    static func entries(_ area: [UInt8], blockSize: UInt64, cache: inout SectorCache) -> [SUSPEntry] {
        var result: [SUSPEntry] = []
        var current = area
        var visited: [UInt64] = []
        while true {
            let next = scan(current, blockSize: blockSize, into: &result)
            guard let (offset, length) = next, visited.count < maxContinuations, result.count < maxEntries,
                  isInOneBlock(offset: offset, length: length, blockSize: blockSize), !visited.contains(offset),
                  length <= cache.continuationBytesLeft, let bytes = try? cache.bytes(at: offset, count: length) else { break }
            visited.append(offset)
            cache.continuationBytesLeft -= length
            current = bytes
        }
        return result
    }

    /// Whether a continuation area is non-empty and does not cross a logical block boundary.
    private static func isInOneBlock(offset: UInt64, length: Int, blockSize: UInt64) -> Bool {
        guard length > 0, blockSize > 0, UInt64(length) <= blockSize else { return false }
        return offset % blockSize + UInt64(length) <= blockSize
    }

    /// Appends the kept entries of one area (up to `maxEntries` in all); returns where its
    /// first CE entry says the entries continue.
    private static func scan(_ area: [UInt8], blockSize: UInt64, into result: inout [SUSPEntry]) -> (UInt64, Int)? {
        var next: (UInt64, Int)?
        var position = 0
        while position + 4 <= area.count {
            let length = Int(area[position + 2])
            guard length >= 4, position + length <= area.count else { break }
            let signature = UInt16(area[position]) << 8 | UInt16(area[position + 1])
            defer { position += length }
            if signature == 0x5354 { break }                                  // ST: the area ends
            if signature == 0x4345 {                                           // CE
                guard length >= 28, next == nil else { continue }
                let block = UInt64(area.le32(position + 4)), offset = UInt64(area.le32(position + 12))
                next = (block &* blockSize &+ offset, Int(area.le32(position + 20)))
                continue
            }
            guard kept.contains(signature), result.count < maxEntries else { continue }
            result.append(SUSPEntry(signature: String(decoding: area[position..<(position + 2)], as: UTF8.self),
                                    version: area[position + 3], data: Array(area[(position + 4)..<(position + length)])))
        }
        return next
    }
}
