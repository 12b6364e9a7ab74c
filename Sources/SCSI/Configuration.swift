/// GET CONFIGURATION (46h, MMC-6 6.6): the feature header and the features of a read-only
/// CD/DVD drive. "Current" bits follow the loaded medium.
enum ConfigurationCommands {
    static let commands: [Command] = [
        Command(0x46, "GET CONFIGURATION", usage: [0x46, 0x03, 0xFF, 0xFF, 0, 0, 0, 0xFF, 0xFF, 0],
                needsMedium: false, passesAttention: true, getConfiguration),
    ]

    /// One feature descriptor (MMC-6 Table 87): code, version / persistent / current, data.
    struct Feature {
        let code: UInt16
        let version: UInt8
        let persistent: Bool
        let current: Bool
        let data: [UInt8]

        var bytes: [UInt8] {
            var d: [UInt8] = []
            d.append16(code)
            d.append((version << 2) | (persistent ? 0x02 : 0) | (current ? 0x01 : 0))
            d.append(UInt8(data.count))
            return d + data
        }
    }

    /// The features, ascending by code, for a drive holding a medium of `profile` (nil: empty).
    /// - 0000h Profile List (5.3.1): DVD-ROM 0010h, CD-ROM 0008h, CurrentP for the loaded one.
    /// - 0001h Core (5.3.2), version 2: physical interface 00000001h (SCSI family), DBE=0, INQ2=0.
    /// - 0002h Morphing (5.3.3), version 1: polling only (ASYNC=0), no OCEvent.
    /// - 0003h Removable Medium (5.3.4), version 0: tray (001b), Eject=1, Pvnt Jmpr=1 (no
    ///   jumper), Lock=1.
    /// - 0010h Random Readable (5.3.5): 2048-byte blocks, Blocking 1 (CD) or 16 (DVD), PP=1.
    /// - 001Eh CD Read (5.3.10), version 2: no CD-Text, C2, DAP. Current with a CD.
    /// - 001Fh DVD Read (5.3.11), version 1: no MULTI110, DUAL-R. Current with a DVD.
    static func features(_ profile: MediumProfile?) -> [Feature] {
        let present = profile != nil
        var profiles: [UInt8] = []
        for p in [MediumProfile.dvdROM, .cdROM] {
            profiles.append16(p.rawValue)
            profiles += [profile == p ? 0x01 : 0x00, 0x00]
        }
        var core: [UInt8] = []
        core.append32(0x0000_0001)
        core += [0, 0, 0, 0]
        var random: [UInt8] = []
        random.append32(UInt32(Medium.blockSize))
        random.append16(profile?.blocking ?? 1)
        random += [0x01, 0x00]
        return [
            Feature(code: 0x0000, version: 0, persistent: true, current: true, data: profiles),
            Feature(code: 0x0001, version: 2, persistent: true, current: true, data: core),
            Feature(code: 0x0002, version: 1, persistent: true, current: true, data: [0, 0, 0, 0]),
            Feature(code: 0x0003, version: 0, persistent: true, current: true, data: [0x2D, 0, 0, 0]),
            Feature(code: 0x0010, version: 0, persistent: false, current: present, data: random),
            Feature(code: 0x001E, version: 2, persistent: false, current: profile == .cdROM, data: [0, 0, 0, 0]),
            Feature(code: 0x001F, version: 1, persistent: false, current: profile == .dvdROM, data: [0, 0, 0, 0]),
        ]
    }

    /// RT 00b: every feature from STARTING FEATURE NUMBER; 01b: the current ones from it; 10b:
    /// that one feature (only the header if unsupported); 11b: 05/24/00. The header's DATA LENGTH
    /// counts everything selected, the transfer is cut to the allocation length.
    static func getConfiguration(_ r: Request, _ core: inout DriveCore) throws(SenseError) -> Reply {
        let rt = r.cdb[1] & 0x03
        if rt == 3 { throw .invalidField(byte: 1, bit: 1) }
        let start = r.cdb.u16(2)
        let allocation = Int(r.cdb.u16(7))
        let profile = core.medium?.profile
        let selected = features(profile).filter { f in
            switch rt {
            case 0: return f.code >= start
            case 1: return f.code >= start && f.current
            default: return f.code == start
            }
        }
        var d: [UInt8] = [0, 0, 0, 0, 0, 0]
        d.append16(profile?.rawValue ?? 0)
        for f in selected { d += f.bytes }
        d.put32(UInt32(d.count - 4), at: 0)
        return .bytes(d.truncated(to: allocation))
    }
}
