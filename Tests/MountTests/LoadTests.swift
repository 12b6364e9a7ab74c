import Foundation
import Glibc
import XCTest

/// Contract sections 2.1 and 2.2 under load: many readers of `disc` on many drives while
/// other clients insert, swap and eject on those drives as fast as they can. No reader ever
/// gets another media's bytes (each read is the generation its descriptor was opened on, or
/// fails with ESTALE/ENOMEDIUM/EIO), the daemon does not crash, and it leaks no descriptors.
final class LoadTests: MountTestCase {
    let driveCount = 8
    let imageCount = 16
    let readerCount = 16
    let changerCount = 4
    let seconds = 20.0

    func testReadersNeverSeeAnotherMediasBytesWhileMediaStorm() throws {
        let seed = testSeed(20_261_105, "load test")
        // Images of different sizes, each block stamped; one with a short last block.
        var sizes: [String: Int] = [:]
        var images: [String] = []
        for i in 0..<imageCount {
            let blocks = 64 + 24 * i
            var size = blocks * 2048
            if i == imageCount - 1 { size -= 1000 }
            var data = Data(capacity: blocks * 2048)
            for b in 0..<blocks {
                let line = Array(blockStamp(image: i, block: b).utf8)
                var block = [UInt8]()
                while block.count < 2048 { block += line }
                data.append(contentsOf: block.prefix(2048))
            }
            let path = fx.media + "/img\(String(format: "%02d", i)).raw"
            try data.prefix(size).write(to: URL(fileURLWithPath: path))
            chmod(path, 0o644)
            sizes[String(i)] = size
            images.append(path)
        }
        // Half the images may be loaded in several drives at once.
        for (i, path) in images.enumerated() where i % 2 == 0 {
            XCTAssertEqual(writeErrno(fx.path("library/\((path as NSString).lastPathComponent)/sharable"), "yes\n"), 0)
        }
        XCTAssertEqual(mkdir(fx.path("guests/load"), 0o755), 0)
        let drives = (0..<driveCount).map { "ld\($0)" }
        for d in drives { XCTAssertEqual(mkdir(fx.path("guests/load/\(d)"), 0o755), 0) }

        let pid = fx.daemon!.processIdentifier
        func descriptors() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1 }
        func threads() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task").count) ?? -1 }
        func targets() -> [String] {
            let dir = "/proc/\(pid)/fd"
            return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).map {
                (try? FileManager.default.destinationOfSymbolicLink(atPath: dir + "/" + $0)) ?? "?"
            }.sorted()
        }
        let baseline = descriptors()
        let baselineTargets = targets()
        let sizesJSON = String(decoding: try JSONSerialization.data(withJSONObject: sizes), as: UTF8.self)

        var procs: [(Process, String)] = []
        defer { for (p, _) in procs where p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        for r in 0..<readerCount {
            let out = fx.root + "/reader\(r).out"
            procs.append((try startPython(loadReaderScript, [fx.mnt, drives.joined(separator: ","), sizesJSON,
                                                              String(seed &+ UInt64(r)), String(seconds)], out: out), out))
        }
        for c in 0..<changerCount {
            let out = fx.root + "/changer\(c).out"
            let mine = drives.enumerated().filter { $0.offset % changerCount == c }.map(\.element)
            procs.append((try startPython(loadChangerScript, [fx.mnt, mine.joined(separator: ","), images.joined(separator: ","),
                                                               String(seed &+ 1000 &+ UInt64(c)), String(seconds)], out: out), out))
        }
        var peak = baseline
        let deadline = Date().addingTimeInterval(seconds + 30)
        while procs.contains(where: { $0.0.isRunning }) && Date() < deadline {
            peak = max(peak, descriptors())
            usleep(50_000)
        }
        XCTAssertFalse(procs.contains(where: { $0.0.isRunning }), "clients did not finish")
        // Reading the exit status of a running process traps: stop any that hang first.
        for (p, _) in procs where p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        XCTAssertTrue(fx.daemon?.isRunning ?? false, "the daemon died: \(fx.logText.suffix(2000))")

        // Tally what the clients saw.
        var counts: [String: Int] = [:]
        var refused: [String: Int] = [:]
        var violations: [String] = []
        for (p, out) in procs {
            let text = readText(out) ?? ""
            guard p.terminationStatus == 0, let line = text.split(separator: "\n").last,
                  let json = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                violations.append("client failed: \(text.suffix(1500))")
                continue
            }
            for (k, v) in json["counts"] as? [String: Int] ?? [:] {
                counts[k, default: 0] = k == "max_fds_held" ? max(counts[k] ?? 0, v) : (counts[k] ?? 0) + v
            }
            for (k, v) in json["refused"] as? [String: Int] ?? [:] { refused[k, default: 0] += v }
            violations += json["violations"] as? [String] ?? []
        }

        // The listings the kernel kept through thousands of changes agree with the drives
        // (twice: the second listing is the kept one).
        func listsMedia(_ d: String) -> Bool {
            ((try? FileManager.default.contentsOfDirectory(atPath: fx.path("guests/load/\(d)"))) ?? []).contains("media")
        }
        for d in drives {
            let loaded = fx.status("load", d)["state"] == "loaded"
            for pass in 0..<2 { XCTAssertEqual(listsMedia(d), loaded, "\(d), listing \(pass + 1), after the storm") }
        }
        // Everything closed: eject all, and the daemon's descriptors return to the baseline.
        for d in drives where access(fx.path("guests/load/\(d)/media"), F_OK) == 0 {
            XCTAssertEqual(unlink(fx.path("guests/load/\(d)/media")), 0, "eject \(d): \(String(cString: strerror(errno)))")
        }
        for d in drives { XCTAssertFalse(listsMedia(d), "\(d) still lists media after its eject") }
        // libfuse keeps one splice pipe (two descriptors) per worker thread while the thread
        // lives (up to the idle-thread limit): those are the pool, not leaks. Everything else
        // (images above all) must be exactly as before.
        let isPipe = { (t: String) in t.hasPrefix("pipe:") }
        var afterTargets = targets()
        let settle = Date().addingTimeInterval(5)
        while afterTargets.filter({ !isPipe($0) }) != baselineTargets.filter({ !isPipe($0) }) && Date() < settle {
            usleep(20_000)
            afterTargets = targets()
        }
        let after = afterTargets.count
        let pipes = afterTargets.filter(isPipe).count
        let workerThreads = threads()
        for d in drives {
            let st = fx.status("load", d)
            XCTAssertEqual(st["openers"], "0", "\(d) still counts openers")
            XCTAssertEqual(st["state"], "empty", d)
        }
        print("""
            load test: seed \(seed), \(Int(seconds)) s, \(driveCount) drives, \(imageCount) images, \
            \(readerCount) readers, \(changerCount) changers; changes: \(counts["inserts"] ?? 0) inserts/swaps, \
            \(counts["ejects"] ?? 0) ejects acknowledged, refused \(refused); reads: \(counts["opens"] ?? 0) opens \
            (\(counts["generation_known"] ?? 0) with the generation pinned, \(counts["open_refused"] ?? 0) refused), \
            \(counts["reads"] ?? 0) reads, \(counts["blocks"] ?? 0) blocks = \((counts["bytes"] ?? 0) / 1_048_576) MiB checked, \
            \(counts["stale"] ?? 0) ESTALE, \(counts["nomedium"] ?? 0) ENOMEDIUM, \(counts["eio"] ?? 0) EIO, \
            \(counts["eof"] ?? 0) EOF, \(counts["short"] ?? 0) short; daemon fds: \(baseline) before, peak \(peak), \(after) after \
            (\(pipes) of them splice pipes of \(workerThreads) live threads); \
            \(violations.count) violations
            """)
        for v in violations.prefix(20) { print("VIOLATION: \(v)") }
        XCTAssertEqual(violations, [], "seed \(seed)")
        XCTAssertEqual(counts["eof"] ?? 0, 0, "a descriptor of an old media read end-of-file instead of failing with ESTALE")
        XCTAssertEqual(counts["eio"] ?? 0, 0, "EIO is for a changed backing image, and no image changes here")
        XCTAssertTrue(Set(refused.keys).isSubset(of: ["EBUSY", "ENOENT"]), "changes refused for other reasons: \(refused)")
        XCTAssertEqual(afterTargets.filter { !isPipe($0) }, baselineTargets.filter { !isPipe($0) }, "descriptors leaked")
        XCTAssertLessThanOrEqual(pipes, 2 * workerThreads, "more splice pipes than threads: \(afterTargets)")
        XCTAssertGreaterThan(counts["blocks"] ?? 0, 10_000)
        XCTAssertGreaterThan(counts["inserts"] ?? 0, 100)
    }
}
