import Foundation
import Glibc
import XCTest
@testable import VirtualMedia

final class NamesTests: XCTestCase {
    func testValidNames() throws {
        for ok in ["a", "aix01", "vtopt0", "A.b_c-9", String(repeating: "x", count: 64)] {
            XCTAssertNoThrow(try Names.validate(ok, what: "guest"), ok)
        }
    }

    func testInvalidNames() {
        for bad in ["", ".a", "a/b", "..", "a b", "é", "media", "disc", "status", "contents", "initiators", "chap",
                    String(repeating: "x", count: 65), String(repeating: "y", count: 300)] {
            XCTAssertThrowsError(try Names.validate(bad, what: "drive"), bad) { e in
                XCTAssertEqual((e as? VMError)?.errno == EINVAL || (e as? VMError)?.errno == ENAMETOOLONG, true)
            }
        }
    }
}

final class StateStoreTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = NSTemporaryDirectory() + "vmfs-store-\(UUID().uuidString)" }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// A URL's identity: the URL's hash as the inode (any 64-bit value, so often with the top
    /// bit set, stored as a negative SQLite integer) and its validator come back as stored.
    func testURLMediaRoundTrip() throws {
        let path = dir + "/state.db"
        let url = "http://h/iso/a.iso"
        let identity = ImageIdentity(device: ImageIdentity.urlDevice, inode: UInt64.max - 5, size: 1 << 40, modificationNanos: 0,
                                     validator: "\"abc-123\"")
        do {
            let s = try StateStore(path: path)
            let g = try s.addGuest(name: "g", owner: Ownership(uid: 0, gid: 0, mode: 0o755), at: 1, history: nil)
            let d = try s.addDrive(guestID: g, name: "cd0", lun: 0, owner: Ownership(uid: 0, gid: 0, mode: 0o755), at: 1, history: nil)
            try s.setLoaded(driveID: d, LoadedMedia(path: url, kind: .url, identity: identity, loadedBy: 0, loadedAt: 2),
                            lastError: "", history: nil)
        }
        let loaded = try StateStore(path: path).loadDrives().first?.loaded
        XCTAssertEqual(loaded?.kind, .url)
        XCTAssertEqual(loaded?.path, url)
        XCTAssertEqual(loaded?.identity, identity)
        XCTAssertEqual(ImageIdentity(url: url, size: 1, validator: "v").device, ImageIdentity.urlDevice)
    }

    func testSchemaRoundTripAndHistory() throws {
        let path = dir + "/sub/state.db"
        do {
            let s = try StateStore(path: path)
            let g = try s.addGuest(name: "g1", owner: Ownership(uid: 1, gid: 2, mode: 0o750), at: 5,
                                   history: HistoryEvent(time: 5, kind: "create", guest: "g1", drive: "", uid: 1, detail: ""))
            let d = try s.addDrive(guestID: g, name: "cd0", lun: 3, owner: Ownership(uid: 1, gid: 2, mode: 0o755), at: 6, history: nil)
            let m = LoadedMedia(path: "/x.iso", kind: .file, identity: ImageIdentity(device: 1, inode: 2, size: 3, modificationNanos: 4),
                                loadedBy: 7, loadedAt: 8)
            try s.setLoaded(driveID: d, m, lastError: "", changedAt: 9, history: nil)
            try s.setSharable(path: "/x.iso", true, history: nil)
        }
        let s = try StateStore(path: path)
        XCTAssertEqual(try s.loadGuests().map(\.name), ["g1"])
        XCTAssertEqual(try s.loadGuests().first?.owner, Ownership(uid: 1, gid: 2, mode: 0o750))
        let drives = try s.loadDrives()
        XCTAssertEqual(drives.count, 1)
        XCTAssertEqual(drives[0].lun, 3)
        XCTAssertEqual(drives[0].loaded?.identity, ImageIdentity(device: 1, inode: 2, size: 3, modificationNanos: 4))
        XCTAssertEqual(drives[0].loaded?.loadedBy, 7)
        XCTAssertEqual(drives[0].changed, 9, "the time media came or went (the drive directory's mtime) is kept")
        XCTAssertEqual(try s.loadSharable(), ["/x.iso": true])
        XCTAssertEqual(try s.history().map(\.kind), ["create"])
        let mode = try String(contentsOfFile: path + ".lock", encoding: .utf8)
        XCTAssertEqual(mode, "\(getpid())\n")
    }

    func testSecondOpenIsRefusedWhileLocked() throws {
        let path = dir + "/state.db"
        let first = try StateStore(path: path)
        // flock locks belong to the open file description: a second open in the same
        // process conflicts just as another process would.
        XCTAssertThrowsError(try StateStore(path: path)) { e in
            XCTAssertEqual((e as? VMError)?.errno, EBUSY)
            XCTAssertTrue((e as? VMError)!.reason.contains("in use"))
        }
        _ = first
    }

    func testForeignOrDamagedDatabaseIsLeftAlone() throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let junk = dir + "/junk.db"
        let bytes = Data(repeating: 0x41, count: 8192)
        _ = FileManager.default.createFile(atPath: junk, contents: bytes)
        XCTAssertThrowsError(try StateStore(path: junk))
        XCTAssertEqual(FileManager.default.contents(atPath: junk), bytes)

        let foreign = dir + "/foreign.db"
        XCTAssertEqual(Process.run("sqlite3", [foreign, "CREATE TABLE t(x); INSERT INTO t VALUES(1);"]), 0)
        XCTAssertThrowsError(try StateStore(path: foreign)) { e in
            XCTAssertTrue((e as? VMError)!.reason.contains("not a vmediafs state database"))
        }
    }
}

