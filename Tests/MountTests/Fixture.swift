import Foundation
import Glibc
import XCTest

/// The result of a command run by a test.
struct Run {
    var status: Int32
    var out: String
    var err: String
}

/// Runs `command` with bash (whose echo reports the errno, unlike dash's); optionally as another user (runuser), with a timeout.
@discardableResult
func sh(_ command: String, as user: String? = nil, timeout: Double = 120) -> Run {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: user == nil ? "/bin/bash" : "/usr/sbin/runuser")
    p.arguments = user == nil ? ["-c", command] : ["-u", user!, "--", "/bin/bash", "-c", command]
    let outURL = FileManager.default.temporaryDirectory.appendingPathComponent("vmfs-out-\(UUID().uuidString)")
    let errURL = FileManager.default.temporaryDirectory.appendingPathComponent("vmfs-err-\(UUID().uuidString)")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: outURL); try? FileManager.default.removeItem(at: errURL) }
    p.standardOutput = try? FileHandle(forWritingTo: outURL)
    p.standardError = try? FileHandle(forWritingTo: errURL)
    p.standardInput = FileHandle.nullDevice
    do { try p.run() } catch { return Run(status: -1, out: "", err: "\(error)") }
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < deadline { usleep(2000) }
    if p.isRunning {
        // A process waiting on a FUSE request the daemon took but never answers cannot be
        // killed until the connection ends: give up on it rather than hang the test.
        kill(p.processIdentifier, SIGKILL)
        let grace = Date().addingTimeInterval(5)
        while p.isRunning && Date() < grace { usleep(2000) }
        return Run(status: -2, out: "", err: "timed out: \(command)")
    }
    p.waitUntilExit()
    let out = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
    let err = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
    return Run(status: p.terminationStatus, out: out, err: err)
}

/// The errno of writing `text` to `path` the way `echo text > path` does (open with
/// O_WRONLY|O_CREAT|O_TRUNC, one write, close); 0 when all succeeded.
func writeErrno(_ path: String, _ text: String) -> Int32 {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { return errno }
    var e: Int32 = 0
    if !text.isEmpty {
        let n = text.withCString { write(fd, $0, strlen($0)) }
        if n < 0 { e = errno }
    }
    if close(fd) != 0 && e == 0 { e = errno }
    return e
}

func openErrno(_ path: String, _ flags: Int32) -> Int32 {
    let fd = open(path, flags)
    if fd < 0 { return errno }
    close(fd)
    return 0
}

func readText(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

/// `key=value` lines as a dictionary.
func keyValues(_ text: String?) -> [String: String] {
    var d: [String: String] = [:]
    for line in (text ?? "").split(separator: "\n") {
        guard let eq = line.firstIndex(of: "=") else { continue }
        d[String(line[..<eq])] = String(line[line.index(after: eq)...])
    }
    return d
}

/// The built `vmediafs` daemon next to the test bundle.
var daemonPath: String {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
    while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("vmediafs").path) && dir.path != "/" {
        dir = dir.deletingLastPathComponent()
    }
    return dir.appendingPathComponent("vmediafs").path
}

/// One test's world: a temporary directory with a mountpoint, a media repository, a state
/// database and a running daemon. `stop()` always unmounts, even after a failure.
final class MountFixture {
    let root: String
    let mnt: String
    let media: String
    let state: String
    let log: String
    var extraArgs: [String]
    private(set) var daemon: Process?

