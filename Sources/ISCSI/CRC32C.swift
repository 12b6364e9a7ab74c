/// CRC32C (Castagnoli, reflected polynomial 82F63B78h), the iSCSI header and data digest
/// (RFC 7143 13.1). Table-driven, one byte at a time: digests are optional and off by default.
///
/// On the wire the 32-bit result is sent least significant byte first (RFC 3720 B.4 examples:
/// 32 zero bytes give 8A9136AAh, sent as `aa 36 91 8a`).
public enum CRC32C {
    static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    /// Continues a running CRC (start with `0xFFFF_FFFF`; finish with `~crc`).
    @inline(__always)
    static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var c = crc
        table.withUnsafeBufferPointer { t in
            for b in bytes { c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        }
        return c
    }

    /// The CRC32C of `bytes`.
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        ~update(0xFFFF_FFFF, bytes)
    }

    /// The CRC32C of `bytes`.
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }
}
