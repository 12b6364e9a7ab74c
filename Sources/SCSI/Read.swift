/// Block commands (SBC-3, as MMC-6 adopts them): READ(6/10/12/16), VERIFY(10),
/// READ CAPACITY(10) and (16).
enum ReadCommands {
    static let commands: [Command] = [
        Command(0x08, "READ(6)", usage: [0x08, 0x1F, 0xFF, 0xFF, 0xFF, 0x00], needsMedium: true, read6),
        Command(0x25, "READ CAPACITY(10)", usage: [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], needsMedium: true, readCapacity10),
        Command(0x28, "READ(10)", usage: [0x28, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0xFF, 0xFF, 0x00],
                needsMedium: true, read10),
        Command(0x2F, "VERIFY(10)", usage: [0x2F, 0xE6, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0xFF, 0xFF, 0x00],
                needsMedium: true, verify10),
        Command(0x88, "READ(16)", usage: [0x88, 0xE0] + [UInt8](repeating: 0xFF, count: 12) + [0x00, 0x00],
                needsMedium: true, read16),
        Command(0x9E, sa: 0x10, "READ CAPACITY(16)",
                usage: [0x9E, 0x1F] + [UInt8](repeating: 0, count: 8) + [0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00],
                needsMedium: true, readCapacity16),
        Command(0xA8, "READ(12)", usage: [0xA8, 0xE0] + [UInt8](repeating: 0xFF, count: 8) + [0x00, 0x00],
                needsMedium: true, read12),
    ]

    /// READ(6) (SBC-3 5.7): 21-bit LBA; a TRANSFER LENGTH of 0 means 256 blocks.
    static func read6(_ r: Request, _ core: inout DriveCore) throws(SenseError) -> Reply {
        let lba = UInt64(r.cdb.u24(1) & 0x1F_FFFF)
        let count = r.cdb[4] == 0 ? 256 : UInt64(r.cdb[4])
        return try serve(lba: lba, count: count, core)
    }

    /// READ(10) (SBC-3 5.8). RDPROTECT must be 0 (no protection information): else 05/24/00.
    static func read10(_ r: Request, _ core: inout DriveCore) throws(SenseError) -> Reply {
        try checkProtect(r.cdb)
        return try serve(lba: UInt64(r.cdb.u32(2)), count: UInt64(r.cdb.u16(7)), core)
    }

    /// READ(12) (SBC-3 5.9; MMC-6 6.23).
    static func read12(_ r: Request, _ core: inout DriveCore) throws(SenseError) -> Reply {
        try checkProtect(r.cdb)
        return try serve(lba: UInt64(r.cdb.u32(2)), count: UInt64(r.cdb.u32(6)), core)
    }

    /// READ(16) (SBC-3 5.10).
    static func read16(_ r: Request, _ core: inout DriveCore) throws(SenseError) -> Reply {
        try checkProtect(r.cdb)
        return try serve(lba: r.cdb.u64(2), count: UInt64(r.cdb.u32(10)), core)
    }

    /// VERIFY(10) (SBC-3 5.33) with BYTCHK=0: checks the range only (the medium is an image;
    /// there is nothing to verify). BYTCHK != 0 (compare with data-out) is not supported: 05/24/00.
    static func verify10(_ r: Request, _ core: inout DriveCore) throws(SenseError) -> Reply {
        try checkProtect(r.cdb)
        if r.cdb.bits(1, shift: 1, width: 2) != 0 { throw .invalidField(byte: 1, bit: 2) }
        _ = try range(lba: UInt64(r.cdb.u32(2)), count: UInt64(r.cdb.u16(7)), core)
        return .none
    }

    static func checkProtect(_ cdb: CDB) throws(SenseError) {
        if cdb.bits(1, shift: 5, width: 3) != 0 { throw .invalidField(byte: 1, bit: 7) }
    }

    /// Checks `lba`/`count` against the medium: 05/21/00 if the first block or any later one lies
    /// past the last LBA (SBC-3 4.5). A zero count is valid up to LBA = capacity.
    static func range(lba: UInt64, count: UInt64, _ core: DriveCore) throws(SenseError) -> Medium {
        guard let medium = core.medium else { throw SenseError(core.notPresentSense) }
        let capacity = medium.blockCount
        guard lba <= capacity, count <= capacity - lba else { throw SenseError(.lbaOutOfRange) }
        return medium
    }

    /// The READ data path: validates the range under the lock and hands back where the bytes are.
    static func serve(lba: UInt64, count: UInt64, _ core: DriveCore) throws(SenseError) -> Reply {
        let medium = try range(lba: lba, count: count, core)
        if count == 0 { return .none }                 // SBC-3: not an error, no data
        let offset = lba * 2048
        let total = count * 2048
        let available = medium.byteCount > offset ? medium.byteCount - offset : 0
        let length = min(total, available)
        return .read(BlockRange(source: medium.source, offset: offset, length: Int(length),
                                zeroFill: Int(total - length), generation: core.generation))
    }

    /// READ CAPACITY(10) (SBC-3 5.15, MMC-6 6.22): last LBA and block length 2048. A capacity
    /// past 32 bits reports FFFFFFFFh (use READ CAPACITY(16)); an empty (0-byte) medium reports 0.
    /// The PMI bit and LBA field are ignored, as MMC-6 makes them obsolete.
    static func readCapacity10(_ r: Request, _ core: inout DriveCore) throws(SenseError) -> Reply {
        let blocks = core.medium?.blockCount ?? 0
        let last = blocks == 0 ? 0 : min(blocks - 1, 0xFFFF_FFFF)
        var d: [UInt8] = []
        d.append32(UInt32(last))
        d.append32(UInt32(Medium.blockSize))
        return .bytes(d)
    }

    /// READ CAPACITY(16) (SBC-3 5.16): 32 bytes (Table 65), no protection, one logical block per
    /// physical block, no provisioning; cut to the allocation length (bytes 10-13).
    static func readCapacity16(_ r: Request, _ core: inout DriveCore) throws(SenseError) -> Reply {
        let blocks = core.medium?.blockCount ?? 0
        var d: [UInt8] = []
        d.append64(blocks == 0 ? 0 : blocks - 1)
        d.append32(UInt32(Medium.blockSize))
        d += [UInt8](repeating: 0, count: 20)
        return .bytes(d.truncated(to: Int(r.cdb.u32(10))))
    }
}
