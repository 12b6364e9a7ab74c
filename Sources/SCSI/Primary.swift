/// SPC-4 primary commands: TEST UNIT READY, REQUEST SENSE, REPORT LUNS,
/// REPORT SUPPORTED OPERATION CODES.
enum PrimaryCommands {
    static let commands: [Command] = [
        Command(0x00, "TEST UNIT READY", usage: [0x00, 0, 0, 0, 0, 0], needsMedium: true) { _, _ throws(SenseError) in .none },
        Command(0x03, "REQUEST SENSE", usage: [0x03, 0x01, 0, 0, 0xFF, 0], needsMedium: false, passesAttention: true, requestSense),
        Command(0xA0, "REPORT LUNS", usage: [0xA0, 0, 0xFF, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0],
                needsMedium: false, passesAttention: true, reportLUNs),
        Command(0xA3, sa: 0x0C, "REPORT SUPPORTED OPERATION CODES",
                usage: [0xA3, 0x1F, 0x87, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0],
                needsMedium: false, reportSupportedOpcodes),
    ]

    /// REQUEST SENSE (SPC-4 6.39): a pending unit attention (reported and cleared); else the
    /// not-ready condition 02/3A/0x when there is no medium; else NO SENSE. DESC=1 gives
    /// descriptor format. Allocation length 0 transfers nothing (not an error).
    static func requestSense(_ r: Request, _ core: inout DriveCore) throws(SenseError) -> Reply {
        let descriptor = r.cdb.bit(1, 0)
        let allocation = Int(r.cdb[4])
        let code: SenseCode
        if let ua = core.takeAttention(r.initiator) {
            code = ua
        } else if core.medium == nil {
            code = core.notPresentSense
        } else {
            code = .noSense
        }
        return .bytes(SenseData.build(code, field: nil, descriptorFormat: descriptor).truncated(to: allocation))
    }

    /// REPORT LUNS (SPC-4 6.33). SELECT REPORT 00h/02h: the LUN inventory (this drive's `lun`,
    /// or the list given to `setReportedLUNs`); 01h (well-known LUs): empty; others 05/24/00.
    /// An allocation length under 16 is 05/24/00 (SPC-4 6.33.1). Clears a pending 06/3F/0E.
    static func reportLUNs(_ r: Request, _ core: inout DriveCore) throws(SenseError) -> Reply {
        let select = r.cdb[2]
        let allocation = Int(r.cdb.u32(6))
        if allocation < 16 { throw .invalidField(byte: 6, bit: 7) }
        let luns: [UInt64]
        switch select {
        case 0x00, 0x02: luns = core.reportedLUNs ?? [r.device.lun]
        case 0x01: luns = []
        default: throw .invalidField(byte: 2, bit: 7)
        }
        core.clearAttention(.reportedLUNsDataChanged, for: r.initiator)
        return .bytes(reportLUNsData(luns).truncated(to: allocation))
    }

    /// The REPORT LUNS parameter data for `luns` (SPC-4 Table 284): the list length, four
    /// reserved bytes, then each LUN in single-level form.
    static func reportLUNsData(_ luns: [UInt64]) -> [UInt8] {
        var d: [UInt8] = []
        d.append32(UInt32(truncatingIfNeeded: luns.count * 8))
        d.append32(0)
        for lun in luns { d += LUNAddress.encode(lun) }
        return d
    }

    /// REPORT SUPPORTED OPERATION CODES (SPC-4 6.35): reporting options 000b (all, Table 305
    /// descriptors), 001b (one opcode without service action), 010b (opcode + service action),
    /// Table 307 one-command format; RCTD adds a command timeouts descriptor (Table 309) with
    /// zero timeouts. Other reporting options: 05/24/00.
    static func reportSupportedOpcodes(_ r: Request, _ core: inout DriveCore) throws(SenseError) -> Reply {
        let cdb = r.cdb
        let rctd = cdb.bit(2, 7)
        let options = cdb[2] & 0x07
        let opcode = cdb[3]
        let serviceAction = cdb.u16(4)
        let allocation = Int(cdb.u32(6))
        var d: [UInt8] = []
        switch options {
        case 0:
            d.append32(0)
            for c in CommandTable.all {
                d.append(c.opcode)
                d.append(0)
                d.append16(UInt16(c.serviceAction ?? 0))
                d.append(0)
                d.append((rctd ? 0x02 : 0) | (c.serviceAction != nil ? 0x01 : 0))
                d.append16(UInt16(c.length))
                if rctd { d += timeoutsDescriptor }
            }
            d.put32(UInt32(d.count - 4), at: 0)
        case 1, 2:
            let candidates = CommandTable.byOpcode[Int(opcode)]
            let hasServiceActions = candidates.first?.serviceAction != nil
            if options == 1 && hasServiceActions { throw .invalidField(byte: 2, bit: 2) }
            if options == 2 && !candidates.isEmpty && !hasServiceActions { throw .invalidField(byte: 2, bit: 2) }
            let found = options == 1 ? candidates.first
                : candidates.first { UInt16($0.serviceAction ?? 0) == serviceAction }
            if let c = found {
                d = [0x00, (rctd ? 0x80 : 0) | 0x03]   // SUPPORT 011b: supported as the standard says
                d.append16(UInt16(c.length))
                d += c.usage
                if rctd { d += timeoutsDescriptor }
            } else {
                d = [0x00, 0x01, 0x00, 0x00]            // SUPPORT 001b: not supported
            }
        default:
            throw .invalidField(byte: 2, bit: 2)
        }
        return .bytes(d.truncated(to: allocation))
    }

    /// Command timeouts descriptor (SPC-4 Table 309): length 0Ah, no timeouts given.
    static let timeoutsDescriptor: [UInt8] = [0x00, 0x0A, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]
}
