import Glibc

/// What `stat` tells about an entry of the tree.
public struct FileInfo: Sendable, Equatable {
    public var isDirectory: Bool
    public var uid: UInt32
    public var gid: UInt32
    /// Permission bits only (`0o755`).
    public var permissions: UInt32
}

/// A control-file write that failed, and at which step.
///
/// The step matters: a failure at `open` says nothing about the media (the drive is gone, or
/// the caller may not write it), while a failure of the `write` or `close` is the
/// filesystem's verdict on the media and comes with `last_error=` in `status`.
public struct ControlWriteFailure: Error, Sendable, Equatable {
    public enum Step: String, Sendable { case open, write, close }
    public var step: Step
    public var errno: Errno
}

/// Every file operation `vmedia` performs on the mounted tree, one method per system call.
///
/// `POSIXTreeIO` is the real one. Tests substitute a wrapper that fails chosen calls with
/// chosen errnos, so that the logic built on top (retries, deferred ejects) is tested without
/// a mount. Paths are absolute.
public protocol TreeIO: Sendable {
    /// The corresponding C function is `mkdir`.
    func makeDirectory(_ path: String, mode: UInt32) throws(Errno)
    /// The corresponding C function is `rmdir`.
    func removeDirectory(_ path: String) throws(Errno)
    /// The corresponding C function is `unlink`.
    func unlink(_ path: String) throws(Errno)
    /// `lstat`: the entry itself, never what a symlink points to.
    func info(_ path: String) throws(Errno) -> FileInfo
    /// The names in a directory, without `.` and `..`, in no particular order.
    func list(_ path: String) throws(Errno) -> [String]
    /// The whole file, read with `read(2)` until end of file (tree files may report size 0).
    func read(_ path: String) throws(Errno) -> String
    /// Writes a control file the way the contract asks: `open(O_WRONLY|O_TRUNC)` (plus
    /// `O_CREAT` when `create`), `text` in one `write(2)`, `close`.
    func writeControl(_ path: String, _ text: String, create: Bool) throws(ControlWriteFailure)
    /// Reads `path` line by line as lines arrive (a blocking stream such as `events`),
    /// calling `line` for each complete line without its newline, until `line` returns
    /// false or the file ends.
    func follow(_ path: String, line: (String) -> Bool) throws(Errno)
}

/// The real system calls.
public struct POSIXTreeIO: TreeIO {
    public init() {}

    public func makeDirectory(_ path: String, mode: UInt32) throws(Errno) {
        if mkdir(path, mode_t(mode)) != 0 { throw Errno.current }
    }

    public func removeDirectory(_ path: String) throws(Errno) {
        if rmdir(path) != 0 { throw Errno.current }
    }

    public func unlink(_ path: String) throws(Errno) {
        if Glibc.unlink(path) != 0 { throw Errno.current }
    }

    public func info(_ path: String) throws(Errno) -> FileInfo {
        var st = stat()
        if lstat(path, &st) != 0 { throw Errno.current }
        return FileInfo(
            isDirectory: (st.st_mode & S_IFMT) == S_IFDIR,
            uid: st.st_uid, gid: st.st_gid, permissions: UInt32(st.st_mode & 0o7777))
    }

    public func list(_ path: String) throws(Errno) -> [String] {
        guard let dir = opendir(path) else { throw Errno.current }
        defer { closedir(dir) }
        var names: [String] = []
        while true {
            errno = 0
            guard let entry = readdir(dir) else {
                if errno != 0 { throw Errno.current }
                break
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    public func read(_ path: String) throws(Errno) -> String {
        var bytes: [UInt8] = []
        try readChunks(path, size: 65536) { bytes.append(contentsOf: $0); return true }
        return String(decoding: bytes, as: UTF8.self)
    }

    public func writeControl(_ path: String, _ text: String, create: Bool) throws(ControlWriteFailure) {
        let flags = O_WRONLY | O_TRUNC | O_CLOEXEC | (create ? O_CREAT : 0)
        let fd = open(path, flags, 0o644)
        if fd < 0 { throw ControlWriteFailure(step: .open, errno: .current) }
        let bytes = Array(text.utf8)
        var written: Int
        repeat {
            written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        } while written < 0 && errno == EINTR
        if written < 0 {
            let failure = ControlWriteFailure(step: .write, errno: .current)
            close(fd)
            throw failure
        }
        if written != bytes.count {
            // A control file takes the whole text in one call or refuses it; a short write
            // would leave half a path behind.
            close(fd)
            throw ControlWriteFailure(step: .write, errno: .io)
        }
        if close(fd) != 0 { throw ControlWriteFailure(step: .close, errno: .current) }
    }

    public func follow(_ path: String, line: (String) -> Bool) throws(Errno) {
        var pending: [UInt8] = []
        try readChunks(path, size: 16384) { chunk in
            pending.append(contentsOf: chunk)
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let text = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                if !line(text) { return false }
            }
            return true
        }
    }

    /// Reads `path` to its end in chunks of up to `size` bytes, retrying reads that a
    /// signal interrupted; `chunk` returns false to stop early.
    private func readChunks(_ path: String, size: Int, _ chunk: (ArraySlice<UInt8>) -> Bool) throws(Errno) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw Errno.current }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: size)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Errno.current
            }
            if n == 0 || !chunk(buffer[0..<n]) { return }
        }
    }
}
