import Foundation
import TestImages
import TestSupport
import XCTest
@testable import ISO9660

/// Byte-exact tests of the small decoders: dates, names, Rock Ridge entries, CS0, CRC.
final class StructureUnitTests: XCTestCase {
    func testISODates() {
        // 2000-01-01 00:00:00 UTC is 946684800.
        XCTAssertEqual(CivilTime.iso7([100, 1, 1, 0, 0, 0, 0], at: 0), Timespec(seconds: 946_684_800))
        XCTAssertEqual(CivilTime.iso7([100, 1, 1, 1, 0, 0, 4], at: 0), Timespec(seconds: 946_684_800), "01:00 at GMT+1")
        XCTAssertEqual(CivilTime.iso7([69, 12, 31, 23, 59, 59, 0], at: 0), Timespec(seconds: -1))
        XCTAssertEqual(CivilTime.iso7([0, 0, 0, 0, 0, 0, 0], at: 0), .zero, "unrecorded")
        let long = Array("2000010100000050".utf8) + [0]
        XCTAssertEqual(CivilTime.iso17(long, at: 0), Timespec(seconds: 946_684_800, nanoseconds: 500_000_000))
        XCTAssertEqual(CivilTime.iso17(Array("0000000000000000".utf8) + [0], at: 0), .zero)
        XCTAssertEqual(CivilTime.iso7([124, 2, 29, 12, 0, 0, 0], at: 0).seconds, 1_709_208_000, "leap day 2024")
    }

    func testUDFTimestamp() {
        // Type 1 (local), zone +60 minutes; 2000-01-01 01:00:00.123456.
        var b: [UInt8] = [60, 0x10, 0xD0, 0x07, 1, 1, 1, 0, 0, 12, 34, 56]
        XCTAssertEqual(CivilTime.udf(b, at: 0), Timespec(seconds: 946_684_800, nanoseconds: 123_456_000))
        b[0] = 0x01; b[1] = 0x18     // zone -2047: not specified, read as UTC
        XCTAssertEqual(CivilTime.udf(b, at: 0).seconds, 946_688_400)
    }

    func testISONames() {
        XCTAssertEqual(ISOName.display(Array("README.;1".utf8), joliet: false), "README")
        XCTAssertEqual(ISOName.display(Array("FILE.TXT;1".utf8), joliet: false), "FILE.TXT")
        XCTAssertEqual(ISOName.display(Array("DIR".utf8), joliet: false), "DIR")
        XCTAssertEqual(ISOName.display(Array("A;B".utf8), joliet: false), "A;B", "not a version")
        let joliet: [UInt8] = [0, 0x6E, 0, 0xE9, 0, 0x3B, 0, 0x31]    // "né;1"
        XCTAssertEqual(ISOName.display(joliet, joliet: true), "né")
        XCTAssertEqual(ISOTree.sanitize("a/b"), "a_b")
        XCTAssertNil(ISOTree.sanitize(".."))
    }

    func testJolietEscapeSequences() {
        for level: UInt8 in [0x40, 0x43, 0x45] {
            var descriptor = [UInt8](repeating: 0, count: 2048)
            descriptor[88] = 0x25; descriptor[89] = 0x2F; descriptor[90] = level
            XCTAssertTrue(VolumeDescriptorSet.isJolietEscape(descriptor))
        }
        XCTAssertFalse(VolumeDescriptorSet.isJolietEscape([UInt8](repeating: 0, count: 2048)))
    }

    private func entry(_ signature: String, _ data: [UInt8]) -> SUSPEntry {
        SUSPEntry(signature: signature, version: 1, data: data)
    }