final class PolicyTests: XCTestCase {
    var dir = ""
    override func setUp() {
        dir = NSTemporaryDirectory() + "vmfs-policy-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: dir + "/repo", withIntermediateDirectories: true)
        try? FileManager.default.createDirectory(atPath: dir + "/elsewhere", withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func make(_ rel: String, size: Int = 4096, mode: mode_t = 0o644) -> String {
        let p = dir + "/" + rel
        _ = FileManager.default.createFile(atPath: p, contents: Data(repeating: 1, count: size))
        chmod(p, mode)
        return p
    }

    func errnoOf(_ policy: MediaPolicy, _ path: String) -> Int32 {
        do {
            let o = try policy.open(path, as: .daemon)
            close(o.fd)
            return 0
        } catch { return error.errno }
    }

    func testRefusalTable() {
        let policy = MediaPolicy(MediaConfiguration(mediaDirectories: [dir + "/repo"]))
        XCTAssertEqual(errnoOf(policy, make("repo/ok.iso")), 0)
        XCTAssertEqual(errnoOf(policy, dir + "/repo/none.iso"), ENOENT)
        XCTAssertEqual(errnoOf(policy, make("repo/ww.iso", mode: 0o666)), EPERM)
        XCTAssertEqual(errnoOf(policy, make("repo/empty.iso", size: 0)), EINVAL)
        XCTAssertEqual(errnoOf(policy, dir + "/repo"), EINVAL)
        XCTAssertEqual(errnoOf(policy, make("elsewhere/out.iso")), EPERM)
        symlink(dir + "/elsewhere/out.iso", dir + "/repo/link.iso")
        XCTAssertEqual(errnoOf(policy, dir + "/repo/link.iso"), EPERM, "a symlink leading out is outside")
        symlink(dir + "/repo/ok.iso", dir + "/elsewhere/in.iso")
        XCTAssertEqual(errnoOf(policy, dir + "/elsewhere/in.iso"), 0, "a symlink leading in is inside")
        XCTAssertEqual(errnoOf(policy, dir + "/repo/../repo/ok.iso"), 0)
        XCTAssertEqual(errnoOf(policy, ""), EINVAL)
        XCTAssertEqual(errnoOf(policy, "/" + String(repeating: "a", count: 5000)), ENAMETOOLONG)
        XCTAssertEqual(errnoOf(policy, "/dev/null"), EINVAL, "a character device is not an image")
    }

    func testNoMediaDirMeansAnyPath() {
        let policy = MediaPolicy(MediaConfiguration())
        XCTAssertEqual(errnoOf(policy, make("elsewhere/any.iso", size: 3000)), 0, "size need not be a multiple of 2048")
    }

    func testCallerCredentialsDecideAccess() {
        let p = make("repo/private.iso", mode: 0o600)
        let policy = MediaPolicy(MediaConfiguration())
        let nobody = Credentials(uid: 65534, gid: 65534, groups: [65534])
        chmod(dir, 0o755)
        do {
            _ = try policy.open(p, as: nobody)
            XCTFail("nobody cannot read a 0600 root file")
        } catch {
            XCTAssertEqual(error.errno, EACCES)
        }
        XCTAssertEqual(errnoOf(policy, p), 0, "the daemon's own identity is back after the check")
        chmod(p, 0o644)
        XCTAssertNoThrow(try { let o = try policy.open(p, as: nobody); close(o.fd) }())
    }
}

final class EventBusTests: XCTestCase {
    func testLinesQuotingAndOverflow() {
        let bus = EventBus()
        let sub = bus.subscribe {}
        bus.post("insert", "g/d", [("media", "/a b/c.iso"), ("x", "plain")])
        let line = String(decoding: sub.take(maxBytes: 4096)!, as: UTF8.self)
        XCTAssertTrue(line.hasSuffix(" insert g/d media=\"/a b/c.iso\" x=plain\n"), line)
        for i in 0..<(EventSubscription.capacity + 10) { bus.post("create", "g\(i)") }
        let all = String(decoding: sub.take(maxBytes: 1 << 24)!, as: UTF8.self)
        XCTAssertTrue(all.split(separator: "\n")[0].hasSuffix("overflow - dropped=10"), String(all.prefix(100)))
        XCTAssertEqual(all.split(separator: "\n").count, EventSubscription.capacity + 1)
        XCTAssertNil(sub.take(maxBytes: 100))
    }
}

extension Process {
    static func run(_ tool: String, _ args: [String]) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [tool] + args
        do { try p.run() } catch { return -1 }
        p.waitUntilExit()
        return p.terminationStatus
    }

    /// What `tool` printed on standard output ("" if it could not run).
    static func output(_ tool: String, _ args: [String]) -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [tool] + args
        let pipe = Pipe()
        p.standardOutput = pipe
        do { try p.run() } catch { return "" }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}

/// Sharing is checked against an index of which drives hold which image; it must follow
/// every insert, swap and eject, and be rebuilt at start.
final class SharingIndexTests: XCTestCase {
    var dir = ""
    override func setUp() {
        dir = NSTemporaryDirectory() + "vmfs-share-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func image(_ name: String) -> String {
        let p = dir + "/" + name
        _ = FileManager.default.createFile(atPath: p, contents: Data(repeating: 7, count: 8192))
        chmod(p, 0o644)
        return p
    }

