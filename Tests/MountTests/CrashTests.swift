import Foundation
import Glibc
import TestSupport
import XCTest


/// The seed of a randomised test: `VMFS_SEED` if set, else `fallback`. Printed, so that a
/// failing run can be repeated.
func testSeed(_ fallback: UInt64, _ name: String) -> UInt64 {
    let seed = ProcessInfo.processInfo.environment["VMFS_SEED"].flatMap { UInt64($0) } ?? fallback
    print("\(name): seed \(seed) (set VMFS_SEED to repeat)")
    return seed
}

/// Starts `python3 -c script args…` as a child process with its output in `out`.
func startPython(_ script: String, _ args: [String], out: String) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", script] + args
    _ = FileManager.default.createFile(atPath: out, contents: nil)
    let h = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
    p.standardOutput = h
    p.standardError = h
    p.standardInput = FileHandle.nullDevice
    try p.run()
    return p
}

/// Waits until every process in `pids` is stopped (or gone); false on timeout.
func waitStopped(_ pids: [Int32], timeout: Double = 10) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        let stopped = pids.allSatisfy { pid in
            guard let s = readText("/proc/\(pid)/stat"), let close = s.lastIndex(of: ")") else { return true }
            let state = s[s.index(close, offsetBy: 2)]
            return state == "T" || state == "t" || state == "Z"
        }
        if stopped { return true }
        usleep(1000)
    }
    return false
}

/// Aborts the FUSE connection of the mount on `mnt` through fusectl: what frees a daemon
/// and clients stuck in the kernel on each other.
func abortFuseConnection(_ mnt: String) {
    guard let line = (readText("/proc/self/mountinfo") ?? "").split(separator: "\n").first(where: {
        let f = $0.split(separator: " "); return f.count > 4 && f[4] == mnt
    }), let dev = line.split(separator: " ")[2].split(separator: ":").last else { return }
    if access("/sys/fs/fuse/connections/\(dev)", F_OK) != 0 { sh("mount -t fusectl none /sys/fs/fuse/connections") }
    sh("echo 1 > /sys/fs/fuse/connections/\(dev)/abort")
}

/// Contract section 4: every change a file operation acknowledged survives `kill -9` of the
/// daemon at any moment; nothing refused and nothing half-done is ever seen.
///
/// Several client processes change guests, drives and media as fast as they can, logging
/// what they were told; the daemon is SIGKILLed at random moments and restarted; after each
/// restart (clients paused) the tree is compared with what the logs allow, and the
/// database's own consistency is checked.
final class CrashTests: MountTestCase {
    /// Clients 0..<mixedClients are `mixed`, the rest `swap`.
    let clientCount = 6
    let mixedClients = 3
    let imagesPerClient = 3
    let rounds = 20

