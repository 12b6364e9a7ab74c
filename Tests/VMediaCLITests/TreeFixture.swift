import Foundation
import Glibc
import XCTest
@testable import VMediaCLI

/// Plain directories and files laid out as SPEC section 2 describes, in a temporary
/// directory, with `settle()` standing in for the daemon's bookkeeping. The same
/// subcommands run against the real daemon in Tests/MountTests/CLITests.swift.
final class FakeMount {
    /// The mount point.
    let root: String
    let mediaDir: String
    /// The file operations to use on it: the fake's stand-in for the daemon's directory semantics.
    let io: any TreeIO = FakeDaemonIO()

    init() throws {
        let base = Paths.join(NSTemporaryDirectory(), "vmedia-test-\(getpid())-\(UUID().uuidString.prefix(8))")
        root = Paths.join(base, "mnt")
        mediaDir = Paths.join(base, "media")
        for dir in [Paths.join(root, "guests"), Paths.join(root, "library"), mediaDir] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        _ = FileManager.default.createFile(atPath: Paths.join(root, "events"), contents: Data())
    }

    func tree(io: (any TreeIO)? = nil, workingDirectory: String? = nil) -> VMediaTree {
        VMediaTree(root: root, io: io ?? self.io, workingDirectory: workingDirectory)
    }

    /// Creates an image file of `bytes` bytes in the media dir; returns its absolute path.
    /// Its library NAME is the file name.
    @discardableResult func makeImage(_ fileName: String, bytes: Int) throws -> String {
        let path = Paths.join(mediaDir, fileName)
        try FakeMount.writeFile(path, Data(repeating: 0x43, count: bytes), mode: 0o644)
        let entry = Paths.join(root, "library", fileName)
        try FileManager.default.createDirectory(atPath: entry, withIntermediateDirectories: true)
        try FakeMount.writeText(Paths.join(entry, "path"), path + "\n")
        try FakeMount.writeText(Paths.join(entry, "size"), "\(bytes)\n")
        try FakeMount.writeText(Paths.join(entry, "sharable"), "no\n")
        try FakeMount.writeText(Paths.join(entry, "users"), "")
        return path
    }

    /// Makes the tree's derived files follow what was just done, as the daemon would:
    /// gives every drive a `status`, resolves what was written into `media` the way the
    /// daemon would (a library NAME becomes its path), and rewrites `library/*/users`.
    func settle() throws {
        let tree = VMediaTree(root: root)
        var users: [String: [String]] = [:]
        for guest in try tree.guestNames() {
            for drive in try tree.driveNames(of: guest) {
                let ref = DriveRef(guest: guest, drive: drive)
                var media: String? = nil
                if var written = try? tree.readFact(tree.mediaPath(ref)) {
                    if !written.contains("/") {
                        written = (try? tree.readFact(Paths.join(tree.libraryEntryPath(written), "path"))) ?? written
                    }
                    media = written
                    try FakeMount.writeText(tree.mediaPath(ref), written + "\n")
                    users[written, default: []].append(ref.description)
                }
                let old = DriveStatus(parsing: (try? tree.io.read(tree.statusPath(ref))) ?? "")
                var generation = old.generation ?? 0
                if old.media != media { generation += 1 }
                try FakeMount.writeText(tree.statusPath(ref), FakeMount.status(ref, media: media, generation: generation))
            }
        }
        for entry in try FileManager.default.contentsOfDirectory(atPath: tree.libraryPath) {
            let dir = tree.libraryEntryPath(entry)
            let path = try tree.readFact(Paths.join(dir, "path"))
            let list = users[path, default: []].map { $0 + "\n" }.joined()
            try FakeMount.writeText(Paths.join(dir, "users"), list)
        }
    }

    /// A `status` file as SPEC 2.3 lists its keys.
    static func status(_ ref: DriveRef, media: String?, generation: Int64, locked: Bool = false,
                       ejectPending: Bool = false, lastError: String = "") -> String {
        let size = media.flatMap { try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int64 } ?? 0
        return """
            guest=\(ref.guest)
            drive=\(ref.drive)
            state=\(media == nil ? "empty" : "loaded")
            kind=\(media == nil ? "none" : "file")
            media=\(media ?? "")
            size=\(size)
            blocks=\((size + 2047) / 2048)
            block_size=2048
            sharable=no
            locked=\(locked ? "yes" : "no")
            eject_pending=\(ejectPending ? "yes" : "no")
            generation=\(generation)
            openers=0
            loaded_by=\(media == nil ? "" : "root")
            loaded_at=\(media == nil ? "" : "2026-11-02T10:00:00Z")
            last_error=\(lastError)

            """
    }