    func testRockRidgeNameContinuationAndPX() {
        let px: [UInt8] = [0xED, 0x41, 0, 0, 0, 0, 0x41, 0xED, 2, 0, 0, 0, 0, 0, 0, 2,
                           0xE8, 3, 0, 0, 0, 0, 3, 0xE8, 100, 0, 0, 0, 0, 0, 0, 100]
        let info = RockRidgeInfo([entry("NM", [1] + Array("first-part-".utf8)), entry("NM", [0] + Array("second".utf8)), entry("PX", px)])
        XCTAssertEqual(info.name, "first-part-second")
        XCTAssertEqual(info.mode, 0o40755)
        XCTAssertEqual(info.linkCount, 2)
        XCTAssertEqual(info.uid, 1000)
        XCTAssertEqual(info.gid, 100)
        XCTAssertNil(RockRidgeInfo([entry("NM", [2])]).name, "NM of \".\" is not a name")
    }

    func testRockRidgeSymlinkComponents() {
        func target(_ entries: [[UInt8]]) -> String? {
            RockRidgeInfo(entries.map { entry("SL", $0) }).symlinkTarget
        }
        XCTAssertEqual(target([[0, 8, 0] + [0, 3] + Array("usr".utf8) + [0, 3] + Array("lib".utf8)]), "/usr/lib")
        XCTAssertEqual(target([[0, 4, 0, 0, 1] + Array("x".utf8)]), "../x")
        XCTAssertEqual(target([[0, 2, 0]]), ".")
        // A component split over two SL entries (component CONTINUE flag, SL CONTINUE flag).
        XCTAssertEqual(target([[1, 1, 2] + Array("ab".utf8), [0, 0, 2] + Array("cd".utf8) + [0, 1] + Array("e".utf8)]), "abcd/e")
        XCTAssertEqual(target([[0, 8, 0]]), "/")
    }

    func testRockRidgeTimesShortAndLong() {
        let short: [UInt8] = [0x06] + [100, 1, 1, 0, 0, 0, 0] + [100, 1, 2, 0, 0, 0, 0]
        var info = RockRidgeInfo([entry("TF", short)])
        XCTAssertEqual(info.modificationTime?.seconds, 946_684_800)
        XCTAssertEqual(info.accessTime?.seconds, 946_684_800 + 86_400)
        let long: [UInt8] = [0x82] + Array("2000010100000000".utf8) + [0]
        info = RockRidgeInfo([entry("TF", long)])
        XCTAssertEqual(info.modificationTime?.seconds, 946_684_800)
    }

    func testCS0AndDString() {
        XCTAssertEqual(CS0.decode([8] + Array("abc".utf8)), "abc")
        XCTAssertEqual(CS0.decode([8, 0xE9]), "é")
        XCTAssertEqual(CS0.decode([16, 0x65, 0xE5, 0xD8, 0x3D, 0xDE, 0x00]), "日😀")
        XCTAssertNil(CS0.decode([3, 1, 2]))
        var field = [UInt8](repeating: 0, count: 32)
        field[0] = 8; field[1] = 0x4C; field[2] = 0x56; field[31] = 3
        XCTAssertEqual(CS0.dstring(field, at: 0, size: 32), "LV")
    }

    func testDescriptorCRCAndChecksum() {
        XCTAssertEqual(UDFTag.crc16(Array("123456789".utf8), from: 0, count: 9), 0x31C3)
        var descriptor = [UInt8](repeating: 0, count: 64)
        descriptor[0] = 2; descriptor[2] = 2; descriptor[10] = 48
        descriptor[20] = 0xAB
        UDFTagFixer.reseal(&descriptor, at: 0)
        XCTAssertEqual(UDFTag.verify(descriptor), 2)
        descriptor[30] ^= 1
        XCTAssertNil(UDFTag.verify(descriptor), "CRC mismatch")
    }

