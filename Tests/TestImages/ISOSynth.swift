import Foundation

/// Writes ISO 9660 directory records and Rock Ridge entries by hand and grafts them onto a small
/// real image, for hostile cases no tool writes and for directories too big to make with a tool
/// in a test's time (xorriso needs minutes for 200,000 files; this needs well under a second).
package enum ISOSynth {
    /// A both-endian 32-bit field (ECMA-119 7.3.3).
    package static func both32(_ value: UInt32) -> [UInt8] {
        let le = (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * UInt32($0))) }
        return le + le.reversed()
    }

    /// One directory record (ECMA-119 9.1): `identifier` is the ISO name, `systemUse` the SUSP bytes.
    package static func record(_ identifier: [UInt8], extent: UInt32, length: UInt32, directory: Bool = false,
                       systemUse: [UInt8] = []) -> [UInt8] {
        var r: [UInt8] = [0, 0] + both32(extent) + both32(length)
        r += [126, 1, 1, 0, 0, 0, 0]                          // 2026-01-01 00:00:00 UTC
        r += [directory ? 2 : 0, 0, 0, 1, 0, 0, 1, UInt8(identifier.count)] + identifier
        if identifier.count % 2 == 0 { r.append(0) }
        r += systemUse
        if r.count % 2 == 1 { r.append(0) }
        precondition(r.count <= 255, "a directory record holds at most 255 bytes")
        r[0] = UInt8(r.count)
        return r
    }

    /// A SUSP entry: signature, length, version 1, then `data`.
    package static func entry(_ signature: String, _ data: [UInt8]) -> [UInt8] {
        Array(signature.utf8) + [UInt8(4 + data.count), 1] + data
    }

    /// An NM entry; `continues` sets the CONTINUE flag.
    package static func nm(_ name: [UInt8], continues: Bool = false) -> [UInt8] {
        entry("NM", [continues ? 1 : 0] + name)
    }

    /// A CE entry: the continuation area is `length` bytes at `offset` in logical block `block`.
    package static func ce(block: UInt32, offset: UInt32, length: UInt32) -> [UInt8] {
        entry("CE", both32(block) + both32(offset) + both32(length))
    }

    /// Records laid into whole sectors, none across a sector boundary (ECMA-119 6.8.1.1).
    package static func extent(_ records: [[UInt8]]) -> [UInt8] {
        var data: [UInt8] = []
        data.reserveCapacity(records.reduce(0) { $0 + $1.count } + 2048)
        var used = 0
        for record in records {
            if used + record.count > 2048 {
                data += [UInt8](repeating: 0, count: 2048 - used)
                used = 0
            }
            data += record
            used += record.count
        }
        data += [UInt8](repeating: 0, count: (2048 - data.count % 2048) % 2048)
        return data
    }

    /// Appends `data` at the next whole sector of the image; returns its first block.
    @discardableResult
    package static func append(_ image: inout [UInt8], _ data: [UInt8]) -> UInt32 {
        image += [UInt8](repeating: 0, count: (2048 - image.count % 2048) % 2048)
        let block = UInt32(image.count / 2048)
        image += data
        image += [UInt8](repeating: 0, count: (2048 - image.count % 2048) % 2048)
        return block
    }

    /// Points the directory record at `record` to a new extent holding `records` (with "." and
    /// ".." records in front), appended to the image. Returns the extent's first block.
    @discardableResult
    package static func graftDirectory(_ image: inout [UInt8], recordAt record: Int, parentBlock: UInt32,
                               _ records: [[UInt8]]) -> UInt32 {
        let firstBlock = UInt32((image.count + 2047) / 2048)
        let dots = [ISOSynth.record([0], extent: firstBlock, length: 0, directory: true),
                    ISOSynth.record([1], extent: parentBlock, length: 2048, directory: true)]
        var data = extent(dots + records)
        let length = UInt32(data.count)
        data.replaceSubrange(10..<18, with: both32(length))        // "." names its own length
        let block = append(&image, data)
        ISOPatch.setBoth32(&image, at: record + 2, block)
        ISOPatch.setBoth32(&image, at: record + 10, length)
        return block
    }
}
