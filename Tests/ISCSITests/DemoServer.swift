import Foundation
import Synchronization
import XCTest

/// `iscsi-demo` run as a child process, so that a test can count the server's own descriptors
/// and memory (`/proc/PID/fd`, `VmRSS`) apart from the test's, and see whether a fault ended it.
/// It serves its generated 64 MiB pattern disc (byte i is `PatternSource.byte(i)`).
final class DemoServer {
    let process = Process()
    private(set) var port = 0
    static let target = "iqn.2026-11.io.vmediafs:demo"

    /// Starts `iscsi-demo --port 0 ARGS` and waits (up to `timeout`) for its "serving" line.
    init(_ args: [String] = [], timeout: TimeInterval = 30) throws {
        process.executableURL = DemoServer.binary
        process.arguments = ["--port", "0"] + args
        let out = Pipe()
        process.standardOutput = out
        // It logs every login and logout on stderr: a pipe nobody reads would fill and block it.
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        port = try DemoServer.readPort(out.fileHandleForReading, timeout: timeout)
    }

    deinit { stop() }

    /// The `iscsi-demo` built next to the test bundle.
    static var binary: URL {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return exe.deletingLastPathComponent().appendingPathComponent("iscsi-demo")
    }

    /// Parses ":PORT" from "iscsi-demo: serving ... on HOST:PORT"; the read runs on its own
    /// thread so that a child that never prints cannot hang the test.
    private static func readPort(_ handle: FileHandle, timeout: TimeInterval) throws -> Int {
        let line = Mutex<String?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread {
            var bytes: [UInt8] = []
            while true {
                let d = handle.readData(ofLength: 1)
                guard let b = d.first, b != UInt8(ascii: "\n") else { break }
                bytes.append(b)
            }
            line.withLock { $0 = String(decoding: bytes, as: UTF8.self) }
            done.signal()
        }.start()
        _ = done.wait(timeout: .now() + timeout)
        guard let text = line.withLock({ $0 }), let colon = text.lastIndex(of: ":"),
              let port = Int(text[text.index(after: colon)...]) else {
            throw NSError(domain: "DemoServer", code: 1, userInfo: [NSLocalizedDescriptionKey: "no serving line"])
        }
        return port
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    /// Open descriptors of the server process.
    var descriptors: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    /// Resident set size of the server process in KiB (VmRSS).
    var rssKiB: Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return -1 }
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
    }

    /// SIGTERM, then waits for the exit (SIGKILL after 10 s).
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
    }
}
