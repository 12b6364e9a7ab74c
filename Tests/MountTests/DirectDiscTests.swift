import Foundation
import Glibc
import XCTest

/// `-o disc_io=direct`: every read of `disc` goes to the daemon (one copy fewer on a first
/// read, nothing kept), with the trade-off libfuse 3.14 imposes on shared maps.
final class DirectDiscTests: MountTestCase {
    override var daemonArguments: [String] { ["-o", "disc_io=direct"] }


    /// Maps the first `length` bytes of `path` with `flags`; returns them, or the errno.
    func mapped(_ path: String, _ flags: Int32, _ length: Int) -> Result<[UInt8], POSIXError> {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return .failure(POSIXError(POSIXErrorCode(rawValue: errno)!)) }
        defer { close(fd) }
        guard let p = mmap(nil, length, PROT_READ, flags, fd, 0), p != MAP_FAILED else {
            return .failure(POSIXError(POSIXErrorCode(rawValue: errno)!))
        }
        defer { munmap(p, length) }
        return .success(Array(UnsafeRawBufferPointer(start: p, count: length)))
    }

    func testDirectReadsMatchTheImageAndOldHandlesGoStale() throws {
        makeDrive()
        var files: [String: String] = [:]
        for i in 0..<6 { files["f\(i).txt"] = String(repeating: "direct \(i)\n", count: 60_000) }   // ~3.5 MB
        let a = try fx.makeISO("a.iso", files: files)
        let b = try fx.makeISO("b.iso", files: ["b.txt": "b\n"])
        XCTAssertEqual(writeErrno(mediaFile, a), 0)
        for bs in ["1M", "4k", "100k"] {
            let r = sh("dd if='\(disc)' bs=\(bs) status=none | cmp - '\(a)'")
            XCTAssertEqual(r.status, 0, "dd bs=\(bs): " + r.out + r.err)
        }
        let image = try Data(contentsOf: URL(fileURLWithPath: a))
        XCTAssertEqual(try mapped(disc, MAP_PRIVATE, 65536).get(), Array(image.prefix(65536)), "a private map reads the disc")
        XCTAssertThrowsError(try mapped(disc, MAP_SHARED, 65536).get(), "libfuse 3.14 cannot allow shared maps of direct files") { e in
            XCTAssertEqual((e as? POSIXError)?.code, .ENODEV)
        }

        let fd = open(disc, O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        XCTAssertEqual(pread(fd, &buf, buf.count, 0), buf.count)
        XCTAssertEqual(writeErrno(mediaFile, b), 0)
        XCTAssertEqual(pread(fd, &buf, buf.count, 0), -1, "nothing is kept: even bytes read before come from the daemon")
        XCTAssertEqual(errno, ESTALE)
        XCTAssertEqual(sh("cmp '\(disc)' '\(b)'").status, 0)
    }
}

/// A user's `-o max_read` reaches libfuse and INIT alike (libfuse ends the session at INIT
/// when the two differ, which once left a mount that died right after mounting).
final class MaxReadMountTests: MountTestCase {
    override var daemonArguments: [String] { ["-o", "max_read=262144"] }

    func testSmallerReadRequestsServeTheWholeDisc() throws {
        makeDrive()
        let a = try fx.makeISO("a.iso", files: ["big.txt": String(repeating: "max_read\n", count: 200_000)])
        XCTAssertEqual(writeErrno(fx.path("guests/aix01/cd0/media"), a), 0)
        let r = sh("dd if='\(fx.path("guests/aix01/cd0/disc"))' bs=1M status=none | cmp - '\(a)'")
        XCTAssertEqual(r.status, 0, r.out + r.err)
        XCTAssertTrue(fx.isMounted, "the daemon is still serving")
    }
}
