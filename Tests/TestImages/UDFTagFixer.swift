import Foundation

/// Recomputes the checksum and CRC of UDF descriptor tags (at sector starts, and FIDs anywhere).
package enum UDFTagFixer {
    package static func reseal(_ bytes: inout [UInt8], sectors: Range<Int>) {
        for sector in sectors where (sector + 1) * 2048 <= bytes.count {
            var position = sector * 2048
            while position + 16 <= (sector + 1) * 2048 {
                let id = UInt16(bytes[position]) | UInt16(bytes[position + 1]) << 8
                let version = bytes[position + 2]
                if (id >= 1 && id <= 9 || id >= 256 && id <= 266) && (version == 2 || version == 3) && bytes[position + 3] == 0 {
                    reseal(&bytes, at: position)
                }
                position += 4
            }
        }
    }

    package static func reseal(_ bytes: inout [UInt8], at position: Int) {
        let crcLength = Int(bytes[position + 10]) | Int(bytes[position + 11]) << 8
        if position + 16 + crcLength <= bytes.count {
            let crc = crc16(bytes, from: position + 16, count: crcLength)
            bytes[position + 8] = UInt8(crc & 0xFF)
            bytes[position + 9] = UInt8(crc >> 8)
        }
        var sum: UInt8 = 0
        for i in 0..<16 where i != 4 { sum &+= bytes[position + i] }
        bytes[position + 4] = sum
    }
}

extension UDFTagFixer {
    /// The descriptor CRC of ECMA-167 3/7.2.6: CRC-ITU-T (x^16 + x^12 + x^5 + 1), starting at 0,
    /// most significant bit first. Written here, not taken from `ISO9660`, so that the images
    /// these tests make do not depend on the reader they test.
    package static func crc16(_ bytes: [UInt8], from start: Int, count: Int) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes[start..<(start + count)] {
            crc ^= UInt16(byte) << 8
            for _ in 0..<8 { crc = crc & 0x8000 != 0 ? crc << 1 ^ 0x1021 : crc << 1 }
        }
        return crc
    }
}

extension [UInt8] {
    /// The little-endian 32-bit value at `offset` (the first half of a both-endian field).
    func littleEndian32(at offset: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(self[offset + $1]) << (8 * UInt32($1)) }
    }
}
