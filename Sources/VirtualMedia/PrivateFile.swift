import Glibc

/// Files of secrets the daemon reads: passwords for URL prefixes, Redfish users.
public enum PrivateFile {
    /// The text of `path`, which must be a regular file of at most 1 MiB that belongs to the
    /// daemon's user and that nobody else may read (it holds passwords); `what` names it in
    /// the errors ("credentials file").
    public static func read(_ path: String, what: String) throws(VMError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { throw VMError.system(errno, "\(what) \(path)") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { throw VMError(EINVAL, "\(what) \(path) is not a regular file") }
        guard st.st_uid == geteuid(), st.st_mode & 0o077 == 0 else {
            throw VMError(EPERM, "\(what) \(path) must belong to uid \(geteuid()) and be readable by nobody else (chmod 600)")
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = Glibc.read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw VMError.system(errno, "reading \(path)") }
            if n == 0 { break }
            bytes += chunk[0..<n]
            guard bytes.count <= 1 << 20 else { throw VMError(EINVAL, "\(what) \(path) is larger than 1 MiB") }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
