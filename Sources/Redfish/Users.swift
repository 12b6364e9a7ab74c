import Crypto
import Foundation
import Synchronization
import VirtualMedia

/// The Redfish service's users: a root-only file of lines
/// `NAME UID pbkdf2-sha256$ITERATIONS$SALT_HEX$HASH_HEX` (`#` comments), each user acting as
/// the local `UID` in every check the tree makes. The hash is PBKDF2-HMAC-SHA256 of the
/// password, as Python's `hashlib.pbkdf2_hmac('sha256', password, salt, iterations)` makes it.
public struct RedfishUsers: Sendable {
    struct User: Sendable { let name: String; let uid: UInt32; let iterations: Int; let salt: [UInt8]; let hash: [UInt8] }
    private let users: [String: User]
    /// Passwords checked in the last minute, as SHA-256 digests: HTTP Basic sends the password
    /// with every request, and PBKDF2 is meant to be slow.
    private let recent = Recent()
    final class Recent: Sendable {
        let table = Mutex<[String: (digest: [UInt8], until: Date)]>([:])
    }

    public init(file: String) throws(VMError) {
        let text = try PrivateFile.read(file, what: "Redfish users file")
        var found: [String: User] = [:]
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let text = line.trimmingWhitespace()
            if text.isEmpty || text.hasPrefix("#") { continue }
            let f = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            let h = f.count == 3 ? f[2].split(separator: "$").map(String.init) : []
            guard f.count == 3, let uid = UInt32(f[1]), h.count == 4, h[0] == "pbkdf2-sha256", let iterations = Int(h[1]),
                  iterations >= 1000, let salt = Self.hex(h[2]), let hash = Self.hex(h[3]), hash.count == 32 else {
                throw VMError(EINVAL, "\(file) line \(n + 1): expected NAME UID pbkdf2-sha256$ITERATIONS$SALT_HEX$HASH_HEX")
            }
            found[f[0]] = User(name: f[0], uid: uid, iterations: iterations, salt: salt, hash: hash)
        }
        users = found
    }

    /// The local user `name` acts as, if `password` is theirs.
    func authenticate(_ name: String, _ password: String) -> Credentials? {
        let digest = Array(SHA256.hash(data: Array("\(name)\u{0}\(password)".utf8)))
        let now = Date()
        let known = recent.table.withLock { t -> Bool in
            guard let entry = t[name], entry.until > now else { return false }
            return entry.digest == digest
        }
        guard let u = users[name] else {
            _ = Self.pbkdf2(Array(password.utf8), salt: [0], iterations: 1000)   // as slow for unknown names
            return nil
        }
        if !known {
            let derived = Self.pbkdf2(Array(password.utf8), salt: u.salt, iterations: u.iterations)
            guard derived.count == u.hash.count, zip(derived, u.hash).reduce(0, { $0 | ($1.0 ^ $1.1) }) == 0 else { return nil }
            recent.table.withLock { $0[name] = (digest, now.addingTimeInterval(60)) }
        }
        var who = Credentials.ofUser(u.uid)
        who.agent = "redfish:\(name)"
        return who
    }

    /// PBKDF2 (RFC 8018) with HMAC-SHA256, one 32-byte block.
    static func pbkdf2(_ password: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8] {
        let key = SymmetricKey(data: password)
        var u = Array(HMAC<SHA256>.authenticationCode(for: salt + [0, 0, 0, 1], using: key))
        var t = u
        for _ in 1..<iterations {
            u = Array(HMAC<SHA256>.authenticationCode(for: u, using: key))
            for i in 0..<t.count { t[i] ^= u[i] }
        }
        return t
    }

    static func hex(_ s: String) -> [UInt8]? {
        let b = Array(s.utf8)
        guard b.count % 2 == 0, !b.isEmpty else { return nil }
        var out: [UInt8] = []
        for i in stride(from: 0, to: b.count, by: 2) {
            guard let v = UInt8(String(decoding: b[i..<i + 2], as: UTF8.self), radix: 16) else { return nil }
            out.append(v)
        }
        return out
    }
}
