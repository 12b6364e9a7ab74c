import CFuseABI
import Glibc
import XCTest
@testable import FuseKernel

/// vmediafs's own wire layer without a mount: the INIT answer, the answer structures' bytes,
/// directory packing, and the mount options it takes over from libfuse's command line.
final class WireLayerTests: XCTestCase {
    private func initRequest(minor: UInt32 = 45, flags: [Int32], flags2: UInt32 = 0) -> fuse_init_in {
        var r = fuse_init_in()
        r.major = 7
        r.minor = minor
        r.max_readahead = 128 * 1024
        for f in flags { r.flags |= UInt32(f) }
        r.flags2 = flags2
        return r
    }

    func testInitAsksOnlyForWhatTheKernelOffers() {
        let offered = [FUSE_ASYNC_READ, FUSE_ATOMIC_O_TRUNC, FUSE_SPLICE_WRITE, FUSE_NO_OPENDIR_SUPPORT, FUSE_AUTO_INVAL_DATA,
                       FUSE_MAX_PAGES, FUSE_INIT_EXT, FUSE_POSIX_LOCKS, FUSE_DO_READDIRPLUS]
        let request = initRequest(flags: offered, flags2: VMFS_FUSE_PASSTHROUGH_FLAGS2)
        let (out, agreed, skip) = KernelChannel.initAnswer(request, SessionOptions())
        XCTAssertEqual(out.major, 7)
        XCTAssertEqual(out.minor, UInt32(FUSE_KERNEL_MINOR_VERSION), "passthrough not asked for: the header's version")
        XCTAssertEqual(out.flags & ~request.flags, 0, "nothing the kernel did not offer")
        for f in [FUSE_ASYNC_READ, FUSE_ATOMIC_O_TRUNC, FUSE_SPLICE_WRITE, FUSE_AUTO_INVAL_DATA, FUSE_MAX_PAGES] {
            XCTAssertNotEqual(out.flags & UInt32(f), 0, "flag \(f)")
        }
        XCTAssertEqual(out.flags & UInt32(FUSE_POSIX_LOCKS), 0, "locks are the kernel's own business here")
        XCTAssertEqual(out.flags2, 0)
        XCTAssertTrue(skip, "directories opened without OPENDIR")
        XCTAssertTrue(agreed.splice)
        XCTAssertFalse(agreed.passthrough)
        XCTAssertEqual(out.max_write, 1 << 20)
        XCTAssertEqual(Int(out.max_pages), (1 << 20) / Int(getpagesize()))

        // An older kernel offers less: no splice, no skipped OPENDIR, its own minor version.
        let old = initRequest(minor: 31, flags: [FUSE_ASYNC_READ, FUSE_NO_OPENDIR_SUPPORT])
        let (o2, a2, skip2) = KernelChannel.initAnswer(old, SessionOptions())
        XCTAssertEqual(o2.minor, 31)
        XCTAssertEqual(o2.flags & ~old.flags, 0)
        XCTAssertFalse(a2.splice)
        XCTAssertFalse(skip2, "no skipped OPENDIR without auto_inval_data")
    }

    func testPassthroughIsAgreedOnlyWhenAskedForAndOffered() {
        var options = SessionOptions()
        options.passthrough = true
        let offered = initRequest(flags: [FUSE_INIT_EXT, FUSE_ASYNC_READ], flags2: VMFS_FUSE_PASSTHROUGH_FLAGS2)
        let (out, agreed, _) = KernelChannel.initAnswer(offered, options)
        XCTAssertTrue(agreed.passthrough)
        XCTAssertEqual(out.flags2, VMFS_FUSE_PASSTHROUGH_FLAGS2)
        XCTAssertNotEqual(out.flags & UInt32(FUSE_INIT_EXT), 0, "flags2 is read only with FUSE_INIT_EXT")
        XCTAssertEqual(out.minor, 40)
        XCTAssertEqual(out.unused.0, 1, "max_stack_depth")
        // A kernel without it (no flags2, or an older protocol) is not asked.
        for request in [initRequest(flags: [FUSE_ASYNC_READ]),
                        initRequest(minor: 38, flags: [FUSE_INIT_EXT], flags2: VMFS_FUSE_PASSTHROUGH_FLAGS2)] {
            let (o, a, _) = KernelChannel.initAnswer(request, options)
            XCTAssertFalse(a.passthrough)
            XCTAssertEqual(o.flags2, 0)
        }
    }

