import Glibc

/// Why an operation on guests, drives or media was refused: the errno the caller gets,
/// and a one-line reason for `status` (`last_error=`) and the log.
public struct VMError: Error, Sendable, Equatable, CustomStringConvertible {
    public var errno: Int32
    public var reason: String
    public init(_ errno: Int32, _ reason: String) { self.errno = errno; self.reason = reason }
    public var description: String { reason }

    /// `errno` from a failed call about `what`, with the system's words for it.
    public static func system(_ errno: Int32, _ what: String) -> VMError {
        VMError(errno, "\(what): \(String(cString: strerror(errno)))")
    }
}

/// Names of guests and drives: 1 to 64 of `A-Z a-z 0-9 . _ -`, not starting with ".",
/// and none of the names the tree uses inside a guest or drive directory.
public enum Names {
    public static let reserved: Set<String> = ["media", "disc", "status", "contents", "initiators", "chap"]

    public static func validate(_ name: String, what: String) throws(VMError) {
        let bytes = Array(name.utf8)
        guard (1...64).contains(bytes.count) else {
            throw VMError(bytes.isEmpty ? EINVAL : (bytes.count > 255 ? ENAMETOOLONG : EINVAL),
                          "\(what) name must be 1 to 64 characters")
        }
        guard bytes[0] != UInt8(ascii: ".") else { throw VMError(EINVAL, "\(what) name may not start with '.'") }
        for b in bytes {
            let ok = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")
            guard ok else { throw VMError(EINVAL, "\(what) name may hold only A-Z a-z 0-9 . _ -") }
        }
        guard !reserved.contains(name) else { throw VMError(EINVAL, "'\(name)' is a name the tree uses itself") }
    }
}
