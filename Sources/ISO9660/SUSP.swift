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
    /// Limits against hostile continuation chains.
    static let maxContinuations = 32
    static let maxContinuationLength = 64 << 10
    static let maxTotalBytes = 256 << 10

    /// The SP entry that opens the root "." record's system use area: returns the skip length
    /// (bytes to ignore at the start of every other system use area) when SUSP is in use.
    static func spSkip(_ area: [UInt8]) -> Int? {
        guard area.count >= 7, area[0] == 0x53, area[1] == 0x50, area[2] >= 7,
              area[4] == 0xBE, area[5] == 0xEF else { return nil }
        return Int(area[6])
    }

    /// All entries of a system use area, its continuation areas included.
    static func entries(_ area: [UInt8], blockSize: UInt64, cache: inout SectorCache) -> [SUSPEntry] {
        var result: [SUSPEntry] = []
        var current = area
        var hops = 0
        var total = area.count
        while true {
            var next: (offset: UInt64, length: Int)?
            var position = 0
            scan: while position + 4 <= current.count {
                let length = Int(current[position + 2])
                guard length >= 4, position + length <= current.count else { break }
                let signature = String(decoding: current[position..<(position + 2)], as: UTF8.self)
                let data = Array(current[(position + 4)..<(position + length)])
                position += length
                switch signature {
                case "ST":
                    break scan
                case "CE" where data.count >= 24:
                    let block = UInt64(data.le32(0)), offset = UInt64(data.le32(8)), size = Int(data.le32(16))
                    if next == nil { next = (block &* blockSize &+ offset, size) }
                case "PD":
                    continue
                default:
                    result.append(SUSPEntry(signature: signature, version: current[position - length + 3], data: data))
                }
            }
            guard let (offset, length) = next, hops < maxContinuations, length > 0,
                  length <= maxContinuationLength, total + length <= maxTotalBytes,
                  let bytes = try? cache.bytes(at: offset, count: length) else { break }
            hops += 1
            total += length
            current = bytes
        }
        return result
    }
}
