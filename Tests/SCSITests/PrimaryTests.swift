import XCTest
@testable import SCSI

/// SPC-4 commands and generic checks: TEST UNIT READY (6.47), REQUEST SENSE (6.39),
/// REPORT LUNS (6.33), REPORT SUPPORTED OPERATION CODES (6.35), invalid opcodes, write
/// protection (SBC-3 4.11), CDB length.
final class PrimaryTests: XCTestCase {
    func testTestUnitReady() {
        let d = makeDrive()
        let i = d.attach()
        assertCheck(d.execute(CDBs.tur, from: i), .mediumNotPresentTrayClosed)
        try! d.insert(smallMedium())
        assertCheck(d.execute(CDBs.tur, from: i), .notReadyToReadyChange)
        assertGood(d.execute(CDBs.tur, from: i), [])
        // A longer CDB (a transport's padded 16-byte field) is fine.
        assertGood(d.execute(CDBs.tur + [UInt8](repeating: 0, count: 10), from: i), [])
    }

    /// REQUEST SENSE: fixed (DESC=0) and descriptor (DESC=1) formats; a pending unit attention
    /// is returned and cleared; without a medium 02/3A/0x; else NO SENSE. Allocation truncates.
    func testRequestSense() {
        let d = makeDrive()
        let i = d.attach()
        assertGood(d.execute(CDBs.requestSense(), from: i), fixedSense(2, 0x3A, 0x01))
        assertGood(d.execute(CDBs.requestSense(desc: true), from: i), [0x72, 2, 0x3A, 0x01, 0, 0, 0, 0])
        try! d.insert(smallMedium())
        assertGood(d.execute(CDBs.requestSense(), from: i), fixedSense(6, 0x28, 0x00))
        assertGood(d.execute(CDBs.requestSense(), from: i), fixedSense(0, 0, 0))   // cleared
        assertGood(d.execute(CDBs.tur, from: i), [])
        assertGood(d.execute(CDBs.requestSense(alloc: 8), from: i), Array(fixedSense(0, 0, 0)[0..<8]))
        let zero = d.execute(CDBs.requestSense(alloc: 0), from: i)
        XCTAssertEqual(zero.status, .good)
        XCTAssertEqual(zero.data.count, 0)
        _ = try! d.eject()
        assertGood(d.execute(CDBs.requestSense(), from: i), fixedSense(2, 0x3A, 0x02))
    }

    /// REPORT LUNS, SPC-4 Table 284 (LUN list length, reserved, LUNs); SAM-5 4.7 LUN formats.
    func testReportLUNs() {
        let d = makeDrive(lun: 3)
        let i = d.attach()
        let cdb: [UInt8] = [0xA0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]
        assertGood(d.execute(cdb, from: i), [0, 0, 0, 8, 0, 0, 0, 0, 0x00, 0x03, 0, 0, 0, 0, 0, 0])
        var wellKnown = cdb; wellKnown[2] = 1
        assertGood(d.execute(wellKnown, from: i), [0, 0, 0, 0, 0, 0, 0, 0])
        var bad = cdb; bad[2] = 0x05
        assertCheck(d.execute(bad, from: i), .invalidFieldInCDB, field: .cdb(2, bit: 7))
        assertCheck(d.execute([0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0], from: i), .invalidFieldInCDB, field: .cdb(6, bit: 7))
        // A caller-given inventory (a target with several drives) raises 06/3F/0E, which
        // REPORT LUNS itself clears.
        d.setReportedLUNs([0, 3, 300])
        assertGood(d.execute(cdb, from: i), [0, 0, 0, 24, 0, 0, 0, 0,
                                             0, 0, 0, 0, 0, 0, 0, 0,
                                             0, 3, 0, 0, 0, 0, 0, 0,
                                             0x41, 0x2C, 0, 0, 0, 0, 0, 0])
        assertCheck(d.execute(CDBs.tur, from: i), .mediumNotPresentTrayClosed)
        let j = d.attach()
        d.setReportedLUNs(nil)
        assertCheck(d.execute(CDBs.tur, from: j), .reportedLUNsDataChanged)
    }

