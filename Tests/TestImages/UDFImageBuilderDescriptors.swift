import Foundation

/// The descriptors `UDFImageBuilder` writes (ECMA-167 and UDF 2.50 layouts).
extension UDFImageBuilder {
    package static func put16(_ b: inout [UInt8], _ at: Int, _ v: UInt16) { b[at] = UInt8(v & 0xFF); b[at + 1] = UInt8(v >> 8) }
    package static func put32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) { for i in 0..<4 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) } }
    package static func put64(_ b: inout [UInt8], _ at: Int, _ v: UInt64) { put32(&b, at, UInt32(v & 0xFFFF_FFFF)); put32(&b, at + 4, UInt32(v >> 32)) }

    /// Fills in the 16-byte tag (version 3) at the start of a descriptor laid out from offset 0.
    package static func tag(_ id: UInt16, location: Int, _ body: [UInt8]) -> [UInt8] {
        var d = body
        put16(&d, 0, id); put16(&d, 2, 3); put32(&d, 12, UInt32(location))
        put16(&d, 10, UInt16(d.count - 16))
        UDFTagFixer.reseal(&d, at: 0)
        return d
    }

    package static func regid(_ text: String, suffix: [UInt8] = []) -> [UInt8] {
        var r = [UInt8](repeating: 0, count: 32)
        for (i, c) in text.utf8.prefix(23).enumerated() { r[1 + i] = c }
        for (i, c) in suffix.prefix(8).enumerated() { r[24 + i] = c }
        return r
    }

    package static var udfSuffix: [UInt8] { [0x50, 0x02] }
    package static var charset: [UInt8] { [0] + Array("OSTA Compressed Unicode".utf8) + [UInt8](repeating: 0, count: 40) }

    /// CS0 bytes: compression id 8 when every character fits in a byte, else 16 (UTF-16BE).
    package static func cs0(_ text: String) -> [UInt8] {
        if text.unicodeScalars.allSatisfy({ $0.value < 256 }) { return [8] + text.unicodeScalars.map { UInt8($0.value) } }
        return [16] + text.utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }

    package static func dstring(_ text: String, size: Int) -> [UInt8] {
        var d = [UInt8](repeating: 0, count: size)
        let bytes = cs0(text).prefix(size - 1)
        d.replaceSubrange(0..<bytes.count, with: bytes)
        d[size - 1] = UInt8(bytes.count)
        return d
    }

    package static func shortAD(length: Int, block: Int) -> [UInt8] {
        var a = [UInt8](repeating: 0, count: 8)
        put32(&a, 0, UInt32(length)); put32(&a, 4, UInt32(block))
        return a
    }

    package static func longAD(length: Int, block: Int, partition: UInt16, type: UInt32 = 0) -> [UInt8] {
        var a = [UInt8](repeating: 0, count: 16)
        put32(&a, 0, UInt32(length) | type << 30); put32(&a, 4, UInt32(block)); put16(&a, 8, partition)
        return a
    }

    package static func timestamp(_ seconds: Int) -> [UInt8] {
        var t = time_t(seconds), parts = tm()
        gmtime_r(&t, &parts)
        var b = [UInt8](repeating: 0, count: 12)
        put16(&b, 0, 0x1000)
        put16(&b, 2, UInt16(parts.tm_year + 1900))
        b[4] = UInt8(parts.tm_mon + 1); b[5] = UInt8(parts.tm_mday); b[6] = UInt8(parts.tm_hour)
        b[7] = UInt8(parts.tm_min); b[8] = UInt8(parts.tm_sec)
        return b
    }

    /// ECMA-167 4/14.16 path components of a symlink target.
    package static func pathComponents(_ target: String) -> [UInt8] {
        var out: [UInt8] = []
        if target.hasPrefix("/") { out += [2, 0, 0, 0] }
        for part in target.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case "..": out += [3, 0, 0, 0]
            case ".": out += [4, 0, 0, 0]
            default:
                let name = cs0(String(part))
                out += [5, UInt8(name.count), 0, 0] + name
            }
        }
        return out
    }

    package func fid(name: String?, characteristics: UInt8, icb: Int) -> [UInt8] {
        let identifier = name.map(Self.cs0) ?? []
        var d = [UInt8](repeating: 0, count: 38) + identifier
        d += [UInt8](repeating: 0, count: (4 - d.count % 4) % 4)
        Self.put16(&d, 16, 1); d[18] = characteristics; d[19] = UInt8(identifier.count)
        d.replaceSubrange(20..<36, with: Self.longAD(length: 2048, block: metaBlock(icb), partition: metaRef))
        // The CRC covers the padding too (ECMA-167 4/14.4: the descriptor's length includes it).
        return Self.tag(257, location: metaBlock(icb), d)
    }

    /// A file entry (tag 261) or extended file entry (tag 266).
    package mutating func fileEntry(type: UInt8, mode: mode_t, stat st: stat?, size: UInt64, adType: UInt16, allocation: [UInt8],
                            location: Int, links: Int) -> [UInt8] {
        let base = extendedEntries ? 216 : 176
        var d = [UInt8](repeating: 0, count: base) + allocation
        Self.put16(&d, 20, 4); Self.put16(&d, 24, 1); d[27] = type
        var flags = adType
        if mode & 0o4000 != 0 { flags |= 0x40 }
        if mode & 0o2000 != 0 { flags |= 0x80 }
        if mode & 0o1000 != 0 { flags |= 0x100 }
        Self.put16(&d, 34, flags)
        Self.put32(&d, 36, st?.st_uid ?? 0); Self.put32(&d, 40, st?.st_gid ?? 0)
        let m = UInt32(mode)
        // Owner, group, other: execute 1, write 2, read 4 (change-attribute and delete bits left clear).
        Self.put32(&d, 44, (m & 7) | ((m >> 3) & 7) << 5 | ((m >> 6) & 7) << 10)
        Self.put16(&d, 48, UInt16(links))
        Self.put64(&d, 56, size)
        let mtime = Self.timestamp(Int(st?.st_mtim.tv_sec ?? 1_700_000_000))
        let atime = Self.timestamp(Int(st?.st_atim.tv_sec ?? 1_700_000_000))
        let ctime = Self.timestamp(Int(st?.st_ctim.tv_sec ?? 1_700_000_000))
        uniqueID += 1
        if extendedEntries {
            Self.put64(&d, 64, size)
            d.replaceSubrange(80..<92, with: atime); d.replaceSubrange(92..<104, with: mtime)
            d.replaceSubrange(104..<116, with: mtime); d.replaceSubrange(116..<128, with: ctime)
            Self.put32(&d, 128, 1)
            d.replaceSubrange(168..<200, with: Self.regid("*vmediafs tests"))
            Self.put64(&d, 200, uniqueID)
            Self.put32(&d, 212, UInt32(allocation.count))
        } else {
            d.replaceSubrange(72..<84, with: atime); d.replaceSubrange(84..<96, with: mtime); d.replaceSubrange(96..<108, with: ctime)
            Self.put32(&d, 108, 1)
            d.replaceSubrange(128..<160, with: Self.regid("*vmediafs tests"))
            Self.put64(&d, 160, uniqueID)
            Self.put32(&d, 172, UInt32(allocation.count))
        }
        return Self.tag(extendedEntries ? 266 : 261, location: location, d)
    }

    package func primaryVolumeDescriptor(at sector: Int) -> [UInt8] {
        var d = [UInt8](repeating: 0, count: 512)
        d.replaceSubrange(24..<56, with: Self.dstring(label, size: 32))
        Self.put16(&d, 56, 1); Self.put16(&d, 58, 1); Self.put16(&d, 60, 2); Self.put16(&d, 62, 3)
        Self.put32(&d, 64, 1); Self.put32(&d, 68, 1)
        d.replaceSubrange(72..<200, with: Self.dstring("0123456789ABCDEF" + label, size: 128))
        d.replaceSubrange(200..<264, with: Self.charset); d.replaceSubrange(264..<328, with: Self.charset)
        d.replaceSubrange(376..<388, with: Self.timestamp(1_700_000_000))
        d.replaceSubrange(388..<420, with: Self.regid("*vmediafs tests"))
        return Self.tag(1, location: sector, d)
    }

    package func partitionDescriptor(at sector: Int, start: Int, length: Int) -> [UInt8] {
        var d = [UInt8](repeating: 0, count: 512)
        Self.put32(&d, 16, 1); Self.put16(&d, 20, 1); Self.put16(&d, 22, 0)
        d.replaceSubrange(24..<56, with: Self.regid("+NSR03"))
        Self.put32(&d, 184, 1); Self.put32(&d, 188, UInt32(start)); Self.put32(&d, 192, UInt32(length))
        d.replaceSubrange(196..<228, with: Self.regid("*vmediafs tests"))
        return Self.tag(5, location: sector, d)
    }

    package func logicalVolumeDescriptor(at sector: Int) -> [UInt8] {
        var maps: [UInt8] = [1, 6, 1, 0, 0, 0]
        if metadataPartition {
            var map = [UInt8](repeating: 0, count: 64)
            map[0] = 2; map[1] = 64
            map.replaceSubrange(4..<36, with: Self.regid("*UDF Metadata Partition", suffix: Self.udfSuffix))
            Self.put16(&map, 36, 1); Self.put16(&map, 38, 0)
            Self.put32(&map, 40, 0); Self.put32(&map, 44, 1); Self.put32(&map, 48, 0xFFFF_FFFF)
            Self.put32(&map, 52, 32); Self.put16(&map, 56, 1)
            maps += map
        }
        var d = [UInt8](repeating: 0, count: 440) + maps
        Self.put32(&d, 16, 2)
        d.replaceSubrange(20..<84, with: Self.charset)
        d.replaceSubrange(84..<212, with: Self.dstring(label, size: 128))
        Self.put32(&d, 212, 2048)
        d.replaceSubrange(216..<248, with: Self.regid("*OSTA UDF Compliant", suffix: Self.udfSuffix))
        d.replaceSubrange(248..<264, with: Self.longAD(length: 2048, block: metaBlock(0), partition: metaRef))
        Self.put32(&d, 264, UInt32(maps.count)); Self.put32(&d, 268, metadataPartition ? 2 : 1)
        d.replaceSubrange(272..<304, with: Self.regid("*vmediafs tests"))
        Self.put32(&d, 432, 2048); Self.put32(&d, 436, 64)
        return Self.tag(6, location: sector, d)
    }

    package func integrityDescriptor() -> [UInt8] {
        let partitions = metadataPartition ? 2 : 1
        var d = [UInt8](repeating: 0, count: 80 + partitions * 8 + 46)
        d.replaceSubrange(16..<28, with: Self.timestamp(1_700_000_000))
        Self.put32(&d, 28, 1)
        Self.put64(&d, 40, uniqueID + 1)
        Self.put32(&d, 72, UInt32(partitions)); Self.put32(&d, 76, 46)
        let iu = 80 + partitions * 8
        d.replaceSubrange(iu..<(iu + 32), with: Self.regid("*vmediafs tests"))
        Self.put16(&d, iu + 40, 0x0250); Self.put16(&d, iu + 42, 0x0250); Self.put16(&d, iu + 44, 0x0250)
        return Self.tag(9, location: 64, d)
    }

    package func anchor(at sector: Int) -> [UInt8] {
        var d = [UInt8](repeating: 0, count: 512)
        Self.put32(&d, 16, 4 * 2048); Self.put32(&d, 20, 32)
        Self.put32(&d, 24, 4 * 2048); Self.put32(&d, 28, 48)
        return Self.tag(2, location: sector, d)
    }

    /// The file set descriptor, at metadata block 0.
    package func fileSetDescriptor(root: Int) -> [UInt8] {
        var d = [UInt8](repeating: 0, count: 512)
        d.replaceSubrange(16..<28, with: Self.timestamp(1_700_000_000))
        Self.put16(&d, 28, 3); Self.put16(&d, 30, 3); Self.put32(&d, 32, 1); Self.put32(&d, 36, 1)
        d.replaceSubrange(48..<112, with: Self.charset)
        d.replaceSubrange(112..<240, with: Self.dstring(label, size: 128))
        d.replaceSubrange(240..<304, with: Self.charset)
        d.replaceSubrange(304..<336, with: Self.dstring(label, size: 32))
        d.replaceSubrange(400..<416, with: Self.longAD(length: 2048, block: metaBlock(root), partition: metaRef))
        d.replaceSubrange(416..<448, with: Self.regid("*OSTA UDF Compliant", suffix: Self.udfSuffix))
        return Self.tag(256, location: 0, d)
    }
}
