import NIOCore
import SCSI

/// iSCSI opcodes (RFC 7143 11.2.1.2).
public enum ISCSIOpcode: UInt8, Sendable {
    // Initiator opcodes.
    case nopOut = 0x00
    case scsiCommand = 0x01
    case taskManagementRequest = 0x02
    case loginRequest = 0x03
    case textRequest = 0x04
    case dataOut = 0x05
    case logoutRequest = 0x06
    case snackRequest = 0x10
    // Target opcodes.
    case nopIn = 0x20
    case scsiResponse = 0x21
    case taskManagementResponse = 0x22
    case loginResponse = 0x23
    case textResponse = 0x24
    case dataIn = 0x25
    case logoutResponse = 0x26
    case readyToTransfer = 0x31
    case asyncMessage = 0x32
    case reject = 0x3F
}

/// One iSCSI PDU: the 48-byte Basic Header Segment, the Additional Header Segments and the data
/// segment, without digests or padding (the codec adds and checks those).
///
/// Multi-byte fields are big-endian (RFC 7143 11.1). The accessors name the fields every PDU
/// shares; opcode-specific fields are read with `u32(at:)` and friends at the offsets of RFC 7143
/// section 11, which each use site names.
public struct ISCSIPDU: Sendable, Equatable {
    /// The Basic Header Segment, always 48 bytes.
    public var bhs: [UInt8]
    /// The AHS bytes (a multiple of 4), usually empty.
    public var ahs: [UInt8]
    /// The data segment, unpadded.
    public var data: [UInt8]

    public static let bhsLength = 48
    /// The reserved Initiator/Target Task Tag meaning "none".
    public static let reservedTag: UInt32 = 0xFFFF_FFFF

    public init(bhs: [UInt8], ahs: [UInt8] = [], data: [UInt8] = []) {
        precondition(bhs.count == ISCSIPDU.bhsLength, "a BHS is 48 bytes")
        self.bhs = bhs
        self.ahs = ahs
        self.data = data
    }

    /// A fresh PDU with `opcode` and everything else zero.
    public init(opcode: ISCSIOpcode, immediate: Bool = false, flags: UInt8 = 0) {
        var b = [UInt8](repeating: 0, count: ISCSIPDU.bhsLength)
        b[0] = opcode.rawValue | (immediate ? 0x40 : 0)
        b[1] = flags
        self.init(bhs: b)
    }

    /// The raw opcode (byte 0, bits 5-0).
    public var rawOpcode: UInt8 { bhs[0] & 0x3F }
    public var opcode: ISCSIOpcode? { ISCSIOpcode(rawValue: rawOpcode) }
    /// The I bit (immediate delivery).
    public var immediate: Bool { bhs[0] & 0x40 != 0 }
    /// Byte 1: the F bit (80h) and opcode-specific flags.
    public var flags: UInt8 {
        get { bhs[1] }
        set { bhs[1] = newValue }
    }
    public var final: Bool { bhs[1] & 0x80 != 0 }
    /// DataSegmentLength as written in bytes 5-7 (set by the encoder from `data`).
    public var declaredDataLength: Int { Int(bhs[5]) << 16 | Int(bhs[6]) << 8 | Int(bhs[7]) }
    /// TotalAHSLength in bytes (byte 4 counts 4-byte words).
    public var declaredAHSLength: Int { Int(bhs[4]) * 4 }

    /// Bytes 8-15: the LUN field (SAM-5 4.7 encoding).
    public var lunField: UInt64 {
        get { u64(at: 8) }
        set { setU64(newValue, at: 8) }
    }
    /// The LUN number from a single-level LUN (peripheral or flat space addressing); other
    /// address methods come back unchanged, so they match no drive.
    public var lun: UInt64 {
        let method = bhs[8] >> 6
        switch method {
        case 0 where bhs[8] == 0: return UInt64(bhs[9])
        case 1: return UInt64(bhs[8] & 0x3F) << 8 | UInt64(bhs[9])
        default: return lunField
        }
    }
    /// Bytes 16-19.
    public var initiatorTaskTag: UInt32 {
        get { u32(at: 16) }
        set { setU32(newValue, at: 16) }
    }

    public func u16(at i: Int) -> UInt16 { UInt16(bhs[i]) << 8 | UInt16(bhs[i + 1]) }
    public func u32(at i: Int) -> UInt32 {
        UInt32(bhs[i]) << 24 | UInt32(bhs[i + 1]) << 16 | UInt32(bhs[i + 2]) << 8 | UInt32(bhs[i + 3])
    }
    public func u64(at i: Int) -> UInt64 { UInt64(u32(at: i)) << 32 | UInt64(u32(at: i + 4)) }

    public mutating func setU16(_ v: UInt16, at i: Int) {
        bhs[i] = UInt8(v >> 8); bhs[i + 1] = UInt8(truncatingIfNeeded: v)
    }
    public mutating func setU32(_ v: UInt32, at i: Int) {
        for k in 0..<4 { bhs[i + k] = UInt8(truncatingIfNeeded: v >> UInt32(24 - 8 * k)) }
    }
    public mutating func setU64(_ v: UInt64, at i: Int) {
        setU32(UInt32(truncatingIfNeeded: v >> 32), at: i)
        setU32(UInt32(truncatingIfNeeded: v), at: i + 4)
    }

    /// A LUN as the 8-byte header field carries it (SAM-5 single-level, as REPORT LUNS lists it).
    public static func encodeLUN(_ lun: UInt64) -> UInt64 {
        LUNAddress.encode(lun).reduce(0) { $0 << 8 | UInt64($1) }
    }
}

/// Builders for the target's PDUs (RFC 7143 section 11), each with the sequence numbers the
/// session supplies.
struct SequenceNumbers {
    var statSN: UInt32
    var expCmdSN: UInt32
    var maxCmdSN: UInt32
}

extension ISCSIPDU {
    /// Writes StatSN / ExpCmdSN / MaxCmdSN at bytes 24, 28, 32 (every target response).
    mutating func stamp(_ sn: SequenceNumbers) {
        setU32(sn.statSN, at: 24)
        setU32(sn.expCmdSN, at: 28)
        setU32(sn.maxCmdSN, at: 32)
    }

    /// A Reject (11.17) carrying the rejected PDU's header.
    static func reject(reason: UInt8, of header: [UInt8], _ sn: SequenceNumbers) -> ISCSIPDU {
        var p = ISCSIPDU(opcode: .reject, flags: 0x80)
        p.bhs[2] = reason
        p.initiatorTaskTag = reservedTag
        p.stamp(sn)
        p.data = header
        return p
    }
}

/// Reject reasons (RFC 7143 11.17.1).
enum RejectReason {
    static let dataDigestError: UInt8 = 0x02
    static let protocolError: UInt8 = 0x04
    static let commandNotSupported: UInt8 = 0x05
    static let invalidPDUField: UInt8 = 0x09
}
