import Glibc

/// An error number returned by a system call on the mounted tree.
///
/// For vmediafs the errno of a file operation *is* the result of the administrative
/// operation (SPEC 2.1), so it is kept as a value and never flattened into a string early.
public struct Errno: Error, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32

    public init(_ rawValue: Int32) { self.rawValue = rawValue }

    /// The calling thread's current `errno`.
    public static var current: Errno { Errno(errno) }

    public static let noSuchFile = Errno(ENOENT)
    public static let exists = Errno(EEXIST)
    public static let busy = Errno(EBUSY)
    public static let notEmpty = Errno(ENOTEMPTY)
    public static let invalid = Errno(EINVAL)
    public static let permissionDenied = Errno(EACCES)
    public static let notPermitted = Errno(EPERM)
    public static let notDirectory = Errno(ENOTDIR)
    public static let io = Errno(EIO)

    /// The C library's message for this errno. The corresponding C function is `strerror`.
    public var description: String {
        guard let text = strerror(rawValue) else { return "error \(rawValue)" }
        return String(cString: text)
    }
}
