/// Little helpers to decode fixed-layout fields from byte arrays, bounds-checked.
///
/// Out-of-range reads return zero instead of trapping: every caller validates lengths first, and
/// a zero is a safe value for a field of a truncated structure.
extension Array where Element == UInt8 {
    @inline(__always) func u8(_ at: Int) -> UInt8 {
        at >= 0 && at < count ? self[at] : 0
    }
    func le16(_ at: Int) -> UInt16 { UInt16(u8(at)) | UInt16(u8(at + 1)) << 8 }
    func be16(_ at: Int) -> UInt16 { UInt16(u8(at)) << 8 | UInt16(u8(at + 1)) }
    func le32(_ at: Int) -> UInt32 { UInt32(le16(at)) | UInt32(le16(at + 2)) << 16 }
    func le64(_ at: Int) -> UInt64 { UInt64(le32(at)) | UInt64(le32(at + 4)) << 32 }
    /// A sub-range as a new array, clamped to the array's bounds.
    func slice(_ at: Int, _ length: Int) -> [UInt8] {
        let start = Swift.max(0, Swift.min(at, count))
        let end = Swift.max(start, Swift.min(at &+ Swift.max(0, length), count))
        return Array(self[start..<end])
    }
    /// ASCII text of a fixed field with trailing spaces and NULs removed.
    func paddedText(_ at: Int, _ length: Int) -> String {
        var field = slice(at, length)
        while let last = field.last, last == 0x20 || last == 0 { field.removeLast() }
        return String(decoding: field, as: UTF8.self)
    }
}

/// Decodes UTF-16 big-endian bytes (Joliet UCS-2 and UDF 16-bit CS0); an odd last byte is dropped.
func decodeUTF16BE(_ bytes: [UInt8]) -> String {
    var units: [UInt16] = []
    units.reserveCapacity(bytes.count / 2)
    var index = 0
    while index + 1 < bytes.count {
        units.append(UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1]))
        index += 2
    }
    return String(decoding: units, as: UTF16.self)
}