    func testAcknowledgedChangesSurviveSIGKILLAtRandomMoments() throws {
        let seed = testSeed(20_261_104, "crash test")
        var rng = SeededRandom(seed: seed)
        let started = Date()

        // Each client's own images, told apart by their volume label; one refused image.
        var labels: [String: String] = [:]
        var images: [[String]] = []
        for c in 0..<clientCount {
            var mine: [String] = []
            for k in 0..<imagesPerClient {
                let label = "C\(c)I\(k)"
                let path = try fx.makeISO("c\(c)i\(k).iso", label: label, files: ["id.txt": "\(label)\n"])
                labels[path] = label
                mine.append(path)
            }
            images.append(mine)
        }
        let bad = fx.media + "/world-writable.iso"
        try String(repeating: "x", count: 4096).write(toFile: bad, atomically: false, encoding: .utf8)
        chmod(bad, 0o666)

        let stopFile = fx.root + "/stop-clients"
        var logs: [ClientLog] = []
        var clients: [Process] = []
        defer {
            _ = FileManager.default.createFile(atPath: stopFile, contents: nil)
            for p in clients where p.isRunning { kill(p.processIdentifier, SIGCONT); kill(p.processIdentifier, SIGKILL) }
        }
        for c in 0..<clientCount {
            let log = fx.root + "/client\(c).log"
            logs.append(ClientLog(id: c, path: log))
            clients.append(try startPython(crashClientScript,
                                           [fx.mnt, log, String(c), String(seed &+ UInt64(c)), images[c].joined(separator: ","), bad, stopFile,
                                            c < mixedClients ? "mixed" : "swap"],
                                           out: fx.root + "/client\(c).out"))
        }

        var problems: [String] = []
        var kills = 0
        var restartTimes: [Double] = []
        func checkAll(_ round: Int) {
            let (trees, torn) = observeTree(labels: labels)
            problems += torn.map { "round \(round): \($0)" }
            for log in logs { log.check(observed: trees[log.id] ?? TreeModel(), round: round) }
            let db = sh("sqlite3 -readonly '\(fx.state)' \"\(Self.databaseChecks)\"")
            if db.out != "ok\n" { problems.append("round \(round): database check: \(db.out)\(db.err)") }
        }

        for round in 1...rounds {
            usleep(UInt32.random(in: 150_000...1_200_000, using: &rng))
            for (c, p) in clients.enumerated() where !p.isRunning {
                XCTFail("client \(c) exited: \(readText(fx.root + "/client\(c).out") ?? "")")
                return
            }
            guard let daemon = fx.daemon else { return XCTFail("no daemon") }
            kills += 1
            if let asleep = sigkill(daemon) {
                problems.append("round \(round): the daemon did not exit after SIGKILL (threads asleep in \(asleep)); aborted its FUSE connection")
            }
            let pids = clients.map(\.processIdentifier)
            for pid in pids { kill(pid, SIGSTOP) }
            XCTAssertTrue(waitStopped(pids), "clients did not stop")
            fx.crash()
            let t0 = Date()
            try fx.start()
            restartTimes.append(Date().timeIntervalSince(t0))
            checkAll(round)
            for pid in pids { kill(pid, SIGCONT) }
        }

        // Let the clients finish, check the quiet tree, then once more after a clean restart.
        _ = FileManager.default.createFile(atPath: stopFile, contents: nil)
        let deadline = Date().addingTimeInterval(20)
        while clients.contains(where: \.isRunning) && Date() < deadline { usleep(10_000) }
        XCTAssertFalse(clients.contains(where: \.isRunning), "clients did not stop")
        checkAll(rounds + 1)
        fx.stop()
        try fx.start()
        checkAll(rounds + 2)

        problems += logs.flatMap(\.violations)
        let acknowledged = logs.reduce(0) { $0 + $1.acknowledged }
        let refused = logs.reduce(0) { $0 + $1.refused }
        let unknown = logs.reduce(0) { $0 + $1.unknown }
        let inFlight = logs.reduce(0) { $0 + $1.inFlightAtCheck }
        let restart = restartTimes.sorted()[restartTimes.count / 2]
        print("""
            crash test: seed \(seed), \(rounds) rounds, \(kills) SIGKILLs, \(clientCount) clients; \
            operations: \(acknowledged) acknowledged, \(refused) refused, \(unknown) unknown outcome, \
            \(inFlight) in flight at a check; median restart \(Int(restart * 1000)) ms; \
            \(problems.count) violations; \(String(format: "%.1f", Date().timeIntervalSince(started))) s
            """)
        for p in problems.prefix(30) { print("VIOLATION: \(p)") }
        if !problems.isEmpty {
            // Keep the evidence: the fixture's directory goes with the test.
            let keep = "/tmp/vmediafs-crash-\(seed)-\(getpid())"
            sh("mkdir -p '\(keep)' && cp '\(fx.root)'/client*.log '\(fx.log)' '\(keep)'/ && cp -r '\(fx.root)/state' '\(keep)'/")
            print("client logs, daemon log and state kept in \(keep)")
        }
        XCTAssertEqual(problems, [], "seed \(seed)")
        XCTAssertGreaterThan(acknowledged, rounds * clientCount, "the clients got little done")
    }

