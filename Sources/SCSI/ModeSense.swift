/// MODE SENSE(6)/(10) and MODE SELECT(6)/(10) (SPC-4 6.11-6.14, MMC-6 7).
///
/// Pages: 01h Read/Write Error Recovery, 0Ah Control (D_SENSE changeable, per initiator),
/// 0Eh CD Audio Control, 2Ah MM Capabilities and Mechanical Status; 3Fh returns them all.
/// No block descriptors are ever returned (MMC devices do not use them; DBD is accepted).
/// The header's device-specific parameter always has WP (bit 7) set: the drive cannot write.
enum ModeCommands {
    static let commands: [Command] = [
        Command(0x15, "MODE SELECT(6)", usage: [0x15, 0x11, 0, 0, 0xFF, 0], needsMedium: false, modeSelect),
        Command(0x1A, "MODE SENSE(6)", usage: [0x1A, 0x08, 0xFF, 0xFF, 0xFF, 0], needsMedium: false, modeSense),
        Command(0x55, "MODE SELECT(10)", usage: [0x55, 0x11, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0], needsMedium: false, modeSelect),
        Command(0x5A, "MODE SENSE(10)", usage: [0x5A, 0x18, 0xFF, 0xFF, 0, 0, 0, 0xFF, 0xFF, 0], needsMedium: false, modeSense),
    ]

    /// Page codes we have, ascending (the order 3Fh returns them in).
    static let pageCodes: [UInt8] = [0x01, 0x0A, 0x0E, 0x2A]

    /// PAGE CONTROL (SPC-4 Table 166).
    enum PageControl: UInt8 { case current = 0, changeable = 1, defaults = 2, saved = 3 }

    /// One mode page's bytes (page code, page length, parameters).
    static func page(_ code: UInt8, _ pc: PageControl, locked: Bool, descriptorSense: Bool) -> [UInt8] {
        let changeable = pc == .changeable
        switch code {
        case 0x01:
            // MMC-6 7.3, Table 631: no recovery flags, retry counts 0.
            return [0x01, 0x0A] + [UInt8](repeating: 0, count: 10)
        case 0x0A:
            // SPC-4 7.5.8, Table 452: only D_SENSE (byte 2 bit 2) is changeable.
            var p: [UInt8] = [0x0A, 0x0A] + [UInt8](repeating: 0, count: 10)
            if changeable || (pc == .current && descriptorSense) { p[2] = 0x04 }
            return p
        case 0x0E:
            // MMC-6 7.4 (CD Audio Control), Table 633: IMMED=1, port 0 -> channel 0, port 1 ->
            // channel 1, both at full volume.
            if changeable { return [0x0E, 0x0E] + [UInt8](repeating: 0, count: 14) }
            return [0x0E, 0x0E, 0x04, 0, 0, 0, 0, 0, 0x01, 0xFF, 0x02, 0xFF, 0, 0, 0, 0]
        default:
            // 2Ah, MMC-6 7.6 (MM Capabilities and Mechanical Status), Table 635: page length
            // 1Eh (no write speed descriptors). Byte 2: DVD-ROM read; byte 3: no writing;
            // byte 6: tray mechanism (001b), Eject, Pvnt Jmpr=1 (no jumper), Lock, Lock State
            // (bit 1) when any initiator prevents removal.
            var p = [UInt8](repeating: 0, count: 32)
            p[0] = 0x2A
            p[1] = 0x1E
            if changeable { return p }
            p[2] = 0x08
            p[6] = 0x2D | (locked ? 0x02 : 0x00)
            return p
        }
    }

    static func modeSense(_ r: Request, _ core: inout DriveCore) throws(SenseError) -> Reply {
        let cdb = r.cdb
        let ten = cdb.opcode == 0x5A
        guard let pc = PageControl(rawValue: cdb[2] >> 6) else { throw .invalidField(byte: 2, bit: 7) }
        if pc == .saved { throw SenseError(.savingParametersNotSupported) }
        let code = cdb[2] & 0x3F
        let subpage = cdb[3]
        if subpage != 0x00 && subpage != 0xFF { throw .invalidField(byte: 3, bit: 7) }
        let codes: [UInt8]
        if code == 0x3F {
            codes = pageCodes
        } else if pageCodes.contains(code) {
            codes = [code]
        } else {
            throw .invalidField(byte: 2, bit: 5)
        }
        let descriptorSense = core.nexus[r.initiator]?.descriptorSense ?? false
        var pages: [UInt8] = []
        for c in codes { pages += page(c, pc, locked: core.locked, descriptorSense: descriptorSense) }
        let wp: UInt8 = 0x80
        var d: [UInt8]
        let allocation: Int
        if ten {
            // Mode parameter header(10), SPC-4 Table 455.
            d = [0, 0, 0x00, wp, 0x00, 0x00, 0x00, 0x00]
            d += pages
            d.put16(UInt16(d.count - 2), at: 0)
            allocation = Int(cdb.u16(7))
        } else {
            // Mode parameter header(6), SPC-4 Table 454.
            d = [0, 0x00, wp, 0x00]
            d += pages
            d[0] = UInt8(d.count - 1)
            allocation = Int(cdb[4])
        }
        return .bytes(d.truncated(to: allocation))
    }

    /// MODE SELECT: validated and, except for D_SENSE of the Control page (kept per initiator),
    /// accepted and ignored. SP=1: 05/24/00. A list shorter than PARAMETER LIST LENGTH or pages
    /// running past it: 05/1A/00. A block descriptor length other than 0 or 8, or a page we do
    /// not have: 05/26/00 with the field pointer into the parameter list.
    static func modeSelect(_ r: Request, _ core: inout DriveCore) throws(SenseError) -> Reply {
        let cdb = r.cdb
        let ten = cdb.opcode == 0x55
        if cdb.bit(1, 0) { throw .invalidField(byte: 1, bit: 0) }
        let length = ten ? Int(cdb.u16(7)) : Int(cdb[4])
        if length == 0 { return .none }
        guard r.dataOut.count >= length else { throw SenseError(.parameterListLengthError) }
        let list = Array(r.dataOut.prefix(length))
        let headerLength = ten ? 8 : 4
        guard length >= headerLength else { throw SenseError(.parameterListLengthError) }
        let descriptorLength = ten ? Int(list[6]) << 8 | Int(list[7]) : Int(list[3])
        guard descriptorLength == 0 || descriptorLength == 8 else {
            throw .invalidParameter(byte: ten ? 6 : 3, bit: 7)
        }
        var offset = headerLength + descriptorLength
        guard offset <= length else { throw SenseError(.parameterListLengthError) }
        var newDescriptorSense: Bool?
        while offset < length {
            let code = list[offset] & 0x3F
            let subpageFormat = list[offset] & 0x40 != 0
            let pageHeader = subpageFormat ? 4 : 2
            guard offset + pageHeader <= length else { throw SenseError(.parameterListLengthError) }
            let pageLength = subpageFormat ? Int(list[offset + 2]) << 8 | Int(list[offset + 3]) : Int(list[offset + 1])
            guard offset + pageHeader + pageLength <= length else { throw SenseError(.parameterListLengthError) }
            guard !subpageFormat, pageCodes.contains(code) else { throw .invalidParameter(byte: offset, bit: 5) }
            if code == 0x0A && pageLength >= 1 {
                newDescriptorSense = list[offset + 2] & 0x04 != 0
            }
            offset += pageHeader + pageLength
        }
        if let newDescriptorSense { core.nexus[r.initiator]?.descriptorSense = newDescriptorSense }
        return .none
    }
}
