import Glibc
import VirtualMedia

/// Which URLs the root daemon may fetch (the `--media-url` prefixes) and the credentials it
/// sends to each. A user can name any text in `media`; only URLs that pass `check` reach
/// the network, so a user cannot make the daemon fetch an address the administrator did not
/// allow (another host, a loopback service, a path that climbs out of the prefix).
public struct URLRules: Sendable {
    /// The allowed prefixes, scheme and host in lower case.
    public let prefixes: [String]
    /// `user:password` per prefix, longest prefix first.
    private let credentials: [(prefix: String, userPassword: String)]

    /// - Parameters:
    ///   - prefixes: `http://` or `https://` URLs; a URL is allowed when it starts with one of
    ///     them at a boundary (the prefix ends in `/`, or the URL goes on with `/` or `?`).
    ///   - credentialsFile: lines `PREFIX USER:PASSWORD` (`#` starts a comment). Refused
    ///     unless owned by the daemon's user and readable by nobody else.
    public init(prefixes: [String], credentialsFile: String? = nil) throws(VMError) {
        var normalized: [String] = []
        for p in prefixes {
            guard let n = Self.normalizedPrefix(p) else {
                throw VMError(EINVAL, "--media-url \(p): not an http:// or https:// URL with a host")
            }
            normalized.append(n)
        }
        self.prefixes = normalized
        var creds: [(String, String)] = []
        if let file = credentialsFile {
            for (number, line) in try PrivateFile.read(file, what: "credentials file").split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let text = String(line).trimmingWhitespace()
                if text.isEmpty || text.hasPrefix("#") { continue }
                let fields = text.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true).map(String.init)
                guard fields.count == 2, let prefix = Self.normalizedPrefix(fields[0]), fields[1].contains(":") else {
                    throw VMError(EINVAL, "\(file) line \(number + 1): expected PREFIX USER:PASSWORD")
                }
                creds.append((prefix, fields[1].trimmingWhitespace()))
            }
        }
        credentials = creds.sorted { $0.0.count > $1.0.count }
    }

    /// Refuses a URL the daemon must not fetch: `EINVAL` for malformed ones (credentials in
    /// the URL, a fragment, `.` or `..` segments, bytes outside printable ASCII), `EPERM` for
    /// one under no prefix. Returns the URL with its scheme and host in lower case.
    public func check(_ url: String) throws(VMError) -> String {
        guard url.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw VMError(EINVAL, "the URL holds a space or a byte outside printable ASCII (percent-encode it)")
        }
        guard let parts = Self.split(url) else { throw VMError(EINVAL, "\(url) is not an http:// or https:// URL with a host") }
        if parts.authority.contains("@") {
            throw VMError(EINVAL, "a URL with credentials is not accepted; give them in --media-url-credentials")
        }
        if url.contains("#") { throw VMError(EINVAL, "a URL with a fragment (#) is not accepted") }
        let path = parts.rest.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        for segment in path.split(separator: "/") {
            let decoded = segment.replacingPercentDots()
            if decoded == "." || decoded == ".." { throw VMError(EINVAL, "a URL with . or .. segments is not accepted") }
        }
        let normalized = parts.scheme + "://" + parts.authority.lowercased() + parts.rest
        guard prefixes.contains(where: { Self.isUnder(normalized, $0) }) else {
            throw VMError(EPERM, "\(url) lies under no --media-url prefix")
        }
        return normalized
    }

    /// The `Authorization` header for `url`, from the credentials of the longest prefix it lies under.
    func authorization(for url: String) -> String? {
        guard let entry = credentials.first(where: { Self.isUnder(url, $0.prefix) }) else { return nil }
        return "Basic " + Base64.encode(Array(entry.userPassword.utf8))
    }

    static func isUnder(_ url: String, _ prefix: String) -> Bool {
        guard url.hasPrefix(prefix) else { return false }
        if prefix.hasSuffix("/") || url.utf8.count == prefix.utf8.count { return true }
        let next = url.utf8[url.utf8.index(url.utf8.startIndex, offsetBy: prefix.utf8.count)]
        return next == UInt8(ascii: "/") || next == UInt8(ascii: "?")
    }

    /// scheme (lower case), authority (host[:port], as written), the rest (from the first `/`, `?` or the end).
    private static func split(_ url: String) -> (scheme: String, authority: String, rest: String)? {
        let lower = url.lowercased()
        let scheme: String
        if lower.hasPrefix("http://") { scheme = "http" } else if lower.hasPrefix("https://") { scheme = "https" } else { return nil }
        let afterScheme = url.dropFirst(scheme.count + 3)
        let end = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? afterScheme.endIndex
        let authority = String(afterScheme[afterScheme.startIndex..<end])
        guard !authority.isEmpty, !authority.hasPrefix(":") else { return nil }
        return (scheme, authority, String(afterScheme[end...]))
    }

    private static func normalizedPrefix(_ p: String) -> String? {
        guard p.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }), !p.contains("#"), let parts = split(p),
              !parts.authority.contains("@") else { return nil }
        return parts.scheme + "://" + parts.authority.lowercased() + parts.rest
    }
}

/// RFC 4648 base64, for the Basic authorization header.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            let b0 = bytes[i], b1 = n > 1 ? bytes[i + 1] : 0, b2 = n > 2 ? bytes[i + 2] : 0
            out.append(alphabet[Int(b0 >> 2)])
            out.append(alphabet[Int((b0 & 0x03) << 4 | b1 >> 4)])
            out.append(n > 1 ? alphabet[Int((b1 & 0x0F) << 2 | b2 >> 6)] : UInt8(ascii: "="))
            out.append(n > 2 ? alphabet[Int(b2 & 0x3F)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension StringProtocol {
    /// The segment with `%2e`/`%2E` read as `.` (the only escape that can make a dot segment).
    func replacingPercentDots() -> String {
        var out: [UInt8] = []
        let bytes = Array(utf8)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%"), i + 2 < bytes.count, bytes[i + 1] == UInt8(ascii: "2"),
               bytes[i + 2] | 0x20 == UInt8(ascii: "e") {
                out.append(UInt8(ascii: ".")); i += 3
            } else {
                out.append(bytes[i]); i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
