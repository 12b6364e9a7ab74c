import XCTest
@testable import SCSI

/// READ(6/10/12/16) SBC-3 5.7-5.10, READ CAPACITY(10) SBC-3 5.15 (Table 62), (16) 5.16 (Table 65).
final class ReadTests: XCTestCase {
    /// READ CAPACITY(10): last LBA 3 of a 3.5-block medium, block length 2048 (SBC-3 Table 62).
    func testReadCapacity10() {
        let (d, i) = loadedDrive()
        assertGood(d.execute([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], from: i), [0, 0, 0, 3, 0, 0, 0x08, 0x00])
    }

    /// READ CAPACITY(16) = SERVICE ACTION IN(16) 9Eh/10h, 32 bytes, cut to the allocation length.
    func testReadCapacity16() {
        let (d, i) = loadedDrive()
        let cdb: [UInt8] = [0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0]
        assertGood(d.execute(cdb, from: i), [0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0x08, 0x00] + [UInt8](repeating: 0, count: 20))
        var short = cdb; short[13] = 12
        assertGood(d.execute(short, from: i), [0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0x08, 0x00])
        // Another service action of 9Eh -> 05/24/00 pointing at the service action field.
        var other = cdb; other[1] = 0x11
        assertCheck(d.execute(other, from: i), .invalidFieldInCDB, field: .cdb(1, bit: 4))
    }

    func testCapacityPast32Bits() {
        let (d, i) = loadedDrive(Medium(source: SparseSource(byteCount: 2048 * 0x1_0000_0005)))
        assertGood(d.execute([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], from: i), [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0x08, 0x00])
        let r = d.execute([0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0], from: i)
        assertGood(r, [0, 0, 0, 0x01, 0, 0, 0, 0x04, 0, 0, 0x08, 0x00])
        // READ(16) at the very end works; past it is 05/21/00, with no overflow for a huge LBA.
        XCTAssertEqual(d.execute(CDBs.read16(0x1_0000_0004, 1), from: i).status, .good)
        assertCheck(d.execute(CDBs.read16(0x1_0000_0004, 2), from: i), .lbaOutOfRange)
        assertCheck(d.execute(CDBs.read16(UInt64.max, 2), from: i), .lbaOutOfRange)
        assertCheck(d.execute(CDBs.read16(UInt64.max - 1, 0xFFFF_FFFF), from: i), .lbaOutOfRange)
    }

    /// `read(lba:blocks:from:)` is READ(12) while the LBA fits 32 bits, READ(16) past them:
    /// the same answers as the CDBs sent through `execute`.
    func testReadHelperMatchesTheCDBs() {
        let (d, i) = loadedDrive(Medium(source: SparseSource(byteCount: 2048 * 0x1_0000_0005)))
        guard case .blocks(let a) = d.read(lba: 7, blocks: 3, from: i).data,
              case .blocks(let b) = d.execute([0xA8, 0, 0, 0, 0, 7, 0, 0, 0, 3, 0, 0], from: i).data else {
            return XCTFail("READ answered without blocks")
        }
        XCTAssertEqual([a.offset, UInt64(a.count)], [b.offset, UInt64(b.count)])
        guard case .blocks(let high) = d.read(lba: 0x1_0000_0004, blocks: 1, from: i).data else {
            return XCTFail("a READ past 32 bits of LBA must use READ(16)")
        }
        XCTAssertEqual(high.offset, 0x1_0000_0004 * 2048)
        assertCheck(d.read(lba: 0x1_0000_0004, blocks: 2, from: i), .lbaOutOfRange)
    }

    func testReadReturnsRangeNotCopy() {
        let source = MemorySource(count: 2048 * 3 + 1000, tag: 1)
        let (d, i) = loadedDrive(Medium(source: source))
        let r = d.execute(CDBs.read10(1, 2), from: i)
        XCTAssertEqual(r.status, .good)
        guard case .blocks(let range) = r.data else { return XCTFail("expected blocks") }
        XCTAssertTrue(range.source === source)
        XCTAssertEqual(range.offset, 2048)
        XCTAssertEqual(range.length, 4096)
        XCTAssertEqual(range.zeroFill, 0)
        XCTAssertEqual(range.generation, d.state.generation)
        XCTAssertEqual(r.bytes, Array(source.bytes[2048..<6144]))
    }

    /// A short last block (the medium is 3 blocks + 1000 bytes) reads as its bytes then zeros.
    func testShortLastBlockReadsAsZeros() {
        let source = MemorySource(count: 2048 * 3 + 1000, tag: 2)
        let (d, i) = loadedDrive(Medium(source: source))
        for cdb in [CDBs.read10(3, 1), CDBs.read12(3, 1), CDBs.read16(3, 1), [0x08, 0, 0, 3, 1, 0]] {
            let r = d.execute(cdb, from: i)
            guard case .blocks(let range) = r.data else { return XCTFail("expected blocks") }
            XCTAssertEqual(range.length, 1000)
            XCTAssertEqual(range.zeroFill, 1048)
            XCTAssertEqual(r.bytes, Array(source.bytes[6144...]) + [UInt8](repeating: 0, count: 1048))
        }
        XCTAssertEqual(try d.readBytes(lba: 2, blocks: 2, from: i),
                       Array(source.bytes[4096...]) + [UInt8](repeating: 0, count: 1048))
    }

