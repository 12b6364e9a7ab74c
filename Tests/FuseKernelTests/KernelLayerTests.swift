import CFuse3
import Glibc
import XCTest
@testable import FuseKernel

/// The kernel layer without a mount: what the INIT answer asks for, and how attributes,
/// entries and open results become the structures libfuse hands to the kernel.
final class KernelLayerTests: XCTestCase {
    private func conn(capable: Int32...) -> fuse_conn_info {
        var c = fuse_conn_info()
        for cap in capable { c.capable |= UInt32(cap) }
        return c
    }

    func testInitAsksForWhatTheOptionsSayAndOnlyWhatTheKernelOffers() {
        var c = conn(capable: FUSE_CAP_ATOMIC_O_TRUNC, FUSE_CAP_SPLICE_WRITE, FUSE_CAP_NO_OPENDIR_SUPPORT, FUSE_CAP_AUTO_INVAL_DATA)
        var options = SessionOptions()
        options.maxRead = 65536
        XCTAssertTrue(negotiate(&c, options))
        for cap in [FUSE_CAP_ATOMIC_O_TRUNC, FUSE_CAP_SPLICE_WRITE, FUSE_CAP_NO_OPENDIR_SUPPORT, FUSE_CAP_AUTO_INVAL_DATA] {
            XCTAssertNotEqual(c.want & UInt32(cap), 0, "capability \(cap)")
        }
        XCTAssertEqual(c.max_read, 65536)

        // Nothing the kernel does not offer: libfuse aborts the mount if `want` has such a bit.
        var bare = conn(capable: FUSE_CAP_NO_OPENDIR_SUPPORT)
        XCTAssertFalse(negotiate(&bare, SessionOptions()), "no skipped OPENDIR without auto_inval_data")
        XCTAssertEqual(bare.want & ~bare.capable, 0)
        XCTAssertEqual(bare.want & UInt32(FUSE_CAP_NO_OPENDIR_SUPPORT), 0)
    }

    func testTruncateAtOpenAndSkippedOpendirAreTheFilesystemsChoice() {
        var c = conn(capable: FUSE_CAP_ATOMIC_O_TRUNC, FUSE_CAP_NO_OPENDIR_SUPPORT, FUSE_CAP_AUTO_INVAL_DATA)
        var options = SessionOptions()
        options.truncateAtOpen = false
        options.skipOpendir = false
        XCTAssertFalse(negotiate(&c, options))
        XCTAssertEqual(c.want & UInt32(FUSE_CAP_ATOMIC_O_TRUNC), 0)
        XCTAssertEqual(c.want & UInt32(FUSE_CAP_NO_OPENDIR_SUPPORT | FUSE_CAP_AUTO_INVAL_DATA), 0)
    }

    func testAttributesBecomeStatAsStatShowsThem() {
        let a = FileAttributes(ino: 1 << 62 | 77, mode: S_IFREG | 0o444, linkCount: 3, uid: 1000, gid: 100, size: 5000,
                               accessTime: Timestamp(seconds: 10, nanoseconds: 1), modificationTime: Timestamp(seconds: 20, nanoseconds: 2),
                               changeTime: Timestamp(seconds: 30, nanoseconds: 3), blockSize: 2048)
        let st = a.statValue
        XCTAssertEqual(UInt64(st.st_ino), 1 << 62 | 77)
        XCTAssertEqual(st.st_mode, S_IFREG | 0o444)
        XCTAssertEqual(st.st_nlink, 3)
        XCTAssertEqual(st.st_uid, 1000)
        XCTAssertEqual(st.st_gid, 100)
        XCTAssertEqual(st.st_size, 5000)
        XCTAssertEqual(st.st_blocks, 10, "512-byte blocks, rounded up")
        XCTAssertEqual(st.st_blksize, 2048)
        XCTAssertEqual([st.st_atim.tv_sec, st.st_mtim.tv_sec, st.st_ctim.tv_sec], [10, 20, 30])
        XCTAssertEqual([st.st_atim.tv_nsec, st.st_mtim.tv_nsec, st.st_ctim.tv_nsec], [1, 2, 3])
    }

    func testEntriesAndOpenResultsCarryTheirTimeoutsAndFlags() {
        let a = FileAttributes(ino: 42, mode: S_IFDIR | 0o755, accessTime: .now, modificationTime: .now, changeTime: .now)
        let p = entryParam(Entry(attributes: a, generation: 7, entryTimeout: 0, attributeTimeout: 3600))
        XCTAssertEqual(p.ino, 42)
        XCTAssertEqual(p.generation, 7)
        XCTAssertEqual(p.entry_timeout, 0)
        XCTAssertEqual(p.attr_timeout, 3600)
        XCTAssertEqual(p.attr.st_ino, 42)

        let cached = fileInfo(OpenResult(handle: 0xABC, keepCache: true, noFlush: true))
        XCTAssertEqual(cached.fh, 0xABC)
        XCTAssertEqual([cached.keep_cache, cached.noflush, cached.direct_io, cached.nonseekable], [1, 1, 0, 0])
        let stream = fileInfo(OpenResult(handle: 1, directIO: true, nonSeekable: true))
        XCTAssertEqual([stream.keep_cache, stream.noflush, stream.direct_io, stream.nonseekable], [0, 0, 1, 1])
    }
}
