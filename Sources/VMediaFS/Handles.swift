import FuseKernel
import SCSI
import Synchronization
import VirtualMedia

/// An open file. The kernel's file handle number is this object's address, retained from
/// open until release, so finding a handle on every read takes no lock.
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
}

/// A read-only snapshot of a small text file (status, media, library facts), taken at open.
final class TextHandle: OpenHandle, @unchecked Sendable {
    let bytes: [UInt8]
    init(_ text: String) { bytes = Array(text.utf8) }
}

/// An open `disc`: its own I_T nexus to the drive's emulator, bound to the media
/// generation it was opened on (the reader; detached when the handle goes). Once the
/// emulator reports a change (unit attention or no medium) the handle is stale for good: it
/// never reads another media's bytes.
final class DiscHandle: OpenHandle, @unchecked Sendable {
    let reader: EmulatorSectorReader
    /// The inode it was opened through: `.disc(drive, generation, size)`.
    let key: NodeKey
    let stale = Atomic<Bool>(false)

    init(reader: EmulatorSectorReader, key: NodeKey) { self.reader = reader; self.key = key }

    /// The disc's size in bytes: whole blocks of the medium it was opened on.
    var capacity: UInt64 { if case .disc(_, _, let size) = key { size } else { 0 } }
}

/// Something written to a control file, waiting for a newline or the close to complete it.
final class ControlWriter: OpenHandle, @unchecked Sendable {
    enum Target { case media(Int64), sharable(String), initiators(Int64), chap(Int64) }
    let target: Target
    /// Whole-file targets take everything written, at close; the others act on each line.
    var wholeFile: Bool {
        switch target {
        case .initiators, .chap: true
        case .media, .sharable: false
        }
    }
    private let state = Mutex<(buffer: [UInt8], truncated: Bool, wrote: Bool, done: Bool)>(([], false, false, false))

    /// Who opened the file: a truncation carried out at the last close acts for them (the
    /// kernel's release request carries no caller).
    let opener: Credentials

    init(target: Target, truncated: Bool, opener: Credentials) {
        self.target = target
        self.opener = opener
        super.init()
        state.withLock { $0.truncated = truncated }
    }

    /// Adds written bytes; returns the complete lines now available (without their newlines).
    func append(_ data: UnsafeRawBufferPointer) -> [[UInt8]] {
        let whole = wholeFile
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

    enum Pending { case nothing, line([UInt8]), truncate }

    /// What a close must still do: an unterminated line (or, for whole-file targets, what
    /// was written), or the eject/clear asked for by a truncation with nothing written.
    /// Taken once.
    ///
    /// A truncation acts only at the last close (`release`), never at a `flush`: the shell's
    /// `echo new > media` opens with O_TRUNC and dup2()s the descriptor before writing, and
    /// that dup2 closes (flushes) the original descriptor with nothing written yet. Acting
    /// then would eject before the swap, and a refused swap would lose the old media.
    func takePending(atRelease: Bool) -> Pending {
        let whole = wholeFile
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

    func markTruncated() { state.withLock { s in if !s.wrote { s.truncated = true } } }
}

/// An in-memory file an editor created in a drive directory.
final class TemporaryFile: @unchecked Sendable {
    let lock = Mutex<(data: [UInt8], mode: UInt32, uid: UInt32, gid: UInt32)>(([], 0o644, 0, 0))
    init(mode: UInt32, uid: UInt32, gid: UInt32) { lock.withLock { $0 = ([], mode, uid, gid) } }
}

final class TemporaryHandle: OpenHandle, @unchecked Sendable {
    let file: TemporaryFile
    init(_ file: TemporaryFile) { self.file = file }
}
