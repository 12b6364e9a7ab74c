import XCTest
@testable import SCSI

/// MODE SENSE / MODE SELECT: SPC-4 6.11-6.14 (CDBs Tables 160, 164, 168, 170; headers Tables
/// 454/455), Control page SPC-4 7.5.8 Table 452, MMC-6 7.3 (01h), 7.4 (0Eh), 7.6 (2Ah).
final class ModeSenseTests: XCTestCase {
    static let page01: [UInt8] = [0x01, 0x0A, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    static let page0A: [UInt8] = [0x0A, 0x0A, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    static let page0E: [UInt8] = [0x0E, 0x0E, 0x04, 0, 0, 0, 0, 0, 0x01, 0xFF, 0x02, 0xFF, 0, 0, 0, 0]
    static func page2A(locked: Bool) -> [UInt8] {
        [0x2A, 0x1E, 0x08, 0x00, 0x00, 0x00, locked ? 0x2F : 0x2D, 0x00] + [UInt8](repeating: 0, count: 24)
    }

    func sense6(_ d: OpticalDrive, _ i: InitiatorID, page: UInt8, pc: UInt8 = 0, sub: UInt8 = 0, alloc: UInt8 = 255, dbd: Bool = false) -> CommandResult {
        d.execute([0x1A, dbd ? 0x08 : 0, pc << 6 | page, sub, alloc, 0], from: i)
    }

    func sense10(_ d: OpticalDrive, _ i: InitiatorID, page: UInt8, pc: UInt8 = 0, alloc: UInt16 = 1024) -> CommandResult {
        d.execute([0x5A, 0, pc << 6 | page, 0, 0, 0, 0, UInt8(alloc >> 8), UInt8(alloc & 0xFF), 0], from: i)
    }

    /// Header(6), Table 454: mode data length, medium type 0, WP=1 (80h), no block descriptors.
    func testCapabilitiesPage6WithLockState() {
        let (d, i) = loadedDrive()
        assertGood(sense6(d, i, page: 0x2A), [35, 0x00, 0x80, 0x00] + Self.page2A(locked: false))
        _ = d.execute(CDBs.prevent, from: i)
        assertGood(sense6(d, i, page: 0x2A), [35, 0x00, 0x80, 0x00] + Self.page2A(locked: true))
        // DBD is accepted; there are never block descriptors.
        assertGood(sense6(d, i, page: 0x2A, dbd: true), [35, 0x00, 0x80, 0x00] + Self.page2A(locked: true))
    }

    /// Header(10), Table 455; 3Fh returns every page in ascending order.
    func testAllPages10() {
        let d = makeDrive()   // allowed without a medium
        let i = d.attach()
        let pages = Self.page01 + Self.page0A + Self.page0E + Self.page2A(locked: false)
        let total = 8 + pages.count
        assertGood(sense10(d, i, page: 0x3F), [0, UInt8(total - 2), 0, 0x80, 0, 0, 0, 0] + pages)
        // Allocation length truncates; the length field still tells the whole.
        assertGood(sense10(d, i, page: 0x3F, alloc: 10), [0, UInt8(total - 2), 0, 0x80, 0, 0, 0, 0, 0x01, 0x0A])
        // Subpage FFh (all subpages) of 3Fh: the same.
        let r = d.execute([0x1A, 0, 0x3F, 0xFF, 255, 0], from: i)
        assertGood(r, [UInt8(4 + pages.count - 1), 0, 0x80, 0] + pages)
    }

    func testSinglePages() {
        let (d, i) = loadedDrive()
        assertGood(sense6(d, i, page: 0x01), [15, 0, 0x80, 0] + Self.page01)
        assertGood(sense6(d, i, page: 0x0E), [19, 0, 0x80, 0] + Self.page0E)
        assertGood(sense6(d, i, page: 0x0A), [15, 0, 0x80, 0] + Self.page0A)
    }

    /// PC=01b changeable values: only D_SENSE of the Control page; PC=10b defaults = current.
    func testPageControl() {
        let (d, i) = loadedDrive()
        var changeable0A = Self.page0A; changeable0A[2] = 0x04
        assertGood(sense6(d, i, page: 0x0A, pc: 1), [15, 0, 0x80, 0] + changeable0A)
        assertGood(sense6(d, i, page: 0x2A, pc: 1), [35, 0, 0x80, 0, 0x2A, 0x1E] + [UInt8](repeating: 0, count: 30))
        assertGood(sense6(d, i, page: 0x2A, pc: 2), [35, 0, 0x80, 0] + Self.page2A(locked: false))
    }

    /// SPC-4 6.11: PC=11b saved values -> 05/39/00; unsupported page -> 05/24/00 byte 2 bit 5;
    /// unsupported subpage -> byte 3.
    func testErrors() {
        let (d, i) = loadedDrive()
        assertCheck(sense6(d, i, page: 0x2A, pc: 3), .savingParametersNotSupported)
        assertCheck(sense6(d, i, page: 0x05), .invalidFieldInCDB, field: .cdb(2, bit: 5))
        assertCheck(sense6(d, i, page: 0x2A, sub: 0x01), .invalidFieldInCDB, field: .cdb(3, bit: 7))
        assertCheck(sense10(d, i, page: 0x1C), .invalidFieldInCDB, field: .cdb(2, bit: 5))
    }

    /// MODE SELECT of the Control page with D_SENSE=1 switches this initiator (only) to
    /// descriptor-format sense (SPC-4 7.5.8); other pages are accepted and ignored.
    func testModeSelectDescriptorSense() {
        let (d, i) = loadedDrive()
        let other = d.attach()
        var control = Self.page0A; control[2] = 0x04
        let list: [UInt8] = [0, 0, 0, 0] + control + Self.page0E
        assertGood(d.execute([0x15, 0x10, 0, 0, UInt8(list.count), 0], from: i, dataOut: list))
        let r = d.execute([0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0], from: i)   // UNMAP: write protected
        XCTAssertEqual(r.senseBytes, [0x72, 0x07, 0x27, 0x00, 0, 0, 0, 0])
        let bad = d.execute([0x12, 0, 0x01, 0, 36, 0], from: i)
        XCTAssertEqual(bad.senseBytes, SenseData.descriptor(.invalidFieldInCDB, field: .cdb(2, bit: 7)))
        assertGood(sense6(d, i, page: 0x0A), [15, 0, 0x80, 0] + control)
        // The other initiator still gets fixed format.
        _ = d.execute(CDBs.tur, from: other)
        XCTAssertEqual(d.execute([0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0], from: other).senseBytes, fixedSense(7, 0x27, 0))
        // REQUEST SENSE's DESC bit decides its own format regardless.
        assertGood(d.execute(CDBs.requestSense(desc: false), from: i), fixedSense(0, 0, 0))
    }

    /// MODE SELECT errors: SP=1 -> 05/24/00 (byte 1 bit 0); short data -> 05/1A/00; unknown
    /// page -> 05/26/00 pointing into the parameter list; bad block descriptor length -> 05/26/00.
    func testModeSelectErrors() {
        let (d, i) = loadedDrive()
        assertCheck(d.execute([0x15, 0x11, 0, 0, 4, 0], from: i, dataOut: [0, 0, 0, 0]),
                    .invalidFieldInCDB, field: .cdb(1, bit: 0))
        assertCheck(d.execute([0x15, 0x10, 0, 0, 20, 0], from: i, dataOut: [0, 0, 0, 0]), .parameterListLengthError)
        assertCheck(d.execute([0x15, 0x10, 0, 0, 8, 0], from: i, dataOut: [0, 0, 0, 0, 0x05, 0x02, 0, 0]),
                    .invalidFieldInParameterList, field: .parameter(4, bit: 5))
        assertCheck(d.execute([0x55, 0x10, 0, 0, 0, 0, 0, 0, 8, 0], from: i, dataOut: [0, 0, 0, 0, 0, 0, 0, 4]),
                    .invalidFieldInParameterList, field: .parameter(6, bit: 7))
        assertCheck(d.execute([0x15, 0x10, 0, 0, 6, 0], from: i, dataOut: [0, 0, 0, 0, 0x01, 0x0A]), .parameterListLengthError)
        assertGood(d.execute([0x15, 0x10, 0, 0, 0, 0], from: i))   // empty list: nothing to do
    }
}
