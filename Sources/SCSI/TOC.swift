/// READ TOC/PMA/ATIP (43h) and READ DISC INFORMATION (51h) for a single-session disc with one
/// data track starting at LBA 0 (MMC-6 6.26, 6.22). A DVD-ROM answers the same way (the
/// fabricated CD-style TOC QEMU's scsi-cd also gives), which is what drivers expect.
enum TOCCommands {
    static let commands: [Command] = [
        Command(0x43, "READ TOC/PMA/ATIP", usage: [0x43, 0x02, 0x0F, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xC0],
                needsMedium: true, readTOC),
        Command(0x51, "READ DISC INFORMATION", usage: [0x51, 0x07, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0],
                needsMedium: true, readDiscInformation),
    ]

    /// ADR 1 (Q sub-channel position), CONTROL 4 (data track, recorded uninterrupted).
    static let adrControl: UInt8 = 0x14
    /// The lead-out's track number.
    static let leadOut: UInt8 = 0xAA

    /// The 4-byte address field of a TOC descriptor: LBA, or 00h M S F of LBA + 150 (MMC-6 Table
    /// 466 / 4.2.3.3). Minutes past 255 (a DVD's lead-out) are clamped to FFh:3Bh:4Ah.
    static func address(_ lba: UInt64, msf: Bool) -> [UInt8] {
        var d: [UInt8] = []
        if msf {
            let (m, s, f) = msfComponents(lba)
            d = [0, m, s, f]
        } else {
            d.append32(UInt32(truncatingIfNeeded: min(lba, 0xFFFF_FFFF)))
        }
        return d
    }

    /// M, S, F for `lba` (plus the 2-second, 150-frame pre-gap), clamped to FF:3B:4A.
    static func msfComponents(_ lba: UInt64) -> (UInt8, UInt8, UInt8) {
        let frames = lba + 150
        let minutes = frames / (60 * 75)
        if minutes > 255 { return (0xFF, 59, 74) }
        return (UInt8(minutes), UInt8((frames / 75) % 60), UInt8(frames % 75))
    }

    /// Formats: 0000b TOC (Table 469), 0001b session information (Table 471), 0010b full TOC
    /// (Table 473). When FORMAT is 0, the older placement of the format in bits 7-6 of the
    /// control byte (SFF-8020) is honoured. Other formats: 05/24/00.
    static func readTOC(_ r: Request, _ core: inout DriveCore) throws(SenseError) -> Reply {
        guard let medium = core.medium else { throw SenseError(core.notPresentSense) }
        let cdb = r.cdb
        let msf = cdb.bit(1, 1)
        var format = cdb[2] & 0x0F
        if format == 0 { format = cdb[9] >> 6 }
        let allocation = Int(cdb.u16(7))
        let data: [UInt8]
        switch format {
        case 0: data = try toc(track: cdb[6], msf: msf, leadOutLBA: medium.blockCount)
        case 1: data = sessionInfo(msf: msf)
        case 2: data = fullTOC(leadOutLBA: medium.blockCount)
        default: throw .invalidField(byte: 2, bit: 3)
        }
        return .bytes(data.truncated(to: allocation))
    }

    /// Format 0: descriptors for tracks >= the requested one, then the lead-out (AAh).
    /// Track 0 means from the first; a track past the last that is not AAh: 05/24/00.
    static func toc(track: UInt8, msf: Bool, leadOutLBA: UInt64) throws(SenseError) -> [UInt8] {
        guard track <= 1 || track == leadOut else { throw .invalidField(byte: 6, bit: 7) }
        var d: [UInt8] = [0, 0, 1, 1]   // length, first track 1, last track 1
        if track <= 1 {
            d += [0, adrControl, 1, 0] + address(0, msf: msf)
        }
        d += [0, adrControl, leadOut, 0] + address(leadOutLBA, msf: msf)
        d.put16(UInt16(d.count - 2), at: 0)
        return d
    }

    /// Format 1: first and last complete session 1; the first track of the last session (1) at 0.
    static func sessionInfo(msf: Bool) -> [UInt8] {
        [0x00, 0x0A, 1, 1, 0, adrControl, 1, 0] + address(0, msf: msf)
    }

    /// Format 2: the raw Q sub-channel TOC of session 1: points A0h (first track 1, disc type
    /// 00h CD-ROM), A1h (last track 1), A2h (lead-out start), 01h (track 1 at 00:02:00).
    /// Addresses are always MSF in this format.
    static func fullTOC(leadOutLBA: UInt64) -> [UInt8] {
        let (m, s, f) = msfComponents(leadOutLBA)
        var d: [UInt8] = [0, 0, 1, 1]
        d += [1, adrControl, 0, 0xA0, 0, 0, 0, 0, 1, 0x00, 0]
        d += [1, adrControl, 0, 0xA1, 0, 0, 0, 0, 1, 0, 0]
        d += [1, adrControl, 0, 0xA2, 0, 0, 0, 0, m, s, f]
        d += [1, adrControl, 0, 0x01, 0, 0, 0, 0, 0, 2, 0]
        d.put16(UInt16(d.count - 2), at: 0)
        return d
    }

    /// READ DISC INFORMATION, data type 000b (MMC-6 Table 319): 34 bytes of a finalized
    /// (complete) disc with one complete session and one track, unrestricted use, disc type 00h.
    /// Other data types (track / POW resources of writable media): 05/24/00.
    static func readDiscInformation(_ r: Request, _ core: inout DriveCore) throws(SenseError) -> Reply {
        if r.cdb[1] & 0x07 != 0 { throw .invalidField(byte: 1, bit: 2) }
        var d = [UInt8](repeating: 0, count: 34)
        d.put16(32, at: 0)        // disc information length
        d[2] = 0x0E               // not erasable; last session complete (11b); disc complete (10b)
        d[3] = 1                  // number of first track on disc
        d[4] = 1                  // number of sessions (LSB)
        d[5] = 1                  // first track number in last session (LSB)
        d[6] = 1                  // last track number in last session (LSB)
        d[7] = 0x20               // URU: unrestricted use
        d[8] = 0x00               // disc type: CD-DA or CD-ROM (also what a DVD reports)
        d.put32(0xFFFF_FFFF, at: 16)   // last session lead-in start: none (disc complete)
        d.put32(0xFFFF_FFFF, at: 20)   // last possible lead-out start: none
        return .bytes(d.truncated(to: Int(r.cdb.u16(7))))
    }
}