    init(extraArgs: [String] = [], mediaDir: Bool = true) throws {
        var template = Array("/tmp/vmediafs-test-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw NSError(domain: "mkdtemp", code: Int(errno)) }
        root = String(cString: p)
        chmod(root, 0o755)
        mnt = root + "/mnt"
        media = root + "/media"
        state = root + "/state/state.db"
        log = root + "/daemon.log"
        for d in [mnt, media] { mkdir(d, 0o755) }
        // VMEDIAFS_TEST_DAEMON_ARGS="-o fuse_layer=libfuse" runs every mount test on libfuse;
        // "-o io_uring" over io_uring queues (with /sys/module/fuse/parameters/enable_uring = Y).
        let fromEnvironment = (ProcessInfo.processInfo.environment["VMEDIAFS_TEST_DAEMON_ARGS"] ?? "")
            .split(separator: " ").map(String.init)
        self.extraArgs = (mediaDir ? ["--media-dir", media] : []) + fromEnvironment + extraArgs
    }

    /// Starts the daemon and waits until the mount answers.
    func start(_ more: [String] = []) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: daemonPath)
        p.arguments = [mnt, "--state", state, "-f"] + extraArgs + more
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        h.seekToEndOfFile()
        p.standardError = h
        p.standardOutput = h
        p.standardInput = FileHandle.nullDevice
        try p.run()
        daemon = p
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if isMounted { return }
            if !p.isRunning { throw NSError(domain: "vmediafs exited: \(readText(log) ?? "")", code: Int(p.terminationStatus)) }
            usleep(10_000)
        }
        throw NSError(domain: "vmediafs did not mount: \(readText(log) ?? "")", code: 1)
    }

    var isMounted: Bool {
        (readText("/proc/self/mountinfo") ?? "").split(separator: "\n").contains { line in
            let f = line.split(separator: " ")
            return f.count > 4 && f[4] == mnt && line.contains("fuse.vmediafs")
        }
    }

    /// SIGTERM and wait; if the daemon does not go, SIGKILL and a lazy unmount.
    func stop() {
        if let p = daemon, p.isRunning {
            kill(p.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(10)
            while p.isRunning && Date() < deadline { usleep(10_000) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        }
        daemon = nil
        if isMounted { sh("fusermount3 -uz '\(mnt)'") }
    }

    /// Kills the daemon with SIGKILL, as a crash would, and clears the dead mount.
    func crash() {
        if let p = daemon, p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        daemon = nil
        sh("fusermount3 -uz '\(mnt)'")
    }

    func destroy() {
        stop()
        sh("rm -rf '\(root)'")
    }

    func path(_ rel: String) -> String { mnt + "/" + rel }
    func status(_ guest: String, _ drive: String) -> [String: String] { keyValues(readText(path("guests/\(guest)/\(drive)/status"))) }
    var logText: String { readText(log) ?? "" }

    /// Makes an ISO 9660 image (Rock Ridge + Joliet) of a small tree with xorriso; returns its path.
    @discardableResult
    func makeISO(_ name: String, label: String = "VMFSTEST", files: [String: String] = ["hello.txt": "hello\n"],
                 in dir: String? = nil) throws -> String {
        let src = root + "/src-\(name)"
        sh("rm -rf '\(src)'; mkdir -p '\(src)'")
        for (rel, text) in files {
            let full = src + "/" + rel
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: full, atomically: false, encoding: .utf8)
        }
        let out = (dir ?? media) + "/" + name
        let r = sh("xorriso -as mkisofs -quiet -R -J -V '\(label)' -o '\(out)' '\(src)'")
        guard r.status == 0 else { throw NSError(domain: "xorriso: \(r.err)", code: Int(r.status)) }
        chmod(out, 0o644)
        return out
    }

    func sourceTree(_ name: String) -> String { root + "/src-\(name)" }
}

/// A test case whose every test gets its own mounted fixture, always torn down.
class MountTestCase: XCTestCase {
    var fx: MountFixture!

    /// Extra daemon arguments for this class's tests.
    var daemonArguments: [String] { [] }

    override func setUpWithError() throws {
        fx = try MountFixture(extraArgs: daemonArguments)
        try fx.start()
    }

    override func tearDown() {
        fx?.destroy()
        fx = nil
    }

    /// The files of the default drive that `makeDrive()` makes.
    var disc: String { fx.path("guests/aix01/cd0/disc") }
    var mediaFile: String { fx.path("guests/aix01/cd0/media") }

    /// Waits up to `seconds` for `condition`; true if it came.
    @discardableResult
    func eventually(_ seconds: Double = 5, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() && Date() < deadline { usleep(20_000) }
        return condition()
    }

    /// Starts a bash command in the background; returns it and the file its stderr goes to.
    func background(_ command: String) -> (Process, String) {
        let err = fx.root + "/bg-\(UUID().uuidString).err"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", command + " 2> '\(err)'"]
        p.standardInput = FileHandle.nullDevice
        try? p.run()
        return (p, err)
    }

    func waitFor(_ what: String, _ condition: () -> Bool) { XCTAssertTrue(eventually(5, condition), what) }

    /// Creates guest `g` with drive `d`.
    func makeDrive(_ g: String = "aix01", _ d: String = "cd0") {
        XCTAssertEqual(mkdir(fx.path("guests/\(g)"), 0o755) == 0 || errno == EEXIST, true)
        XCTAssertEqual(mkdir(fx.path("guests/\(g)/\(d)"), 0o755), 0, "mkdir drive: \(String(cString: strerror(errno)))")
    }
}