    func errnoOf(_ body: () throws -> Void) -> Int32 {
        do { try body(); return 0 } catch { return (error as? VMError)?.errno ?? -1 }
    }

    func testSharingFollowsInsertsSwapsEjectsAndRestarts() throws {
        let a = image("a.iso"), b = image("b.iso")
        let root = Credentials(uid: 0, gid: 0, groups: [])
        let owner = Ownership(uid: 0, gid: 0, mode: 0o755)
        var d1: Int64 = 0, d2: Int64 = 0
        do {
            let host = try Host(store: try StateStore(path: dir + "/state.db"), configuration: MediaConfiguration(mediaDirectories: []))
            _ = try host.createGuest("g", owner: owner)
            d1 = try host.createDrive(guest: "g", name: "cd1", owner: owner).id
            d2 = try host.createDrive(guest: "g", name: "cd2", owner: owner).id
            XCTAssertEqual(errnoOf { _ = try host.insert(driveID: d1, text: a, by: root) }, 0)
            XCTAssertEqual(errnoOf { _ = try host.insert(driveID: d2, text: a, by: root) }, EBUSY, "a is in cd1")
            XCTAssertEqual(errnoOf { _ = try host.insert(driveID: d1, text: b, by: root) }, 0, "swap a -> b")
            XCTAssertEqual(errnoOf { _ = try host.insert(driveID: d2, text: a, by: root) }, 0, "a was freed by the swap")
            XCTAssertEqual(errnoOf { _ = try host.insert(driveID: d2, text: b, by: root) }, EBUSY, "b is in cd1")
            XCTAssertEqual(host.drive(id: d2)?.loaded?.path, a, "a refused swap keeps the old media")
            XCTAssertEqual(errnoOf { try host.eject(driveID: d1, by: root) }, 0)
            XCTAssertEqual(errnoOf { _ = try host.insert(driveID: d2, text: b, by: root) }, 0, "b was freed by the eject")
            XCTAssertEqual(errnoOf { _ = try host.insert(driveID: d1, text: a, by: root) }, 0, "a was freed by cd2's swap")
        }
        // Restarted from the database: cd1 holds a, cd2 holds b.
        let host = try Host(store: try StateStore(path: dir + "/state.db"), configuration: MediaConfiguration(mediaDirectories: []))
        XCTAssertEqual(errnoOf { _ = try host.insert(driveID: d2, text: a, by: root) }, EBUSY, "the index is rebuilt at start")
    }
}

/// Checkpoints run in the background, so no commit pays for one.
final class CheckpointTests: XCTestCase {
    func testCommittedChangesReachTheDatabaseFileWithoutAnAutomaticCheckpoint() throws {
        let dir = NSTemporaryDirectory() + "vmfs-ckpt-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/state.db"
        let store = try StateStore(path: path)
        XCTAssertEqual(store.automaticCheckpointPages, 0, "no commit checkpoints by itself")
        let owner = Ownership(uid: 0, gid: 0, mode: 0o755)
        let n = Checkpointer.interval * 4
        for i in 0..<n {
            _ = try store.addGuest(name: "g\(i)", owner: owner, at: Int64(i),
                                   history: HistoryEvent(time: Int64(i), kind: "create", guest: "g\(i)", drive: "", uid: 0, detail: ""))
        }
        store.drainCheckpoints()
        // Read the database file alone (immutable: the WAL is ignored): what is there was
        // copied by a checkpoint. SQLite's own automatic checkpoint is off, so only the
        // background checkpointer can have put it there.
        let r = Process.output("sqlite3", ["file:\(path)?immutable=1", "SELECT count(*) FROM history"])
        let inFile = Int(r.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        XCTAssertGreaterThanOrEqual(inFile, n - Checkpointer.interval, "sqlite3 said: \(r)")
        XCTAssertEqual(try store.history().count, n, "and everything is readable through the store")
    }
}
