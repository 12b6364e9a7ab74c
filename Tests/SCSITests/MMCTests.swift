import XCTest
@testable import SCSI

/// MMC-6 commands: READ TOC/PMA/ATIP (6.26), GET CONFIGURATION (6.6, features 5.3),
/// READ DISC INFORMATION (6.22), MECHANISM STATUS (6.11).
final class MMCTests: XCTestCase {
    func toc(_ d: OpticalDrive, _ i: InitiatorID, msf: Bool, format: UInt8, track: UInt8 = 0, alloc: UInt16 = 1024, control: UInt8 = 0) -> CommandResult {
        d.execute([0x43, msf ? 0x02 : 0, format, 0, 0, 0, track, UInt8(alloc >> 8), UInt8(alloc & 0xFF), control], from: i)
    }

    /// Format 0000b, MMC-6 Table 469/470: header (length 18, tracks 1..1), track 1 at 0 and the
    /// lead-out AAh at LBA 4 (3.5 blocks -> 4 blocks). ADR/CONTROL 14h.
    func testTOCFormat0LBA() {
        let (d, i) = loadedDrive()
        assertGood(toc(d, i, msf: false, format: 0),
                   [0, 18, 1, 1, 0, 0x14, 1, 0, 0, 0, 0, 0, 0, 0x14, 0xAA, 0, 0, 0, 0, 4])
        // Starting at the lead-out: just the lead-out.
        assertGood(toc(d, i, msf: false, format: 0, track: 0xAA), [0, 10, 1, 1, 0, 0x14, 0xAA, 0, 0, 0, 0, 4])
        // A track past the last one -> 05/24/00 byte 6.
        assertCheck(toc(d, i, msf: false, format: 0, track: 2), .invalidFieldInCDB, field: .cdb(6, bit: 7))
        // Allocation length truncates.
        assertGood(toc(d, i, msf: false, format: 0, alloc: 4), [0, 18, 1, 1])
    }

    /// MSF addresses (MMC-6 4.2.3.3): LBA + 150 frames: track 1 at 00:02:00, lead-out 4 -> 00:02:04.
    func testTOCFormat0MSF() {
        let (d, i) = loadedDrive()
        assertGood(toc(d, i, msf: true, format: 0),
                   [0, 18, 1, 1, 0, 0x14, 1, 0, 0, 0, 2, 0, 0, 0x14, 0xAA, 0, 0, 0, 2, 4])
        // A 4.7 GB DVD's lead-out is past 255 minutes: clamped to FF:3B:4A.
        let (dvd, j) = loadedDrive(Medium(source: SparseSource(byteCount: 4_700_000_256)))
        let r = toc(dvd, j, msf: true, format: 0, track: 0xAA)
        assertGood(r, [0, 10, 1, 1, 0, 0x14, 0xAA, 0, 0, 0xFF, 0x3B, 0x4A])
        // 700 MB CD: 341,797 blocks + 150 = 341,947 frames = 75:59:22.
        let (cd, k) = loadedDrive(Medium(source: SparseSource(byteCount: 341_797 * 2048)))
        assertGood(toc(cd, k, msf: true, format: 0, track: 0xAA), [0, 10, 1, 1, 0, 0x14, 0xAA, 0, 0, 75, 59, 22])
    }

    /// Format 0001b, session information, MMC-6 Table 471.
    func testTOCFormat1() {
        let (d, i) = loadedDrive()
        assertGood(toc(d, i, msf: false, format: 1), [0, 10, 1, 1, 0, 0x14, 1, 0, 0, 0, 0, 0])
        assertGood(toc(d, i, msf: true, format: 1), [0, 10, 1, 1, 0, 0x14, 1, 0, 0, 0, 2, 0])
        // The SFF-8020 placement of the format in control byte bits 7-6.
        assertGood(toc(d, i, msf: false, format: 0, control: 0x40), [0, 10, 1, 1, 0, 0x14, 1, 0, 0, 0, 0, 0])
    }

    /// Format 0010b, full TOC, MMC-6 Table 473: A0h, A1h, A2h, track 1.
    func testTOCFormat2AndInvalidFormat() {
        let (d, i) = loadedDrive()
        assertGood(toc(d, i, msf: true, format: 2),
                   [0, 46, 1, 1,
                    1, 0x14, 0, 0xA0, 0, 0, 0, 0, 1, 0, 0,
                    1, 0x14, 0, 0xA1, 0, 0, 0, 0, 1, 0, 0,
                    1, 0x14, 0, 0xA2, 0, 0, 0, 0, 0, 2, 4,
                    1, 0x14, 0, 0x01, 0, 0, 0, 0, 0, 2, 0])
        assertCheck(toc(d, i, msf: false, format: 3), .invalidFieldInCDB, field: .cdb(2, bit: 3))
    }

    func testTOCNeedsMedium() {
        let d = makeDrive()
        assertCheck(toc(d, d.attach(), msf: false, format: 0), .mediumNotPresentTrayClosed)
    }

    // MARK: GET CONFIGURATION

    func getConfig(_ d: OpticalDrive, _ i: InitiatorID, rt: UInt8, start: UInt16 = 0, alloc: UInt16 = 1024) -> CommandResult {
        d.execute([0x46, rt, UInt8(start >> 8), UInt8(start & 0xFF), 0, 0, 0, UInt8(alloc >> 8), UInt8(alloc & 0xFF), 0], from: i)
    }

