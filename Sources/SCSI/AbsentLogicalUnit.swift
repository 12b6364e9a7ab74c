/// What a target answers for a LUN that has no drive behind it (SPC-4 4.5 and 6.6.2), for
/// transports that serve several drives: INQUIRY reports peripheral qualifier 011b, device
/// type 1Fh; REPORT LUNS lists the target's LUNs (built as a drive builds it); REQUEST
/// SENSE returns 05/25/00 as data; every other command is CHECK CONDITION 05/25/00 LOGICAL
/// UNIT NOT SUPPORTED.
public enum AbsentLogicalUnit {
    public static func execute(_ bytes: [UInt8], reportedLUNs luns: [UInt64]) -> CommandResult {
        let unsupported = CommandResult.checkCondition(.logicalUnitNotSupported)
        guard let opcode = bytes.first else { return unsupported }
        let cdb = CDB(bytes)
        switch opcode {
        case 0x12 where bytes.count >= 6 && cdb[1] & 0x01 == 0:
            var d: [UInt8] = [0x7F, 0x00, 0x06, 0x02, 31, 0, 0, 0]
            d += Array("VMEDIAFS".utf8) + Array("NO LUN          ".utf8) + Array("1.0 ".utf8)
            return .good(.bytes(d.truncated(to: Int(cdb.u16(3)))))
        case 0xA0 where bytes.count >= 12:
            let allocation = Int(cdb.u32(6))
            let select = cdb[2]
            guard allocation >= 16, select <= 2 else {
                return .checkCondition(.invalidFieldInCDB, field: .cdb(allocation < 16 ? 6 : 2, bit: 7))
            }
            return .good(.bytes(PrimaryCommands.reportLUNsData(select == 1 ? [] : luns.sorted()).truncated(to: allocation)))
        case 0x03 where bytes.count >= 6:
            return .good(.bytes(unsupported.senseBytes.truncated(to: Int(cdb[4]))))
        default:
            return unsupported
        }
    }
}

/// SAM-5 4.7 single-level LUN addressing: peripheral device addressing below 256, flat
/// space addressing below 16384; a larger value is taken as an already-encoded 8-byte LUN.
public enum LUNAddress {
    public static func encode(_ lun: UInt64) -> [UInt8] {
        var d: [UInt8]
        if lun < 256 {
            d = [0x00, UInt8(lun)]
        } else if lun < 0x4000 {
            d = [0x40 | UInt8(lun >> 8), UInt8(lun & 0xFF)]
        } else {
            d = []
            d.append64(lun)
            return d
        }
        return d + [UInt8](repeating: 0, count: 6)
    }
}
