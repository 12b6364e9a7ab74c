import XCTest
@testable import SCSI

/// Sense data formats: SPC-4 4.5.3 (fixed, Table 48), 4.5.2 (descriptor, Table 12), 4.5.2.4
/// (sense key specific, field pointer Table 50). Codes: SPC-4 Table D.1.
final class SenseDataTests: XCTestCase {
    /// Every named sense code, with its key/ASC/ASCQ from SPC-4 Table D.1 / MMC-6 Annex F.
    func testEveryNamedCodeHasTheStandardNumbers() {
        let table: [(SenseCode, UInt8, UInt8, UInt8)] = [
            (.noSense, 0x0, 0x00, 0x00),
            (.mediumNotPresent, 0x2, 0x3A, 0x00),
            (.mediumNotPresentTrayClosed, 0x2, 0x3A, 0x01),
            (.mediumNotPresentTrayOpen, 0x2, 0x3A, 0x02),
            (.unrecoveredReadError, 0x3, 0x11, 0x00),
            (.internalTargetFailure, 0x4, 0x44, 0x00),
            (.parameterListLengthError, 0x5, 0x1A, 0x00),
            (.invalidOpcode, 0x5, 0x20, 0x00),
            (.lbaOutOfRange, 0x5, 0x21, 0x00),
            (.invalidFieldInCDB, 0x5, 0x24, 0x00),
            (.logicalUnitNotSupported, 0x5, 0x25, 0x00),
            (.invalidFieldInParameterList, 0x5, 0x26, 0x00),
            (.savingParametersNotSupported, 0x5, 0x39, 0x00),
            (.removalPrevented, 0x5, 0x53, 0x02),
            (.notReadyToReadyChange, 0x6, 0x28, 0x00),
            (.powerOnReset, 0x6, 0x29, 0x00),
            (.reportedLUNsDataChanged, 0x6, 0x3F, 0x0E),
            (.mediumRemovalRequested, 0x6, 0x5A, 0x01),
            (.writeProtected, 0x7, 0x27, 0x00),
        ]
        for (code, key, asc, ascq) in table {
            XCTAssertEqual([code.key, code.asc, code.ascq], [key, asc, ascq], "\(code)")
            // Fixed format, Table 48: 70h, key in byte 2, additional length 0Ah, ASC/ASCQ in 12/13.
            XCTAssertEqual(SenseData.fixed(code), fixedSense(key, asc, ascq))
            // Descriptor format, Table 12: 72h, key, ASC, ASCQ, reserved, additional length 0.
            XCTAssertEqual(SenseData.descriptor(code), [0x72, key, asc, ascq, 0, 0, 0, 0])
        }
        XCTAssertEqual(SenseCode.removalPrevented.description, "05/53/02")
    }

    /// Field pointer, SPC-4 Table 50: SKSV=1 (80h), C/D=1 (40h), BPV=1 (08h) + bit, then the byte.
    func testFieldPointerFixedFormat() {
        XCTAssertEqual(SenseData.fixed(.invalidFieldInCDB, field: .cdb(2, bit: 7)),
                       fixedSense(5, 0x24, 0, sks: [0xCF, 0x00, 0x02]))
        XCTAssertEqual(SenseData.fixed(.invalidFieldInCDB, field: .cdb(1)),
                       fixedSense(5, 0x24, 0, sks: [0xC0, 0x00, 0x01]))
        // C/D = 0: a parameter list byte.
        XCTAssertEqual(SenseData.fixed(.invalidFieldInParameterList, field: .parameter(0x104, bit: 5)),
                       fixedSense(5, 0x26, 0, sks: [0x8D, 0x01, 0x04]))
    }

    /// Sense key specific descriptor, SPC-4 4.5.2.4 (Table 28): type 02h, length 06h.
    func testFieldPointerDescriptorFormat() {
        XCTAssertEqual(SenseData.descriptor(.invalidFieldInCDB, field: .cdb(4, bit: 1)),
                       [0x72, 0x05, 0x24, 0x00, 0, 0, 0, 0x08,
                        0x02, 0x06, 0x00, 0x00, 0xC9, 0x00, 0x04, 0x00])
    }
}