    /// SIGKILL must always end the daemon, whatever it is doing. A daemon thread asleep in the
    /// kernel waiting for a request that the daemon itself is answering (a FUSE notification
    /// behind a directory lock) cannot die: its connection is never aborted, and its clients
    /// and the mount hang. Clients insert and eject back to back while the daemon is killed
    /// at random moments shortly after each start.
    func testSIGKILLAlwaysEndsTheDaemon() throws {
        let seed = testSeed(20_261_106, "SIGKILL test")
        var rng = SeededRandom(seed: seed)
        let kills = 40
        var images: [String] = []
        for i in 0..<8 {
            let path = fx.media + "/s\(i).raw"
            try String(repeating: "\(i)", count: 8192).write(toFile: path, atomically: false, encoding: .utf8)
            chmod(path, 0o644)
            images.append(path)
        }
        var clients: [Process] = []
        defer { for p in clients where p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        for c in 0..<4 {
            clients.append(try startPython(stormClientScript, [fx.mnt, "s\(c)", images[2 * c], images[2 * c + 1]],
                                           out: fx.root + "/storm\(c).out"))
        }
        var stuck: [String] = []
        for k in 1...kills {
            usleep(UInt32.random(in: 50_000...300_000, using: &rng))
            guard let daemon = fx.daemon else { return XCTFail("no daemon") }
            if let asleep = sigkill(daemon) { stuck.append("kill \(k): threads asleep in \(asleep)") }
            fx.crash()
            try fx.start()
        }
        // The storm really ran: every client is still going and completed round trips.
        for c in 0..<clients.count {
            XCTAssertTrue(clients[c].isRunning, "storm client \(c) exited")
            XCTAssertGreaterThan((readText(fx.root + "/storm\(c).out") ?? "").count, 0, "storm client \(c) completed no insert+eject")
        }
        print("SIGKILL test: seed \(seed), \(kills) kills during an insert/eject storm, \(stuck.count) left the daemon unable to exit")
        XCTAssertEqual(stuck, [], "seed \(seed)")
    }

    /// SIGKILLs the daemon, which must go at once; one that cannot (a thread asleep in the
    /// kernel behind a request it was answering) hangs its clients and its mount. Returns
    /// where its threads sleep when it did not exit in 3 s, after aborting its connection.
    func sigkill(_ daemon: Process) -> String? {
        kill(daemon.processIdentifier, SIGKILL)
        let exitBy = Date().addingTimeInterval(3)
        while daemon.isRunning && Date() < exitBy { usleep(2000) }
        guard daemon.isRunning else { return nil }
        let pid = daemon.processIdentifier
        let wchan = sh("for t in /proc/\(pid)/task/*; do cat $t/wchan; echo; done | grep -v '^0$' | sort -u").out
        abortFuseConnection(fx.mnt)
        return wchan.split(separator: "\n").joined(separator: ", ")
    }

    /// Must print exactly "ok": SQLite's own check, foreign keys, and no half-made rows.
    static let databaseChecks = """
        PRAGMA integrity_check; PRAGMA foreign_key_check;
        SELECT 'drive without guest: ' || name FROM drives WHERE guest_id NOT IN (SELECT id FROM guests);
        SELECT 'media without drive: ' || drive_id FROM loaded WHERE drive_id NOT IN (SELECT id FROM drives);
        SELECT 'loaded twice: ' || path FROM loaded GROUP BY path HAVING count(*) > 1;
        SELECT 'two drives on one LUN: ' || guest_id FROM drives GROUP BY guest_id, lun HAVING count(*) > 1;
        """

    /// The clients' part of the tree as the mount shows it, and every way in which the tree
    /// disagrees with itself (`media` against `status`, status against the disc).
    func observeTree(labels: [String: String]) -> ([Int: TreeModel], [String]) {
        var trees: [Int: TreeModel] = [:]
        var torn: [String] = []
        let fm = FileManager.default
        guard let guests = try? fm.contentsOfDirectory(atPath: fx.path("guests")) else { return ([:], ["cannot list guests/"]) }
        for g in guests {
            guard g.hasPrefix("c"), let cid = Int(g.dropFirst().prefix { $0.isNumber }) else {
                torn.append("unexpected guest \(g)")
                continue
            }
            trees[cid, default: TreeModel()].guests.insert(g)
            guard let drives = try? fm.contentsOfDirectory(atPath: fx.path("guests/\(g)")) else {
                torn.append("cannot list guests/\(g)")
                continue
            }
            var luns: [String: String] = [:]
            // A guest directory also holds its iSCSI files `initiators` and `chap`.
            for d in drives where d != "initiators" && d != "chap" {
                let dir = "guests/\(g)/\(d)"
                let files = Set((try? fm.contentsOfDirectory(atPath: fx.path(dir))) ?? [])
                let st = fx.status(g, d)
                if let other = luns.updateValue(d, forKey: st["lun"] ?? "?") { torn.append("\(other) and \(d) share LUN \(st["lun"] ?? "?")") }
                if st["guest"] != g || st["drive"] != d { torn.append("\(dir): status names \(st["guest"] ?? "nil")/\(st["drive"] ?? "nil")") }
                if files != ["disc", "status", "contents"] && files != ["disc", "status", "contents", "media"] {
                    torn.append("\(dir) holds \(files.sorted())")
                }
                let text = files.contains("media") ? readText(fx.path(dir + "/media")) : nil
                let loaded = st["state"] == "loaded"
                if (text != nil) != loaded { torn.append("\(dir): media file \(text == nil ? "absent" : "present") but status state=\(st["state"] ?? "nil")") }
                if let e = st["last_error"], e.contains("while vmediafs was down") || e.contains("not reloaded") {
                    torn.append("\(dir): media not restored: \(e)")
                }
                var media: String?
                if loaded {
                    media = st["media"]
                    if let text, text != (st["media"] ?? "") + "\n" { torn.append("\(dir): media reads \(text.debugDescription), status media=\(st["media"] ?? "")") }
                    torn += checkDisc(dir, status: st, labels: labels)
                } else {
                    media = text?.trimmingCharacters(in: .newlines)
                    if st["media"] != "" || st["kind"] != "none" { torn.append("\(dir): empty but status media=\(st["media"] ?? "nil") kind=\(st["kind"] ?? "nil")") }
                }
                trees[cid]!.drives[d] = .init(guest: g, media: media)
            }
        }
        return (trees, torn)
    }

    /// A loaded drive's disc must be the image status names: its size and its volume label.
    func checkDisc(_ dir: String, status st: [String: String], labels: [String: String]) -> [String] {
        guard let path = st["media"], let label = labels[path] else { return ["\(dir): loaded with \(st["media"] ?? "nil"), not one of the images"] }
        var fileStat = stat(), discStat = stat()
        stat(path, &fileStat)
        guard stat(fx.path(dir + "/disc"), &discStat) == 0 else { return ["\(dir): stat disc: \(String(cString: strerror(errno)))"] }
        var out: [String] = []
        if st["size"] != String(fileStat.st_size) { out.append("\(dir): status size=\(st["size"] ?? "nil"), image has \(fileStat.st_size)") }
        if discStat.st_size != (fileStat.st_size + 2047) / 2048 * 2048 { out.append("\(dir): disc size \(discStat.st_size) for an image of \(fileStat.st_size)") }
        let fd = open(fx.path(dir + "/disc"), O_RDONLY)
        guard fd >= 0 else { return out + ["\(dir): open disc: \(String(cString: strerror(errno)))"] }
        defer { close(fd) }
        var volume = [UInt8](repeating: 0, count: 32)
        let n = pread(fd, &volume, 32, 16 * 2048 + 40)
        let read = String(decoding: volume.prefix(max(0, n)), as: UTF8.self).trimmingCharacters(in: .whitespaces)
        if read != label { out.append("\(dir): disc volume label \(read.debugDescription), status says \(label)") }
        return out
    }
}
