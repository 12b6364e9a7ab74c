/// INQUIRY (12h): standard data and the vital product data pages 00h, 80h and 83h (SPC-4 6.6, 7.8).
enum InquiryCommands {
    /// Peripheral qualifier 000b (connected) + peripheral device type 05h (CD/DVD device, MMC).
    static let peripheral: UInt8 = 0x05

    static let commands: [Command] = [
        Command(0x12, "INQUIRY", usage: [0x12, 0x03, 0xFF, 0xFF, 0xFF, 0x00], needsMedium: false, passesAttention: true, inquiry),
    ]

    /// The VPD pages we support, ascending (VPD page 00h lists them).
    static let supportedPages: [UInt8] = [0x00, 0x80, 0x83]

    static func inquiry(_ r: Request, _ core: inout DriveCore) throws(SenseError) -> Reply {
        let cdb = r.cdb
        if cdb.bit(1, 1) { throw .invalidField(byte: 1, bit: 1) }   // CMDDT (obsolete) not supported
        let page = cdb[2]
        let allocation = Int(cdb.u16(3))
        let data: [UInt8]
        if !cdb.bit(1, 0) {
            if page != 0 { throw .invalidField(byte: 2, bit: 7) }    // EVPD=0 needs PAGE CODE 0
            data = r.device.standardInquiry
        } else {
            switch page {
            case 0x00: data = vpdPage(0x00, supportedPages)
            case 0x80: data = vpdPage(0x80, unitSerial(r.device.identity))
            case 0x83: data = vpdPage(0x83, deviceIdentification(r.device.identity))
            default: throw .invalidField(byte: 2, bit: 7)
            }
        }
        return .bytes(data.truncated(to: allocation))
    }

    /// Standard INQUIRY data, SPC-4 Table 140: 96 bytes (additional length 5Bh) with version
    /// descriptors SAM-5 (00A0h), SPC-4 (0460h) and MMC-6 (04E0h) (SPC-4 Table E.18).
    static func standardData(_ id: DeviceIdentity) -> [UInt8] {
        var d = [UInt8](repeating: 0, count: 96)
        d[0] = peripheral
        d[1] = 0x80              // RMB: removable medium
        d[2] = 0x06              // VERSION: SPC-4
        d[3] = 0x12              // HISUP=1, RESPONSE DATA FORMAT=2
        d[4] = UInt8(96 - 5)     // ADDITIONAL LENGTH
        d[7] = 0x02              // CMDQUE: commands may be queued / run concurrently
        d.replaceSubrange(8..<16, with: [UInt8].ascii(id.vendor, width: 8))
        d.replaceSubrange(16..<32, with: [UInt8].ascii(id.product, width: 16))
        d.replaceSubrange(32..<36, with: [UInt8].ascii(id.revision, width: 4))
        d.put16(0x00A0, at: 58)  // SAM-5
        d.put16(0x0460, at: 60)  // SPC-4
        d.put16(0x04E0, at: 62)  // MMC-6
        return d
    }

    /// A VPD page: device type, page code, 2-byte page length, payload (SPC-4 Table 484).
    static func vpdPage(_ code: UInt8, _ payload: [UInt8]) -> [UInt8] {
        var d: [UInt8] = [peripheral, code]
        d.append16(UInt16(payload.count))
        return d + payload
    }

    /// VPD 80h payload: the serial number, printable ASCII, at most 252 bytes (SPC-4 7.8.15).
    static func unitSerial(_ id: DeviceIdentity) -> [UInt8] {
        [UInt8].ascii(id.serial, limit: 252)
    }

    /// VPD 83h payload (SPC-4 7.8.6): two designation descriptors for the logical unit.
    /// 1. NAA, binary: NAA 3h (locally assigned, SPC-4 7.8.6.6.4) with the low 60 bits of
    ///    `identifier`.
    /// 2. T10 vendor ID based, ASCII (SPC-4 7.8.6.4): vendor (8) + product (16) + serial.
    static func deviceIdentification(_ id: DeviceIdentity) -> [UInt8] {
        var d: [UInt8] = [0x01, 0x03, 0x00, 0x08]   // code set binary; LU association; type NAA
        d.append64((0x3 << 60) | (id.identifier & 0x0FFF_FFFF_FFFF_FFFF))
        let t10 = [UInt8].ascii(id.vendor, width: 8) + [UInt8].ascii(id.product, width: 16)
            + [UInt8].ascii(id.serial, limit: 255 - 24)
        d += [0x02, 0x01, 0x00, UInt8(t10.count)]   // code set ASCII; LU association; type T10 vendor ID
        d += t10
        return d
    }
}
