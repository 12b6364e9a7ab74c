/// A command descriptor block, copied into a fixed inline buffer (no allocation).
///
/// Only the first 16 bytes are kept: no command this emulator supports is longer (the 32-byte
/// variable-length CDBs of opcode 7Fh are answered 05/20/00). Bytes past the CDB's real length
/// read as zero, but the dispatcher refuses a CDB shorter than its opcode's length before any
/// handler reads it.
struct CDB: Sendable {
    private var storage: SIMD16<UInt8>
    /// The length the initiator sent (may exceed 16, e.g. a padded transport CDB field).
    let count: Int

    init(_ raw: UnsafeRawBufferPointer) {
        var s = SIMD16<UInt8>(repeating: 0)
        let n = min(raw.count, 16)
        for i in 0..<n { s[i] = raw[i] }
        storage = s
        count = raw.count
    }

    init(_ bytes: SIMD16<UInt8>, count: Int) {
        storage = bytes
        self.count = count
    }

    init(_ bytes: [UInt8]) {
        self = bytes.withUnsafeBytes { CDB($0) }
    }

    var opcode: UInt8 { storage[0] }

    subscript(_ i: Int) -> UInt8 { i < 16 ? storage[i] : 0 }

    /// Bits `shift ..< shift+width` of byte `i`.
    func bits(_ i: Int, shift: Int, width: Int) -> UInt8 {
        (self[i] >> UInt8(shift)) & UInt8((1 << width) - 1)
    }

    func bit(_ i: Int, _ bit: Int) -> Bool { (self[i] >> UInt8(bit)) & 1 == 1 }

    func u16(_ i: Int) -> UInt16 { UInt16(self[i]) << 8 | UInt16(self[i + 1]) }
    func u24(_ i: Int) -> UInt32 { UInt32(self[i]) << 16 | UInt32(self[i + 1]) << 8 | UInt32(self[i + 2]) }
    func u32(_ i: Int) -> UInt32 { UInt32(u16(i)) << 16 | UInt32(u16(i + 2)) }
    func u64(_ i: Int) -> UInt64 { UInt64(u32(i)) << 32 | UInt64(u32(i + 4)) }

    /// The service action field (byte 1, bits 4-0) of a service-action opcode.
    var serviceAction: UInt8 { self[1] & 0x1F }
}

/// Big-endian field writers for building response data.
extension Array where Element == UInt8 {
    mutating func append16(_ v: UInt16) { append(UInt8(v >> 8)); append(UInt8(v & 0xFF)) }
    mutating func append24(_ v: UInt32) { append(UInt8((v >> 16) & 0xFF)); append16(UInt16(v & 0xFFFF)) }
    mutating func append32(_ v: UInt32) { append16(UInt16(v >> 16)); append16(UInt16(v & 0xFFFF)) }
    mutating func append64(_ v: UInt64) { append32(UInt32(v >> 32)); append32(UInt32(v & 0xFFFF_FFFF)) }

    mutating func put16(_ v: UInt16, at i: Int) { self[i] = UInt8(v >> 8); self[i + 1] = UInt8(v & 0xFF) }
    mutating func put32(_ v: UInt32, at i: Int) {
        put16(UInt16(v >> 16), at: i); put16(UInt16(v & 0xFFFF), at: i + 2)
    }

    /// Cut to an allocation length (never padded).
    func truncated(to allocationLength: Int) -> [UInt8] {
        allocationLength >= count ? self : Array(self[0..<allocationLength])
    }

    /// `text` as `width` printable ASCII bytes: padded with spaces, cut if longer; bytes outside
    /// 20h-7Eh become '?' (SPC-4 4.4.1 requires printable ASCII in INQUIRY fields).
    static func ascii(_ text: String, width: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0x20, count: width)
        for (i, b) in text.utf8.prefix(width).enumerated() {
            out[i] = (0x20...0x7E).contains(b) ? b : 0x3F
        }
        return out
    }

    /// `text` as printable ASCII of its own length, up to `limit` bytes.
    static func ascii(_ text: String, limit: Int) -> [UInt8] {
        text.utf8.prefix(limit).map { (0x20...0x7E).contains($0) ? $0 : 0x3F }
    }
}
