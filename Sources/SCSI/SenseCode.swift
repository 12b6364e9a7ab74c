/// A sense key with its additional sense code (ASC) and qualifier (ASCQ): the "why" of a
/// CHECK CONDITION, as SPC-4 4.5 and its Table D.1 (ASC/ASCQ assignments) define them.
///
/// The emulator names every condition it reports as a static constant here, so that callers
/// (the FUSE layer translating to errno, the iSCSI layer, tests) compare names, not numbers.
/// `SenseCode` is also an `Error`, so a code can be thrown as-is.
public struct SenseCode: Hashable, Sendable, Error, CustomStringConvertible {
    /// The sense key (SPC-4 Table 27), 4 bits.
    public let key: UInt8
    /// The additional sense code.
    public let asc: UInt8
    /// The additional sense code qualifier.
    public let ascq: UInt8

    public init(key: UInt8, asc: UInt8, ascq: UInt8) {
        self.key = key & 0x0F
        self.asc = asc
        self.ascq = ascq
    }

    /// "KK/AA/QQ" in hex, the way sense codes are usually written.
    public var description: String {
        func hex(_ v: UInt8) -> String {
            let digits = Array("0123456789ABCDEF")
            return String([digits[Int(v >> 4)], digits[Int(v & 0x0F)]])
        }
        return "\(hex(key))/\(hex(asc))/\(hex(ascq))"
    }
}

/// Sense keys (SPC-4 Table 27).
public enum SenseKey {
    public static let noSense: UInt8 = 0x0
    public static let recoveredError: UInt8 = 0x1
    public static let notReady: UInt8 = 0x2
    public static let mediumError: UInt8 = 0x3
    public static let hardwareError: UInt8 = 0x4
    public static let illegalRequest: UInt8 = 0x5
    public static let unitAttention: UInt8 = 0x6
    public static let dataProtect: UInt8 = 0x7
    public static let abortedCommand: UInt8 = 0xB
}

extension SenseCode {
    /// 00/00/00 NO ADDITIONAL SENSE INFORMATION: what REQUEST SENSE returns when nothing is pending.
    public static let noSense = SenseCode(key: 0x0, asc: 0x00, ascq: 0x00)

    // NOT READY (02h)
    /// 02/3A/00 MEDIUM NOT PRESENT (no tray state given).
    public static let mediumNotPresent = SenseCode(key: 0x2, asc: 0x3A, ascq: 0x00)
    /// 02/3A/01 MEDIUM NOT PRESENT - TRAY CLOSED.
    public static let mediumNotPresentTrayClosed = SenseCode(key: 0x2, asc: 0x3A, ascq: 0x01)
    /// 02/3A/02 MEDIUM NOT PRESENT - TRAY OPEN.
    public static let mediumNotPresentTrayOpen = SenseCode(key: 0x2, asc: 0x3A, ascq: 0x02)
    /// 02/04/01 LOGICAL UNIT IS IN PROCESS OF BECOMING READY: the medium's bytes are on their
    /// way (a URL's server has not answered in time); the initiator retries later.
    public static let becomingReady = SenseCode(key: 0x2, asc: 0x04, ascq: 0x01)

    // MEDIUM ERROR (03h)
    /// 03/11/00 UNRECOVERED READ ERROR: the backing could not be read (or changed under us).
    public static let unrecoveredReadError = SenseCode(key: 0x3, asc: 0x11, ascq: 0x00)

    // HARDWARE ERROR (04h)
    /// 04/44/00 INTERNAL TARGET FAILURE.
    public static let internalTargetFailure = SenseCode(key: 0x4, asc: 0x44, ascq: 0x00)

    // ILLEGAL REQUEST (05h)
    /// 05/1A/00 PARAMETER LIST LENGTH ERROR.
    public static let parameterListLengthError = SenseCode(key: 0x5, asc: 0x1A, ascq: 0x00)
    /// 05/20/00 INVALID COMMAND OPERATION CODE.
    public static let invalidOpcode = SenseCode(key: 0x5, asc: 0x20, ascq: 0x00)
    /// 05/21/00 LOGICAL BLOCK ADDRESS OUT OF RANGE.
    public static let lbaOutOfRange = SenseCode(key: 0x5, asc: 0x21, ascq: 0x00)
    /// 05/24/00 INVALID FIELD IN CDB.
    public static let invalidFieldInCDB = SenseCode(key: 0x5, asc: 0x24, ascq: 0x00)
    /// 05/25/00 LOGICAL UNIT NOT SUPPORTED (for transports addressing a LUN that does not exist).
    public static let logicalUnitNotSupported = SenseCode(key: 0x5, asc: 0x25, ascq: 0x00)
    /// 05/26/00 INVALID FIELD IN PARAMETER LIST.
    public static let invalidFieldInParameterList = SenseCode(key: 0x5, asc: 0x26, ascq: 0x00)
    /// 05/39/00 SAVING PARAMETERS NOT SUPPORTED.
    public static let savingParametersNotSupported = SenseCode(key: 0x5, asc: 0x39, ascq: 0x00)
    /// 05/53/02 MEDIUM REMOVAL PREVENTED.
    public static let removalPrevented = SenseCode(key: 0x5, asc: 0x53, ascq: 0x02)

    // UNIT ATTENTION (06h)
    /// 06/28/00 NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED.
    public static let notReadyToReadyChange = SenseCode(key: 0x6, asc: 0x28, ascq: 0x00)
    /// 06/29/00 POWER ON, RESET, OR BUS DEVICE RESET OCCURRED.
    public static let powerOnReset = SenseCode(key: 0x6, asc: 0x29, ascq: 0x00)
    /// 06/3F/0E REPORTED LUNS DATA HAS CHANGED.
    public static let reportedLUNsDataChanged = SenseCode(key: 0x6, asc: 0x3F, ascq: 0x0E)
    /// 06/5A/01 OPERATOR MEDIUM REMOVAL REQUEST (defined for completeness; the emulator reports
    /// a host eject request through GET EVENT STATUS NOTIFICATION instead).
    public static let mediumRemovalRequested = SenseCode(key: 0x6, asc: 0x5A, ascq: 0x01)

    // DATA PROTECT (07h)
    /// 07/27/00 WRITE PROTECTED.
    public static let writeProtected = SenseCode(key: 0x7, asc: 0x27, ascq: 0x00)
}
