/// CHAP with MD5 (RFC 1994, as iSCSI uses it in RFC 7143 12.1.3): the target sends an
/// identifier and a random challenge; the initiator answers MD5(identifier ‖ secret ‖ challenge).
///
/// Only one-way CHAP (the target authenticates the initiator). An initiator that also sends its
/// own CHAP_I/CHAP_C (mutual CHAP) is refused: there is no target secret to answer with.
public enum CHAP {
    /// The only algorithm iSCSI requires and the only one we offer: CHAP_A=5 (MD5).
    public static let md5Algorithm = "5"
    /// Challenge length in bytes.
    public static let challengeLength = 32

    /// MD5(identifier ‖ secret ‖ challenge), RFC 1994 4.1.
    public static func response(identifier: UInt8, secret: [UInt8], challenge: [UInt8]) -> [UInt8] {
        MD5.digest([identifier] + secret + challenge)
    }

    /// A fresh identifier and challenge from the system's random number generator.
    public static func makeChallenge() -> (identifier: UInt8, challenge: [UInt8]) {
        var rng = SystemRandomNumberGenerator()
        let id = UInt8.random(in: 0...255, using: &rng)
        let bytes = (0..<challengeLength).map { _ in UInt8.random(in: 0...255, using: &rng) }
        return (id, bytes)
    }

    /// True when the initiator's CHAP_R is the right answer; compares in constant time.
    public static func verify(response: [UInt8], identifier: UInt8, secret: [UInt8], challenge: [UInt8]) -> Bool {
        constantTimeEqual(response, CHAP.response(identifier: identifier, secret: secret, challenge: challenge))
    }

    /// Equal length and bytes, in time that depends only on the lengths.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }

    /// RFC 7143 6.1 binary-value encoding as we send it: "0x" and lower-case hex.
    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        var s = "0x"
        for b in bytes { s.append(digits[Int(b >> 4)]); s.append(digits[Int(b & 0xF)]) }
        return s
    }

    /// Decodes a binary value: "0x"/"0X" hex (an odd digit count is left-padded) or "0b"/"0B"
    /// base64 (RFC 7143 6.1). Nil for anything else.
    public static func decodeBinary(_ s: String) -> [UInt8]? {
        let u = Array(s.utf8)
        guard u.count > 2, u[0] == UInt8(ascii: "0") else { return nil }
        switch u[1] {
        case UInt8(ascii: "x"), UInt8(ascii: "X"): return decodeHex(Array(u[2...]))
        case UInt8(ascii: "b"), UInt8(ascii: "B"): return decodeBase64(Array(u[2...]))
        default: return nil
        }
    }

    private static func decodeHex(_ digits: [UInt8]) -> [UInt8]? {
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        let padded = digits.count % 2 == 1 ? [UInt8(ascii: "0")] + digits : digits
        var out: [UInt8] = []
        out.reserveCapacity(padded.count / 2)
        var i = 0
        while i < padded.count {
            guard let hi = value(padded[i]), let lo = value(padded[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func decodeBase64(_ chars: [UInt8]) -> [UInt8]? {
        func value(_ c: UInt8) -> UInt32? {
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): return UInt32(c - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): return UInt32(c - UInt8(ascii: "a") + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(c - UInt8(ascii: "0") + 52)
            case UInt8(ascii: "+"): return 62
            case UInt8(ascii: "/"): return 63
            default: return nil
            }
        }
        let body = chars.filter { $0 != UInt8(ascii: "=") }
        var out: [UInt8] = []
        var acc: UInt32 = 0, bits = 0
        for c in body {
            guard let v = value(c) else { return nil }
            acc = acc << 6 | v
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
            }
        }
        return out
    }
}