    /// Undoes what the test made.
    func tearDown() {
        try? FileManager.default.removeItem(atPath: (root as NSString).deletingLastPathComponent)
    }

    static func writeText(_ path: String, _ text: String) throws {
        try writeFile(path, Data(text.utf8), mode: 0o644)
    }

    static func writeFile(_ path: String, _ data: Data, mode: Int) throws {
        try data.write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
    }
}

/// The daemon's directory semantics that plain directories lack: a drive's `status` is not
/// a real file, so `rmdir` of a drive removes it, and refuses with `EBUSY` while `media` is
/// there (media loaded).
struct FakeDaemonIO: TreeIO {
    let real = POSIXTreeIO()
    func makeDirectory(_ path: String, mode: UInt32) throws(Errno) { try real.makeDirectory(path, mode: mode) }
    func removeDirectory(_ path: String) throws(Errno) {
        let names = (try? real.list(path)) ?? []
        if names.contains("media") { throw Errno.busy }
        if names == ["status"] { try real.unlink(Paths.join(path, "status")) }
        try real.removeDirectory(path)
    }
    func unlink(_ path: String) throws(Errno) { try real.unlink(path) }
    func info(_ path: String) throws(Errno) -> FileInfo { try real.info(path) }
    func list(_ path: String) throws(Errno) -> [String] { try real.list(path) }
    func read(_ path: String) throws(Errno) -> String { try real.read(path) }
    func writeControl(_ path: String, _ text: String, create: Bool) throws(ControlWriteFailure) {
        try real.writeControl(path, text, create: create)
    }
    func follow(_ path: String, line: (String) -> Bool) throws(Errno) { try real.follow(path, line: line) }
}

/// `POSIXTreeIO` with chosen calls failing with chosen errnos, to test the logic that
/// reacts to the filesystem's answers (retries, deferred ejects) without a mount.
final class FaultyIO: TreeIO, @unchecked Sendable {
    enum Call: Equatable { case mkdir, rmdir, unlink, write, open }
    private struct Rule { var call: Call; var pathSuffix: String; var errno: Errno; var times: Int; var before: (() -> Void)? }
    private let lock = NSLock()
    private var rules: [Rule] = []
    private(set) var log: [String] = []
    let real: any TreeIO = FakeDaemonIO()

    /// Makes the next `times` calls of `call` on a path ending in `pathSuffix` fail; `before`
    /// runs first (to change the fake tree as the daemon would have).
    func fail(_ call: Call, _ pathSuffix: String, _ errno: Int32, times: Int = 1, before: (() -> Void)? = nil) {
        lock.withLock { rules.append(Rule(call: call, pathSuffix: pathSuffix, errno: Errno(errno), times: times, before: before)) }
    }

    private func check(_ call: Call, _ path: String) -> Errno? {
        let rule: Rule? = lock.withLock {
            log.append("\(call) \(path)")
            guard let i = rules.firstIndex(where: { $0.call == call && path.hasSuffix($0.pathSuffix) && $0.times > 0 }) else { return nil }
            rules[i].times -= 1
            return rules[i]
        }
        rule?.before?()
        return rule?.errno
    }

    func makeDirectory(_ path: String, mode: UInt32) throws(Errno) {
        if let e = check(.mkdir, path) { throw e }
        try real.makeDirectory(path, mode: mode)
    }
    func removeDirectory(_ path: String) throws(Errno) {
        if let e = check(.rmdir, path) { throw e }
        try real.removeDirectory(path)
    }
    func unlink(_ path: String) throws(Errno) {
        if let e = check(.unlink, path) { throw e }
        try real.unlink(path)
    }
    func info(_ path: String) throws(Errno) -> FileInfo { try real.info(path) }
    func list(_ path: String) throws(Errno) -> [String] { try real.list(path) }
    func read(_ path: String) throws(Errno) -> String { try real.read(path) }
    func writeControl(_ path: String, _ text: String, create: Bool) throws(ControlWriteFailure) {
        if let e = check(.open, path) { throw ControlWriteFailure(step: .open, errno: e) }
        if let e = check(.write, path) { throw ControlWriteFailure(step: .write, errno: e) }
        try real.writeControl(path, text, create: create)
    }
    func follow(_ path: String, line: (String) -> Bool) throws(Errno) { try real.follow(path, line: line) }
}