    func testAnswersHaveTheKernelsLayout() {
        XCTAssertEqual(MemoryLayout<fuse_in_header>.size, 40)
        XCTAssertEqual(MemoryLayout<fuse_out_header>.size, 16)
        XCTAssertEqual(MemoryLayout<fuse_entry_out>.size, 128)
        XCTAssertEqual(MemoryLayout<fuse_attr_out>.size, 104)
        XCTAssertEqual(MemoryLayout<fuse_open_out>.size, 16)
        XCTAssertEqual(MemoryLayout<fuse_init_out>.size, 64)

        let now = Timestamp(seconds: 1_700_000_000, nanoseconds: 5)
        let a = FileAttributes(ino: 42, mode: UInt32(S_IFREG) | 0o444, linkCount: 1, uid: 7, gid: 8, size: 5000,
                               accessTime: now, modificationTime: now, changeTime: now, blockSize: 2048)
        let bytes = WireFormat.bytes(of: WireFormat.entry(Entry(attributes: a, generation: 3, entryTimeout: 1.5, attributeTimeout: 3600)))
        XCTAssertEqual(bytes.count, 128)
        func u64(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) } }
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) } }
        XCTAssertEqual(u64(0), 42, "nodeid")
        XCTAssertEqual(u64(8), 3, "generation")
        XCTAssertEqual(u64(16), 1, "entry_valid")
        XCTAssertEqual(u64(24), 3600, "attr_valid")
        XCTAssertEqual(u32(32), 500_000_000, "entry_valid_nsec")
        XCTAssertEqual(u64(40), 42, "attr.ino")
        XCTAssertEqual(u64(48), 5000, "attr.size")
        XCTAssertEqual(u64(56), 10, "attr.blocks (512 bytes)")
        XCTAssertEqual(u32(40 + 60), UInt32(S_IFREG) | 0o444, "attr.mode")
        XCTAssertEqual(u32(40 + 68), 7, "attr.uid")

        let open = WireFormat.bytes(of: WireFormat.open(handle: 0xABCD, flags: WireFormat.openFlags(OpenResult(handle: 1, keepCache: true, noFlush: true)), backingID: 9))
        XCTAssertEqual(open.count, 16)
        XCTAssertEqual(open[0], 0xCD)
        XCTAssertEqual(UInt32(open[8]) | UInt32(open[9]) << 8, UInt32(FOPEN_KEEP_CACHE) | UInt32(FOPEN_NOFLUSH))
        XCTAssertEqual(open[12], 9, "backing id where 7.40 put it")
        XCTAssertEqual(WireFormat.validity(-1).0, 0)
        XCTAssertEqual(WireFormat.validity(.infinity).0, UInt64.max)
    }

    func testDirectoriesPackAsAlignedRecordsThatResumeWhereTheyStopped() {
        let items = [DirectoryItem(name: ".", ino: 1, type: UInt32(S_IFDIR)), DirectoryItem(name: "..", ino: 1, type: UInt32(S_IFDIR)),
                     DirectoryItem(name: "disc", ino: 9, type: UInt32(S_IFREG)), DirectoryItem(name: String(repeating: "n", count: 255), ino: 10, type: UInt32(S_IFLNK))]
        let all = WireFormat.directory(items, from: 0, size: 4096)
        XCTAssertEqual(all.count, 32 + 32 + 32 + (24 + 255 + 1), "24-byte heads, names padded to 8")
        XCTAssertEqual(all[16], 1, "namelen of .")
        XCTAssertEqual(all[20], UInt8(DT_DIR))
        XCTAssertEqual(all[8], 1, "each entry's offset is the index after it")
        XCTAssertEqual(Array(all[88..<92]), Array("disc".utf8))
        XCTAssertEqual(all[64 + 20], UInt8(DT_REG))
        // A buffer too small for the next record stops before it; the kernel asks again from there.
        let first = WireFormat.directory(items, from: 0, size: 100)
        XCTAssertEqual(first.count, 96)
        let rest = WireFormat.directory(items, from: 3, size: 4096)
        XCTAssertEqual(rest.count, 24 + 255 + 1)
        XCTAssertEqual(rest[20], UInt8(DT_LNK))
        XCTAssertEqual(WireFormat.directory(items, from: 4, size: 4096), [], "the end")
    }

    func testMountOptionsTheWireLayerTakesAndTheOnesLeftToLibfuse() throws {
        let o = try XCTUnwrap(KernelMountOptions.parse(["-o", "fsname=src,subtype=vmediafs,max_read=65536,allow_other,default_permissions", "-o", "ro,noatime", "-d"]))
        XCTAssertEqual(o.fsname, "src")
        XCTAssertEqual(o.subtype, "vmediafs")
        XCTAssertEqual(o.maxRead, 65536)
        XCTAssertTrue(o.allowOther && o.defaultPermissions && o.debug)
        XCTAssertNotEqual(o.flags & UInt(MS_RDONLY), 0)
        XCTAssertNotEqual(o.flags & UInt(MS_NOATIME), 0)
        XCTAssertNotEqual(o.flags & UInt(MS_NOSUID), 0, "nosuid and nodev unless asked otherwise")
        XCTAssertEqual(o.kernelData(fd: 5), "fd=5,rootmode=40000,user_id=\(getuid()),group_id=\(getgid()),default_permissions,allow_other,max_read=65536")
        let dev = try XCTUnwrap(KernelMountOptions.parse(["-o", "dev,suid"]))
        XCTAssertEqual(dev.flags & (UInt(MS_NODEV) | UInt(MS_NOSUID)), 0)
        XCTAssertNil(KernelMountOptions.parse(["-o", "big_writes"]), "an option only libfuse knows: libfuse it is")
        XCTAssertNil(KernelMountOptions.parse(["--weird"]))
    }
}
