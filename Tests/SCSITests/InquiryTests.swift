import XCTest
@testable import SCSI

/// INQUIRY, SPC-4 6.6 (CDB Table 139), standard data Table 140, VPD pages 7.8.
final class InquiryTests: XCTestCase {
    func inquiry(_ d: OpticalDrive, _ i: InitiatorID, evpd: Bool = false, page: UInt8 = 0, alloc: UInt16 = 255) -> CommandResult {
        d.execute([0x12, evpd ? 1 : 0, page, UInt8(alloc >> 8), UInt8(alloc & 0xFF), 0], from: i)
    }

    /// Standard INQUIRY data, SPC-4 Table 140: PDT 05h, RMB, VERSION 06h (SPC-4), HISUP +
    /// format 2, additional length 91, CMDQUE, T10 vendor / product / revision, version
    /// descriptors (Table E.18) SAM-5 00A0h, SPC-4 0460h, MMC-6 04E0h at bytes 58-63.
    func testStandardData() {
        let d = makeDrive()
        let i = d.attach()
        var expected: [UInt8] = [0x05, 0x80, 0x06, 0x12, 91, 0x00, 0x00, 0x02]
        expected += Array("VMEDIAFS".utf8) + Array("Virtual DVD-ROM ".utf8) + Array("1.0 ".utf8)
        expected += [UInt8](repeating: 0, count: 22)           // 36-57
        expected += [0x00, 0xA0, 0x04, 0x60, 0x04, 0xE0]       // 58-63
        expected += [UInt8](repeating: 0, count: 32)           // 64-95
        XCTAssertEqual(expected.count, 96)
        assertGood(inquiry(d, i), expected)
        // Allocation length truncates (SPC-4 4.2.5.6); 36 is what most hosts ask first.
        assertGood(inquiry(d, i, alloc: 36), Array(expected[0..<36]))
        assertGood(inquiry(d, i, alloc: 5), Array(expected[0..<5]))
        let zero = inquiry(d, i, alloc: 0)
        XCTAssertEqual(zero.status, .good)
        XCTAssertEqual(zero.data.count, 0)
    }

    func testPaddingAndNonASCIIInIdentity() {
        let d = OpticalDrive(identity: DeviceIdentity(vendor: "ABCDEFGHIJ", product: "é", revision: "", serial: "", identifier: 0))
        let data = inquiry(d, d.attach()).bytes
        XCTAssertEqual(Array(data[8..<16]), Array("ABCDEFGH".utf8))
        XCTAssertEqual(Array(data[16..<20]), [0x3F, 0x3F, 0x20, 0x20])   // UTF-8 é is two bytes -> '?'
        XCTAssertEqual(Array(data[32..<36]), [0x20, 0x20, 0x20, 0x20])
    }

    /// VPD 00h, SPC-4 7.8.13 (Table 507): the supported pages ascending.
    func testSupportedVPDPages() {
        let d = makeDrive()
        assertGood(inquiry(d, d.attach(), evpd: true, page: 0x00), [0x05, 0x00, 0x00, 0x03, 0x00, 0x80, 0x83])
    }

    /// VPD 80h, SPC-4 7.8.15 (Table 511).
    func testUnitSerialNumber() {
        let d = makeDrive()
        assertGood(inquiry(d, d.attach(), evpd: true, page: 0x80),
                   [0x05, 0x80, 0x00, 13] + Array("guest1-vtopt0".utf8))
    }

    /// VPD 83h, SPC-4 7.8.6 (Tables 487, 488): NAA 3h designator (binary, LU, type 3, 7.8.6.6.4)
    /// and a T10 vendor ID designator (ASCII, LU, type 1, Table 490).
    func testDeviceIdentification() {
        let d = makeDrive()
        let t10 = Array("VMEDIAFS".utf8) + Array("Virtual DVD-ROM ".utf8) + Array("guest1-vtopt0".utf8)
        var payload: [UInt8] = [0x01, 0x03, 0x00, 0x08, 0x31, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF]
        payload += [0x02, 0x01, 0x00, UInt8(t10.count)] + t10
        assertGood(inquiry(d, d.attach(), evpd: true, page: 0x83),
                   [0x05, 0x83, 0x00, UInt8(payload.count)] + payload)
    }

    /// SPC-4 6.6.1: EVPD=0 with a nonzero PAGE CODE, or an unsupported VPD page -> 05/24/00,
    /// field pointer byte 2; CMDDT (obsolete) set -> byte 1 bit 1.
    func testInvalidFields() {
        let d = makeDrive()
        let i = d.attach()
        assertCheck(inquiry(d, i, page: 0x80), .invalidFieldInCDB, field: .cdb(2, bit: 7))
        assertCheck(inquiry(d, i, evpd: true, page: 0xB0), .invalidFieldInCDB, field: .cdb(2, bit: 7))
        assertCheck(d.execute([0x12, 0x02, 0, 0, 36, 0], from: i), .invalidFieldInCDB, field: .cdb(1, bit: 1))
        assertCheck(d.execute([0x12, 0, 0, 0], from: i), .invalidFieldInCDB, field: .cdb(0))   // short CDB
    }

    /// INQUIRY is served without a medium and with a unit attention pending, which it leaves
    /// pending (SPC-4 5.14).
    func testNotBlockedByAttentionOrEmptyDrive() {
        let d = makeDrive()
        let i = d.attach(reportPowerOn: true)
        XCTAssertEqual(inquiry(d, i).status, .good)
        assertCheck(d.execute(CDBs.tur, from: i), .powerOnReset)
        assertCheck(d.execute(CDBs.tur, from: i), .mediumNotPresentTrayClosed)
    }
}
