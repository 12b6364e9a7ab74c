/// The ISO 9660 volume descriptor set (ECMA-119 8) and the UDF volume recognition sequence
/// (ECMA-167 2/8.3), both found from sector 16 on.
struct VolumeDescriptorSet: Sendable {
    /// The root directory and identity of one ISO 9660 tree (primary or Joliet).
    struct Tree: Sendable {
        var label: String
        var blockSize: UInt64
        /// The 34-byte root directory record.
        var rootRecord: [UInt8]
    }

    var primary: Tree?
    var joliet: Tree?
    /// True when the recognition sequence has an NSR02/NSR03 descriptor (a UDF volume).
    var hasUDFMarker = false

    /// At most this many descriptors are examined (real discs have fewer than ten).
    static let maxDescriptors = 64

    static func read(_ disc: Disc) throws -> VolumeDescriptorSet {
        var set = VolumeDescriptorSet()
        var sector: UInt64 = 16
        var seenTerminator = false
        scan: while sector < 16 + UInt64(maxDescriptors) && sector < disc.sectorCount {
            let data = try disc.sector(sector)
            sector += 1
            let identifier = data.slice(1, 5)
            switch identifier {
            case Array("CD001".utf8):
                if seenTerminator { continue }
                switch data[0] {
                case 1 where set.primary == nil:
                    set.primary = tree(data, isJoliet: false)
                case 2 where set.joliet == nil && isJolietEscape(data):
                    set.joliet = tree(data, isJoliet: true)
                case 255:
                    seenTerminator = true
                default:
                    break
                }
            case Array("NSR02".utf8), Array("NSR03".utf8):
                set.hasUDFMarker = true
            case Array("BEA01".utf8), Array("TEA01".utf8), Array("BOOT2".utf8), Array("CDW02".utf8):
                continue
            default:
                break scan      // a blank or unknown sector ends the recognition area
            }
        }
        return set
    }

    /// ECMA-119 8.5.6 escape sequences of a Joliet SVD: "%/@", "%/C" or "%/E" (UCS-2 levels 1-3),
    /// anywhere in the first bytes of the escape sequences field.
    static func isJolietEscape(_ data: [UInt8]) -> Bool {
        let escapes = data.slice(88, 32)
        for level in [UInt8(0x40), 0x43, 0x45] {
            for start in 0..<3 where escapes.u8(start) == 0x25 && escapes.u8(start + 1) == 0x2F && escapes.u8(start + 2) == level {
                return true
            }
        }
        return false
    }

    private static func tree(_ data: [UInt8], isJoliet: Bool) -> Tree? {
        let blockSize = UInt64(data.le16(128))
        guard [512, 1024, 2048].contains(blockSize) else { return nil }
        let label = isJoliet ? decodeUTF16BE(data.slice(40, 32)).trimmingSpaces() : data.paddedText(40, 32)
        return Tree(label: label, blockSize: blockSize, rootRecord: data.slice(156, 34))
    }
}

extension String {
    /// The string without trailing spaces and NULs (fixed-width disc fields are padded with them).
    func trimmingSpaces() -> String {
        var scalars = Array(unicodeScalars)
        while let last = scalars.last, last == " " || last == "\u{0}" { scalars.removeLast() }
        var result = ""
        result.unicodeScalars.append(contentsOf: scalars)
        return result
    }
}