    static func features(cd: Bool, dvd: Bool) -> [UInt8] {
        let present = cd || dvd
        return [0x00, 0x00, 0x03, 0x08, 0x00, 0x10, dvd ? 1 : 0, 0, 0x00, 0x08, cd ? 1 : 0, 0]   // 0000h
            + [0x00, 0x01, 0x0B, 0x08, 0, 0, 0, 1, 0, 0, 0, 0]                                   // 0001h
            + [0x00, 0x02, 0x07, 0x04, 0, 0, 0, 0]                                               // 0002h
            + [0x00, 0x03, 0x03, 0x04, 0x2D, 0, 0, 0]                                            // 0003h
            + [0x00, 0x10, present ? 1 : 0, 0x08, 0, 0, 0x08, 0, 0, dvd ? 16 : 1, 1, 0]          // 0010h
            + [0x00, 0x1E, 0x08 | (cd ? 1 : 0), 0x04, 0, 0, 0, 0]                                // 001Eh
            + [0x00, 0x1F, 0x04 | (dvd ? 1 : 0), 0x04, 0, 0, 0, 0]                               // 001Fh
    }

    /// Feature header MMC-6 Table 86 (data length, current profile) + descriptors (Table 87).
    func testGetConfigurationAllFeatures() {
        let empty = makeDrive()
        let body0 = Self.features(cd: false, dvd: false)
        assertGood(getConfig(empty, empty.attach(), rt: 0), [0, 0, 0, UInt8(body0.count + 4), 0, 0, 0x00, 0x00] + body0)

        let (cd, i) = loadedDrive()
        let bodyCD = Self.features(cd: true, dvd: false)
        assertGood(getConfig(cd, i, rt: 0), [0, 0, 0, UInt8(bodyCD.count + 4), 0, 0, 0x00, 0x08] + bodyCD)

        let (dvd, j) = loadedDrive(Medium(source: SparseSource(byteCount: 1_000_000_000)))
        let bodyDVD = Self.features(cd: false, dvd: true)
        assertGood(getConfig(dvd, j, rt: 0), [0, 0, 0, UInt8(bodyDVD.count + 4), 0, 0, 0x00, 0x10] + bodyDVD)
        // Header only (allocation 8): current profile, length of everything.
        assertGood(getConfig(dvd, j, rt: 0, alloc: 8), [0, 0, 0, UInt8(bodyDVD.count + 4), 0, 0, 0x00, 0x10])
    }

    /// RT=01b: current features only, from the starting feature; RT=10b: exactly one; RT=11b: error.
    func testGetConfigurationRT() {
        let (dvd, j) = loadedDrive(Medium(source: SparseSource(byteCount: 1_000_000_000)))
        let current = [UInt8]([0x00, 0x10, 0x01, 0x08, 0, 0, 0x08, 0, 0, 16, 1, 0, 0x00, 0x1F, 0x05, 0x04, 0, 0, 0, 0])
        assertGood(getConfig(dvd, j, rt: 1, start: 0x0004), [0, 0, 0, UInt8(current.count + 4), 0, 0, 0x00, 0x10] + current)
        assertGood(getConfig(dvd, j, rt: 2, start: 0x0003), [0, 0, 0, 12, 0, 0, 0x00, 0x10, 0x00, 0x03, 0x03, 0x04, 0x2D, 0, 0, 0])
        assertGood(getConfig(dvd, j, rt: 2, start: 0x0107), [0, 0, 0, 4, 0, 0, 0x00, 0x10])
        assertCheck(getConfig(dvd, j, rt: 3), .invalidFieldInCDB, field: .cdb(1, bit: 1))
    }

    // MARK: READ DISC INFORMATION / MECHANISM STATUS

    /// MMC-6 Table 319: complete disc, one session, one track, URU.
    func testReadDiscInformation() {
        let (d, i) = loadedDrive()
        var expected = [UInt8](repeating: 0, count: 34)
        expected[1] = 32; expected[2] = 0x0E; expected[3] = 1; expected[4] = 1; expected[5] = 1; expected[6] = 1
        expected[7] = 0x20
        for k in 16..<24 { expected[k] = 0xFF }
        assertGood(d.execute([0x51, 0, 0, 0, 0, 0, 0, 0, 34, 0], from: i), expected)
        assertGood(d.execute([0x51, 0, 0, 0, 0, 0, 0, 0, 2, 0], from: i), [0, 32])
        assertCheck(d.execute([0x51, 1, 0, 0, 0, 0, 0, 0, 34, 0], from: i), .invalidFieldInCDB, field: .cdb(1, bit: 2))
        let empty = makeDrive()
        assertCheck(empty.execute([0x51, 0, 0, 0, 0, 0, 0, 0, 34, 0], from: empty.attach()), .mediumNotPresentTrayClosed)
    }

    /// MMC-6 Table 323: 8-byte header, Door open bit (byte 1 bit 4) follows the tray.
    func testMechanismStatus() {
        let d = makeDrive()
        let i = d.attach()
        let cdb: [UInt8] = [0xBD, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0]
        assertGood(d.execute(cdb, from: i), [0, 0, 0, 0, 0, 0, 0, 0])
        _ = d.execute(CDBs.eject, from: i)
        assertGood(d.execute(cdb, from: i), [0, 0x10, 0, 0, 0, 0, 0, 0])
        assertGood(d.execute([0xBD, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0], from: i), [0, 0x10])
    }
}