    /// SBC-3 4.5: LBA past the end, or a transfer running past it -> 05/21/00; READ CAPACITY
    /// afterwards still says the same (the tgt bug the issue cites).
    func testReadPastEnd() {
        let (d, i) = loadedDrive()
        let capacity = d.execute([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], from: i).bytes
        assertCheck(d.execute(CDBs.read10(4, 1), from: i), .lbaOutOfRange)
        assertCheck(d.execute(CDBs.read10(3, 2), from: i), .lbaOutOfRange)
        assertCheck(d.execute(CDBs.read12(0xFFFF_FFFF, 1), from: i), .lbaOutOfRange)
        assertCheck(d.execute([0x08, 0, 0, 0, 0, 0], from: i), .lbaOutOfRange)   // READ(6) 0 = 256 blocks
        XCTAssertThrowsError(try d.readBytes(lba: 9, blocks: 1, from: i)) { e in
            XCTAssertEqual(e as? SenseError, SenseError(.lbaOutOfRange))
        }
        assertGood(d.execute([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], from: i), capacity)
    }

    /// SBC-3: TRANSFER LENGTH 0 is not an error and transfers nothing (LBA up to capacity).
    func testZeroTransferLength() {
        let (d, i) = loadedDrive()
        for cdb in [CDBs.read10(0, 0), CDBs.read12(4, 0), CDBs.read16(2, 0)] {
            let r = d.execute(cdb, from: i)
            XCTAssertEqual(r.status, .good)
            XCTAssertEqual(r.data.count, 0)
        }
        assertCheck(d.execute(CDBs.read10(5, 0), from: i), .lbaOutOfRange)
    }

    /// RDPROTECT != 0 -> 05/24/00 byte 1 bit 7 (SBC-3 4.18.2, no protection information).
    func testProtectionFieldRejected() {
        let (d, i) = loadedDrive()
        var cdb = CDBs.read10(0, 1); cdb[1] = 0x20
        assertCheck(d.execute(cdb, from: i), .invalidFieldInCDB, field: .cdb(1, bit: 7))
        // DPO/FUA are accepted and ignored.
        cdb[1] = 0x18
        XCTAssertEqual(d.execute(cdb, from: i).status, .good)
    }

    /// A backing that fails validate() -> its MediumError's sense (03/11/00 by default); a
    /// custom sense is passed through; nothing about the drive changes.
    func testValidateFailure() {
        let source = MemorySource(count: 2048 * 4)
        let (d, i) = loadedDrive(Medium(source: source))
        let before = d.state
        source.fail(with: MediumError(reason: "mtime changed"))
        assertCheck(d.execute(CDBs.read10(0, 1), from: i), .unrecoveredReadError)
        source.fail(with: MediumError(reason: "gone", sense: .mediumNotPresent))
        assertCheck(d.execute(CDBs.read10(0, 1), from: i), .mediumNotPresent)
        // A URL's server that has not answered yet: 02/04/01, which initiators retry.
        source.fail(with: MediumError(reason: "server slow", sense: .becomingReady))
        assertCheck(d.execute(CDBs.read10(0, 1), from: i), .becomingReady)
        XCTAssertEqual(SenseCode.becomingReady, SenseCode(key: 0x2, asc: 0x04, ascq: 0x01))
        XCTAssertEqual(d.state, before)
        assertGood(d.execute([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], from: i), [0, 0, 0, 3, 0, 0, 8, 0])
        source.fail(with: nil)
        XCTAssertEqual(d.execute(CDBs.read10(0, 1), from: i).status, .good)
    }

    /// VERIFY(10) with BYTCHK=0: a range check only.
    func testVerify() {
        let (d, i) = loadedDrive()
        assertGood(d.execute([0x2F, 0, 0, 0, 0, 0, 0, 0, 4, 0], from: i), [])
        assertCheck(d.execute([0x2F, 0, 0, 0, 0, 1, 0, 0, 4, 0], from: i), .lbaOutOfRange)
        assertCheck(d.execute([0x2F, 0x02, 0, 0, 0, 0, 0, 0, 1, 0], from: i), .invalidFieldInCDB, field: .cdb(1, bit: 2))
    }

    /// MMC profile by capacity: up to 737,280,000 bytes CD-ROM, above DVD-ROM.
    func testMediumGeometry() {
        XCTAssertEqual(Medium(source: SparseSource(byteCount: 737_280_000)).profile, .cdROM)
        XCTAssertEqual(Medium(source: SparseSource(byteCount: 737_280_001)).profile, .dvdROM)
        XCTAssertEqual(Medium(source: SparseSource(byteCount: 4097)).blockCount, 3)
        XCTAssertEqual(Medium(source: SparseSource(byteCount: 4096)).blockCount, 2)
        XCTAssertEqual(Medium(source: SparseSource(byteCount: 10), profile: .dvdROM).profile, .dvdROM)
    }
}