    /// REPORT SUPPORTED OPERATION CODES, SPC-4 6.35: all commands (Tables 304/305), one command
    /// (Table 307), RCTD timeouts descriptor (Table 309).
    func testReportSupportedOpcodes() {
        let d = makeDrive()
        let i = d.attach()
        // One command, options 001b: READ(10)'s CDB usage data.
        let one: [UInt8] = [0xA3, 0x0C, 0x01, 0x28, 0, 0, 0, 0, 1, 0, 0, 0]
        assertGood(d.execute(one, from: i), [0, 0x03, 0, 10, 0x28, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0xFF, 0xFF, 0x00])
        var withTimeouts = one; withTimeouts[2] = 0x81
        assertGood(d.execute(withTimeouts, from: i), [0, 0x83, 0, 10, 0x28, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0xFF, 0xFF, 0x00,
                                                      0, 0x0A, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        // Unsupported opcode: SUPPORT 001b.
        var unsupported = one; unsupported[3] = 0xD5
        assertGood(d.execute(unsupported, from: i), [0, 0x01, 0, 0])
        // Options 001b for an opcode with service actions -> 05/24/00; 010b with one works.
        var sa = one; sa[3] = 0x9E
        assertCheck(d.execute(sa, from: i), .invalidFieldInCDB, field: .cdb(2, bit: 2))
        sa[2] = 0x02; sa[5] = 0x10
        let r = d.execute(sa, from: i)
        XCTAssertEqual(Array(r.bytes.prefix(6)), [0, 0x03, 0, 16, 0x9E, 0x1F])
        var noSA = one; noSA[2] = 0x02
        assertCheck(d.execute(noSA, from: i), .invalidFieldInCDB, field: .cdb(2, bit: 2))
        var badOption = one; badOption[2] = 0x05
        assertCheck(d.execute(badOption, from: i), .invalidFieldInCDB, field: .cdb(2, bit: 2))

        // All commands: header + 8 bytes per command, sorted by opcode; each entry's CDB length
        // matches the table and every listed command answers something other than 05/20/00.
        let all = d.execute([0xA3, 0x0C, 0x00, 0, 0, 0, 0, 0, 0x10, 0, 0, 0], from: i).bytes
        let length = Int(all[0]) << 24 | Int(all[1]) << 16 | Int(all[2]) << 8 | Int(all[3])
        XCTAssertEqual(length, all.count - 4)
        XCTAssertEqual(length, CommandTable.all.count * 8)
        var opcodes: [UInt8] = []
        for k in stride(from: 4, to: all.count, by: 8) {
            opcodes.append(all[k])
            let cdbLength = Int(all[k + 6]) << 8 | Int(all[k + 7])
            var cdb = [UInt8](repeating: 0, count: cdbLength)
            cdb[0] = all[k]; cdb[1] = all[k + 3]
            XCTAssertNotEqual(d.execute(cdb, from: i).sense, .invalidOpcode, "opcode \(all[k])")
        }
        XCTAssertEqual(opcodes, opcodes.sorted())
        XCTAssertTrue(opcodes.contains(0x43) && opcodes.contains(0x4A) && opcodes.contains(0xBD))
        // With RCTD: 20 bytes per command, CTDP set.
        let timed = d.execute([0xA3, 0x0C, 0x80, 0, 0, 0, 0, 0, 0x10, 0, 0, 0], from: i).bytes
        XCTAssertEqual(timed.count, 4 + CommandTable.all.count * 20)
        XCTAssertEqual(timed[9] & 0x02, 0x02)
    }

    /// Every write-type command -> 07/27/00 with a medium, 02/3A/0x without; SYNCHRONIZE CACHE GOOD.
    func testWriteCommandsAreWriteProtected() {
        let (d, i) = loadedDrive()
        let empty = makeDrive()
        let j = empty.attach()
        for (op, length, name) in WriteProtectedCommands.writers {
            var cdb = [UInt8](repeating: 0, count: length)
            cdb[0] = op
            XCTAssertEqual(d.execute(cdb, from: i).sense, .writeProtected, name)
            assertCheck(d.execute(cdb, from: i), .writeProtected)
            assertCheck(empty.execute(cdb, from: j), .mediumNotPresentTrayClosed)
        }
        for op: UInt8 in [0x2A, 0xAA, 0x8A, 0x2E, 0x04, 0xA1, 0x5D, 0x53, 0x5B, 0x3B] {
            XCTAssertTrue(WriteProtectedCommands.isWriteProtected(op))
        }
        assertGood(d.execute([0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], from: i), [])
        assertGood(d.execute([0x91] + [UInt8](repeating: 0, count: 15), from: i), [])
    }

    /// Unknown opcodes -> 05/20/00 (SPC-4 4.5); a short CDB -> 05/24/00 pointing at byte 0;
    /// an empty CDB too. None of it crashes.
    func testInvalidOpcodeAndShortCDB() {
        let d = makeDrive()
        let i = d.attach()
        for op: UInt8 in [0x02, 0x7F, 0xC0, 0xFF, 0x9F, 0xAD, 0xBE] {
            assertCheck(d.execute([op, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], from: i), .invalidOpcode)
        }
        assertCheck(d.execute([], from: i), .invalidFieldInCDB, field: .cdb(0))
        assertCheck(d.execute([0x28, 0, 0], from: i), .invalidFieldInCDB, field: .cdb(0))
        assertCheck(d.execute([0xA3], from: i), .invalidFieldInCDB, field: .cdb(0))
        assertCheck(d.execute([0x9E, 0x10, 0, 0], from: i), .invalidFieldInCDB, field: .cdb(0))
        // The unsafe-pointer overload gives the same.
        let cdb: [UInt8] = [0x12, 0, 0, 0, 36, 0]
        let r = cdb.withUnsafeBytes { d.execute($0, from: i) }
        XCTAssertEqual(r.bytes.count, 36)
    }

    /// SET CD SPEED is accepted as a no-op (MMC-6 6.37).
    func testSetCDSpeed() {
        let d = makeDrive()
        assertGood(d.execute([0xBB, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0], from: d.attach()), [])
    }
}

/// A LUN with no drive behind it, as a multi-drive target answers for it.
final class AbsentLogicalUnitTests: XCTestCase {
    func testReportLUNsInquiryAndSenseForAnAbsentLUN() {
        assertGood(AbsentLogicalUnit.execute([0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0], reportedLUNs: [300, 1]),
                   [0, 0, 0, 16, 0, 0, 0, 0,
                    0x00, 0x01, 0, 0, 0, 0, 0, 0,
                    0x41, 0x2C, 0, 0, 0, 0, 0, 0])
        assertCheck(AbsentLogicalUnit.execute([0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0], reportedLUNs: [1]),
                    .invalidFieldInCDB, field: .cdb(6, bit: 7))
        let inquiry = AbsentLogicalUnit.execute([0x12, 0, 0, 0, 36, 0], reportedLUNs: [])
        assertGood(inquiry)
        XCTAssertEqual(inquiry.bytes.count, 36)
        XCTAssertEqual(inquiry.bytes.first, 0x7F, "qualifier 011b, type 1Fh")
        assertCheck(AbsentLogicalUnit.execute([0x00, 0, 0, 0, 0, 0], reportedLUNs: []), .logicalUnitNotSupported)
    }
}