    /// The test images' CRC (TestImages, written apart from the reader) agrees with the reader's.
    func testTestImagesCRCMatchesTheReaders() {
        var random = SeededRandom(seed: 16)
        for length in [0, 1, 2, 31, 496, 2032] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            XCTAssertEqual(UDFTagFixer.crc16(bytes, from: 0, count: length), UDFTag.crc16(bytes, from: 0, count: length), "\(length) bytes")
        }
    }

    func testUDFSymlinkPathComponents() {
        let data: [UInt8] = [2, 0, 0, 0] + [5, 4, 0, 0, 8] + Array("usr".utf8) + [3, 0, 0, 0] + [4, 0, 0, 0] + [5, 3, 0, 0, 8] + Array("ab".utf8)
        XCTAssertEqual(UDFTree.symlinkTarget(data), "/usr/.././ab")
        XCTAssertEqual(UDFTree.symlinkTarget([5, 2, 0, 0, 8, 0x78]), "x")
    }
}

/// Allocation descriptors of every width, continuation and limits, on a synthetic disc.
final class AllocationDescriptorTests: XCTestCase {
    private let reader = UDFReader(disc: Disc(MemorySectorReader(bytes: [UInt8](repeating: 0, count: 400 * 2048))),
                                   partitions: [.physical(startSector: 100, blocks: 300)])

    private func entry(_ type: UInt16, _ allocation: [UInt8], size: UInt64) -> UDFFileEntry {
        UDFFileEntry(fileType: 5, icbFlags: type, uid: 0, gid: 0, permissions: 0, linkCount: 1, informationLength: size,
                     accessTime: .zero, modificationTime: .zero, attributeTime: .zero, allocation: allocation,
                     address: UDFAddress(block: 0, partition: 0), byteOffset: 0)
    }

    func testShortLongAndExtendedDescriptors() throws {
        let short = UDFImageBuilder.shortAD(length: 4096, block: 3) + UDFImageBuilder.shortAD(length: 100, block: 9)
        XCTAssertEqual(try reader.dataExtents(entry(0, short, size: 4196), limit: 10),
                       [.disc(byteOffset: 103 * 2048, length: 4096), .disc(byteOffset: 109 * 2048, length: 100)])
        let long = UDFImageBuilder.longAD(length: 2048, block: 5, partition: 0) + UDFImageBuilder.longAD(length: 4096, block: 0, partition: 0, type: 1)
        XCTAssertEqual(try reader.dataExtents(entry(1, long, size: 5000), limit: 10),
                       [.disc(byteOffset: 105 * 2048, length: 2048), .zeros(length: 2952)], "cut to the information length")
        var extended = [UInt8](repeating: 0, count: 20)
        UDFImageBuilder.put32(&extended, 0, 5000); UDFImageBuilder.put32(&extended, 4, 5000); UDFImageBuilder.put32(&extended, 8, 5000)
        UDFImageBuilder.put32(&extended, 12, 7)
        XCTAssertEqual(try reader.dataExtents(entry(2, extended, size: 5000), limit: 10), [.disc(byteOffset: 107 * 2048, length: 5000)])
        XCTAssertEqual(try reader.dataExtents(entry(3, Array("inline".utf8), size: 3), limit: 10), [.inline(Array("inl".utf8))])
    }

    func testDescriptorsShorterThanTheFileGiveATruncatedViewAndLimitsHold() throws {
        let one = UDFImageBuilder.shortAD(length: 2048, block: 1)
        XCTAssertEqual(try reader.dataExtents(entry(0, one, size: 1 << 40), limit: 10), [.disc(byteOffset: 101 * 2048, length: 2048)])
        let many = (0..<50).flatMap { UDFImageBuilder.shortAD(length: 2048, block: $0) }
        XCTAssertEqual(try reader.dataExtents(entry(0, many, size: 1 << 30), limit: 7).count, 7)
        // A continuation pointing at a block that is not an allocation extent descriptor ends the list.
        let continued = one + UDFImageBuilder.shortAD(length: 2048 | 3 << 30, block: 2)
        XCTAssertEqual(try reader.dataExtents(entry(0, continued, size: 8192), limit: 10).count, 1)
        XCTAssertThrowsError(try reader.resolve(UDFAddress(block: 0, partition: 4), length: 1))
    }
}
