import Foundation

/// Finds and changes directory records in ISO 9660 image bytes, for the hostile-image tests.
package enum ISOPatch {
    /// The root directory's extent (block, length) from the primary volume descriptor.
    package static func root(_ b: [UInt8]) -> (block: Int, length: Int) {
        (Int(b.littleEndian32(at: 16 * 2048 + 156 + 2)), Int(b.littleEndian32(at: 16 * 2048 + 156 + 10)))
    }

    /// The byte offset of the record called `identifier` (ISO name, version suffix ignored) in a directory.
    package static func record(_ b: [UInt8], in dir: (block: Int, length: Int), named identifier: String) -> Int? {
        var position = dir.block * 2048
        let end = position + dir.length
        while position < end {
            let length = Int(b[position])
            if length == 0 { position = (position / 2048 + 1) * 2048; continue }
            let nameLength = Int(b[position + 32])
            let name = String(decoding: b[(position + 33)..<(position + 33 + nameLength)], as: UTF8.self)
            if name == identifier || name.hasPrefix(identifier + ";") || name.hasPrefix(identifier + ".;") { return position }
            position += length
        }
        return nil
    }

    package static func extent(_ b: [UInt8], record: Int) -> (block: Int, length: Int) {
        (Int(b.littleEndian32(at: record + 2)), Int(b.littleEndian32(at: record + 10)))
    }

    /// Writes a both-endian 32-bit field.
    package static func setBoth32(_ b: inout [UInt8], at offset: Int, _ value: UInt32) {
        for i in 0..<4 {
            b[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i)))
            b[offset + 7 - i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i)))
        }
    }

    /// All offsets where `pattern` occurs.
    package static func find(_ b: [UInt8], _ pattern: [UInt8]) -> [Int] {
        guard b.count >= pattern.count else { return [] }
        return (0...(b.count - pattern.count)).filter { i in b[i] == pattern[0] && Array(b[i..<(i + pattern.count)]) == pattern }
    }
}
