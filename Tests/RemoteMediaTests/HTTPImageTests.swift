import Foundation
import Glibc
import SCSI
import VirtualMedia
import XCTest
@testable import RemoteMedia

/// `Tests/Servers/range_server.py` on a free port of 127.0.0.1, serving `root`.
final class RangeServer {
    let root: String
    let port: Int
    private let process: Process

    init(root: String) throws {
        self.root = root
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Servers/range_server.py").path
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, root]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let line = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        guard let p = Int(line.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            process.terminate()
            throw NSError(domain: "range_server.py did not start: \(line)", code: 1)
        }
        port = p
    }

    func url(_ name: String) -> String { "http://127.0.0.1:\(port)/\(name)" }

    /// The requests logged so far, as "GET /NAME bytes=A-B".
    var requests: [String] {
        ((try? String(contentsOfFile: root + "/requests.log", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
    }
}

/// URL images read through the HTTP client and the block cache, against a real server.
final class HTTPImageTests: XCTestCase {
    var dir = ""
    var server: RangeServer!
    var sources: [HTTPMediaSource] = []

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "vmfs-url-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir + "/www", withIntermediateDirectories: true)
        server = try RangeServer(root: dir + "/www")
    }

    override func tearDown() {
        sources.forEach { $0.shutdown() }
        sources = []
        server?.stop()
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// A file of `size` pseudo-random bytes in the server's root.
    @discardableResult
    func serve(_ name: String, size: Int, seed: UInt64 = 1) throws -> [UInt8] {
        var state = seed
        var bytes = [UInt8](repeating: 0, count: size)
        for i in 0..<size {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            bytes[i] = UInt8(truncatingIfNeeded: state >> 33)
        }
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/www/" + name))
        return bytes
    }

    func control(_ name: String, _ suffix: String, _ text: String?) throws {
        let path = dir + "/www/" + name + suffix
        if let text { try text.write(toFile: path, atomically: true, encoding: .utf8) } else { unlink(path) }
    }

    func source(cacheBytes: UInt64 = 1 << 30, timeout: Double = 5, readahead: Int = 2) throws -> HTTPMediaSource {
        let s = HTTPMediaSource(RemoteMediaOptions(rules: try URLRules(prefixes: [server.url("")]), cacheDirectory: dir + "/cache",
                                                   cacheBytes: cacheBytes, readTimeout: timeout, readaheadChunks: readahead))
        sources.append(s)
        return s
    }

    func read(_ image: any RemoteImage, _ offset: UInt64, _ count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let n = try out.withUnsafeMutableBytes { raw throws(MediumError) in try image.read(into: raw, at: offset) }
        return Array(out[0..<n])
    }

    func openErrno(_ s: HTTPMediaSource, _ url: String) -> (Int32, String) {
        do { _ = try s.open(url, timeout: 5); return (0, "") } catch { return (error.errno, error.reason) }
    }

    func testReadsAreTheServersBytesAndComeOnceFromTheNetwork() throws {
        let bytes = try serve("a.iso", size: 3 << 20 + 12345)
        let s = try source(readahead: 0)
        let image = try s.open(server.url("a.iso"), timeout: 5)
        XCTAssertEqual(image.byteCount, UInt64(bytes.count))
        XCTAssertTrue(image.validator.hasPrefix("\""), "the ETag is the validator")
        for (offset, count) in [(0, 2048), (1 << 20 - 100, 300), (3 << 20, 12345), (3 << 20 + 12000, 4096), (5, 3 << 20)] {
            XCTAssertEqual(try read(image, UInt64(offset), count), Array(bytes[offset..<min(bytes.count, offset + count)]), "at \(offset)")
        }
        XCTAssertEqual(try read(image, UInt64(bytes.count), 10), [], "nothing past the end")
        let fetched = server.requests.filter { $0.hasPrefix("GET /a.iso bytes=") && !$0.hasSuffix("bytes=0-0") }
        XCTAssertEqual(fetched.count, 4, "each 1 MiB chunk is fetched once: \(fetched)")
        let stats = s.cacheStatistics
        XCTAssertEqual(stats.bytes, UInt64(bytes.count))
        XCTAssertGreaterThan(stats.hits, 0)
    }

    func testConcurrentReadersOfOneChunkShareOneRequest() throws {
        let bytes = try serve("b.iso", size: 2 << 20)
        try control("b.iso", ".stall", "0.3")
        let s = try source(readahead: 0)
        let image = try s.open(server.url("b.iso"), timeout: 5)
        let results = Mutex8()
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            var got = [UInt8](repeating: 0, count: 4096)
            let n = try? got.withUnsafeMutableBytes { raw throws(MediumError) in try image.read(into: raw, at: UInt64(i * 4096)) }
            results.set(i, n == 4096 && got == Array(bytes[(i * 4096)..<((i + 1) * 4096)]))
        }
        XCTAssertEqual(results.all, true)
        XCTAssertEqual(server.requests.filter { $0 == "GET /b.iso bytes=0-1048575" }.count, 1, "\(server.requests)")
    }

    func testSequentialReadsFetchAhead() throws {
        _ = try serve("c.iso", size: 6 << 20)
        let s = try source(readahead: 3)
        let image = try s.open(server.url("c.iso"), timeout: 5)
        _ = try read(image, 0, 4096)
        _ = try read(image, 4096, 4096)   // follows the first: chunks 1-3 are asked for
        let deadline = Date().addingTimeInterval(5)
        while server.requests.filter({ $0.hasPrefix("GET /c.iso bytes=3145728-") }).isEmpty && Date() < deadline { usleep(10_000) }
        XCTAssertEqual(server.requests.filter { $0.hasPrefix("GET /c.iso bytes=3145728-") }.count, 1, "\(server.requests)")
        XCTAssertTrue(server.requests.filter { $0.hasPrefix("GET /c.iso bytes=4194304-") }.isEmpty, "no further than the window")
    }

    func testTheCacheKeepsItsLimitAndRefetchesWhatItDropped() throws {
        let bytes = try serve("d.iso", size: 4 << 20)
        let s = try source(cacheBytes: 2 << 20, readahead: 0)
        let image = try s.open(server.url("d.iso"), timeout: 5)
        for chunk in 0..<4 { XCTAssertEqual(try read(image, UInt64(chunk << 20), 100), Array(bytes[(chunk << 20)..<((chunk << 20) + 100)])) }
        XCTAssertLessThanOrEqual(s.cacheStatistics.bytes, 2 << 20)
        XCTAssertEqual(try read(image, 10, 100), Array(bytes[10..<110]), "a dropped chunk reads right")
        XCTAssertEqual(server.requests.filter { $0 == "GET /d.iso bytes=0-1048575" }.count, 2, "chunk 0 was dropped and fetched again")
    }

    /// A reply splices from the cache file after the lease is taken: a chunk leased meanwhile
    /// must not be punched out by the cache, however old it is, until the lease ends.
    func testALeasedChunkStaysInTheCacheFileUntilTheLeaseEnds() throws {
        let bytes = try serve("l.iso", size: 4 << 20)
        let s = try source(cacheBytes: 2 << 20, readahead: 0)
        let image = try s.open(server.url("l.iso"), timeout: 5)
        let lease = try XCTUnwrap(try image.lease(at: 10, count: 100))
        func leased() -> [UInt8] {
            var out = [UInt8](repeating: 0, count: 100)
            let n = out.withUnsafeMutableBytes { pread(lease.descriptor, $0.baseAddress!, 100, off_t(lease.offset)) }
            return n == 100 ? out : []
        }
        XCTAssertEqual(leased(), Array(bytes[10..<110]))
        for chunk in 1..<4 { _ = try read(image, UInt64(chunk << 20), 100) }   // each arrival drops the oldest chunk it may
        XCTAssertEqual(leased(), Array(bytes[10..<110]), "the leased chunk was not punched out")
        XCTAssertLessThanOrEqual(s.cacheStatistics.bytes, 2 << 20, "the chunks after it went instead")
        lease.end()
        _ = try read(image, 1 << 20, 100)   // fetched again: now chunk 0, the oldest, may go
        XCTAssertEqual(try read(image, 10, 100), Array(bytes[10..<110]))
        XCTAssertEqual(server.requests.filter { $0 == "GET /l.iso bytes=0-1048575" }.count, 2, "chunk 0 dropped once its lease ended: \(server.requests)")
        XCTAssertNil(try image.lease(at: UInt64(bytes.count) - 10, count: 20), "no lease past the end: callers copy")
    }

    func testServersThatCannotServeAnImageAreRefusedAtInsert() throws {
        try serve("e.iso", size: 10000)
        let s = try source()
        try control("e.iso", ".noranges", "")
        XCTAssertEqual(openErrno(s, server.url("e.iso")).0, EINVAL)
        XCTAssertTrue(openErrno(s, server.url("e.iso")).1.contains("range"))
        try control("e.iso", ".noranges", nil)
        try control("e.iso", ".noetag", "")
        XCTAssertEqual(openErrno(s, server.url("e.iso")).0, EINVAL)
        try control("e.iso", ".noetag", nil)
        XCTAssertEqual(openErrno(s, server.url("missing.iso")).0, ENOENT)
        try serve("empty.iso", size: 0)
        XCTAssertEqual(openErrno(s, server.url("empty.iso")).0, EINVAL)
        XCTAssertEqual(openErrno(s, "http://127.0.0.1:1/x.iso").0, EPERM, "not under the prefix")
        XCTAssertEqual(openErrno(s, server.url("e.iso")).0, 0)
    }

    func testAStalledServerGivesARetryableSenseInsteadOfHanging() throws {
        let bytes = try serve("f.iso", size: 3 << 20)
        let s = try source(timeout: 1, readahead: 0)
        let image = try s.open(server.url("f.iso"), timeout: 5)
        try control("f.iso", ".stall", "3")
        XCTAssertThrowsError(try read(image, 0, 4096)) { error in
            XCTAssertEqual((error as? MediumError)?.sense, .becomingReady)
        }
        XCTAssertThrowsError(try read(image, 2 << 20, 4096), "while stalled, other chunks fail at once") { error in
            XCTAssertEqual((error as? MediumError)?.sense, .becomingReady)
        }
        try control("f.iso", ".stall", nil)
        XCTAssertNil(image.changeReason, "a slow server is not a changed image")
        var got: [UInt8]?
        let deadline = Date().addingTimeInterval(15)
        while got == nil && Date() < deadline {
            got = try? read(image, 0, 4096)
            if got == nil { usleep(200_000) }
        }
        XCTAssertEqual(got, Array(bytes[0..<4096]), "reads work again once the server answers")
    }

    func testADroppedConnectionIsRetried() throws {
        let bytes = try serve("g.iso", size: 2 << 20)
        try control("g.iso", ".drop", "1 2")   // the next two range requests past byte 0 are cut short
        let s = try source(timeout: 5, readahead: 0)
        let image = try s.open(server.url("g.iso"), timeout: 5)
        XCTAssertEqual(try read(image, 1 << 20, 8192), Array(bytes[(1 << 20)..<((1 << 20) + 8192)]))
        XCTAssertEqual(server.requests.filter { $0 == "GET /g.iso bytes=1048576-2097151" }.count, 3, "two cut, the third whole")
    }

    func testAnImageChangedOnTheServerFailsForGood() throws {
        let bytes = try serve("h.iso", size: 2 << 20)
        let s = try source(readahead: 0)
        let image = try s.open(server.url("h.iso"), timeout: 5)
        XCTAssertEqual(try read(image, 0, 100), Array(bytes[0..<100]))
        try control("h.iso", ".etag", "\"another\"")
        XCTAssertThrowsError(try read(image, 1 << 20, 100)) { error in
            XCTAssertEqual((error as? MediumError)?.sense, .unrecoveredReadError)
        }
        XCTAssertTrue(image.changeReason?.contains("changed on the server") == true, image.changeReason ?? "nil")
        XCTAssertThrowsError(try read(image, 0, 100), "cached chunks fail too once the change is known")
    }

    func testReopenTrustsTheRecordUntilTheServerDisagrees() throws {
        let bytes = try serve("i.iso", size: 1 << 20)
        let s = try source(readahead: 0)
        let validator = try s.open(server.url("i.iso"), timeout: 5).validator
        let same = try s.reopen(server.url("i.iso"), size: UInt64(bytes.count), validator: validator)
        XCTAssertEqual(try read(same, 0, 10), Array(bytes[0..<10]))
        let stale = try s.reopen(server.url("i.iso"), size: UInt64(bytes.count), validator: "\"old\"")
        XCTAssertThrowsError(try read(stale, 0, 10))
        XCTAssertNotNil(stale.changeReason)
    }
}

/// Eight flags set from concurrent threads.
final class Mutex8: @unchecked Sendable {
    private var flags = [Bool?](repeating: nil, count: 8)
    private let lock = NSLock()
    func set(_ i: Int, _ v: Bool) { lock.lock(); flags[i] = v; lock.unlock() }
    var all: Bool { lock.lock(); defer { lock.unlock() }; return flags.allSatisfy { $0 == true } }
}
