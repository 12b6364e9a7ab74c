import FuseKernel
import Glibc
import Synchronization
import VirtualMedia

/// An open file: what reads, writes, flushes and the last close of it do. Each kind of open
/// file is a subclass that overrides what it allows; the defaults refuse reads and writes
/// (EBADF) and have nothing to complete at close.
///
/// The kernel's file handle number is this object's address, retained from open until
/// release, so finding a handle on every read takes no lock, no table and no dynamic cast
/// (a class, not a protocol, for that reason: an existential has no single address).
class OpenHandle: @unchecked Sendable {
    var fh: UInt64 { UInt64(UInt(bitPattern: Unmanaged.passUnretained(self).toOpaque())) }

    /// Keeps the handle alive until `release(_:)`; returns its number for the kernel.
    func retainForKernel() -> UInt64 { UInt64(UInt(bitPattern: Unmanaged.passRetained(self).toOpaque())) }

    static func from(_ fh: UInt64) -> OpenHandle? {
        guard let p = UnsafeRawPointer(bitPattern: UInt(fh)) else { return nil }
        return Unmanaged<OpenHandle>.fromOpaque(p).takeUnretainedValue()
    }

    static func release(_ fh: UInt64) -> OpenHandle? {
        guard let p = UnsafeRawPointer(bitPattern: UInt(fh)) else { return nil }
        return Unmanaged<OpenHandle>.fromOpaque(p).takeRetainedValue()
    }

    /// `flags` are the file's status flags now (O_NONBLOCK may have been set by fcntl).
    func read(offset: UInt64, size: Int, flags: Int32, reply: consuming DataReply) { reply.fail(EBADF) }
    func write(offset: UInt64, data: UnsafeRawBufferPointer, _ ctx: RequestContext, reply: consuming WriteReply) {
        reply.fail(EBADF)
    }
    /// A close(2) of one descriptor of it (there may be others, from dup or fork).
    func flush(_ ctx: RequestContext) throws(VMError) {}
    /// The last close: no caller waits for the outcome any more.
    func release() {}
    func poll(_ wake: PollHandle?) -> UInt32 { UInt32(POLLIN | POLLRDNORM) }
    /// The reader of a request waiting in this handle gave up (a signal).
    func interrupt() {}
}

/// A read-only snapshot of a small text file (status, media, library facts), taken at open.
final class TextHandle: OpenHandle, @unchecked Sendable {
    let bytes: [UInt8]
    init(_ text: String) { bytes = Array(text.utf8) }

    override func read(offset: UInt64, size: Int, flags: Int32, reply: consuming DataReply) {
        let start = Int(min(UInt64(bytes.count), offset))
        let end = min(bytes.count, start + size)
        reply.data(Array(bytes[start..<end]))
    }
}

/// What a control file does with what is written to it: `media`, a library entry's
/// `sharable`, a guest's `initiators` and `chap`.
protocol ControlTarget: Sendable {
    /// Whether the file takes everything written at once, at close (else line by line).
    var wholeFile: Bool { get }
    /// Carries out one completed line (or the whole file), for `user`.
    func take(_ text: [UInt8], by user: Credentials) throws(VMError)
    /// An open that truncated the file was closed with nothing written.
    func truncatedEmpty(by user: Credentials) throws(VMError)
}

extension ControlTarget {
    var wholeFile: Bool { false }
    func truncatedEmpty(by user: Credentials) throws(VMError) {}
}

/// Something written to a control file, waiting for a newline or the close to complete it.
final class ControlWriter: OpenHandle, @unchecked Sendable {
    let target: any ControlTarget
    private let state = Mutex<(buffer: [UInt8], truncated: Bool, wrote: Bool, done: Bool)>(([], false, false, false))

    /// Who opened the file: a truncation carried out at the last close acts for them (the
    /// kernel's release request carries no caller).
    let opener: Credentials

    init(_ target: any ControlTarget, truncated: Bool, opener: Credentials) {
        self.target = target
        self.opener = opener
        super.init()
        state.withLock { $0.truncated = truncated }
    }

    /// Each completed line is carried out as it arrives; the first refusal fails the write.
    override func write(offset: UInt64, data: UnsafeRawBufferPointer, _ ctx: RequestContext, reply: consuming WriteReply) {
        for line in append(data) {
            do throws(VMError) { try target.take(line, by: ctx.credentials) } catch { return reply.fail(error.errno) }
        }
        reply.written(data.count)
    }

    override func flush(_ ctx: RequestContext) throws(VMError) { try finish(by: ctx.credentials, atRelease: false) }

    override func release() {
        // Errors here reach no caller (close has returned); the refusal is still recorded
        // in status, the log and events by the host.
        try? finish(by: opener, atRelease: true)
    }

    /// Marks an open writer as truncated (an ftruncate to 0 through it) unless it wrote.
    func markTruncated() { state.withLock { s in if !s.wrote { s.truncated = true } } }

    /// Adds written bytes; returns the complete lines now available (without their newlines).
    private func append(_ data: UnsafeRawBufferPointer) -> [[UInt8]] {
        let whole = target.wholeFile
        return state.withLock { s in
            s.wrote = true
            s.buffer.append(contentsOf: data)
            var lines: [[UInt8]] = []
            if whole { return lines }
            while let nl = s.buffer.firstIndex(of: 0x0A) {
                lines.append(Array(s.buffer[..<nl]))
                s.buffer.removeSubrange(...nl)
            }
            if !lines.isEmpty { s.done = true }
            return lines
        }
    }

    private enum Pending { case nothing, line([UInt8]), truncate }

    /// What a close still has to do: an unterminated line (or, for whole-file targets, what
    /// was written), or what a truncation with nothing written asks for (`: > media`).
    private func finish(by user: Credentials, atRelease: Bool) throws(VMError) {
        switch takePending(atRelease: atRelease) {
        case .nothing: return
        case .line(let line): try target.take(line, by: user)
        case .truncate: try target.truncatedEmpty(by: user)
        }
    }

    /// The pending work, taken once.
    ///
    /// A truncation acts only at the last close (`release`), never at a `flush`: the shell's
    /// `echo new > media` opens with O_TRUNC and dup2()s the descriptor before writing, and
    /// that dup2 closes (flushes) the original descriptor with nothing written yet. Acting
    /// then would eject before the swap, and a refused swap would lose the old media.
    private func takePending(atRelease: Bool) -> Pending {
        let whole = target.wholeFile
        return state.withLock { s in
            if whole {
                guard !s.done, s.wrote || (s.truncated && atRelease) else { return .nothing }
                s.done = true
                defer { s.buffer.removeAll() }
                return .line(s.buffer)
            }
            if !s.buffer.isEmpty {
                let line = s.buffer
                s.buffer.removeAll()
                s.done = true
                return .line(line)
            }
            if s.truncated && !s.wrote && !s.done && atRelease {
                s.done = true
                return .truncate
            }
            return .nothing
        }
    }
}

extension RequestContext {
    /// The caller's uid, gid and supplementary groups, for the host's checks.
    var credentials: Credentials { Credentials(uid: uid, gid: gid, groups: groups) }
}
