/// The tray and the lock: START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL, MECHANISM STATUS,
/// SET CD SPEED (MMC-6 6.39, 6.19, 6.11, 6.37).
enum MediumControlCommands {
    static let commands: [Command] = [
        Command(0x1B, "START STOP UNIT", usage: [0x1B, 0x01, 0, 0x0F, 0xF3, 0], needsMedium: false, startStopUnit),
        Command(0x1E, "PREVENT ALLOW MEDIUM REMOVAL", usage: [0x1E, 0, 0, 0, 0x03, 0], needsMedium: false, preventAllow),
        Command(0xBB, "SET CD SPEED", usage: [0xBB, 0x03, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0],
                needsMedium: false) { _, _ throws(SenseError) in .none },
        Command(0xBD, "MECHANISM STATUS", usage: [0xBD, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0],
                needsMedium: false, mechanismStatus),
    ]

    /// START STOP UNIT (MMC-6 6.39, Table 605):
    /// - POWER CONDITION != 0: GOOD, nothing happens (no power states; LoEj/Start are ignored
    ///   then, as SBC-3 5.25 says);
    /// - LoEj=0: spin up / down, a no-op: GOOD (also without a medium);
    /// - LoEj=1 Start=0: eject; 05/53/02 while any initiator prevents removal; otherwise the
    ///   medium leaves for real (delegate `didEject(.guest)`), or an empty tray just opens;
    /// - LoEj=1 Start=1: close the tray.
    /// IMMED is accepted and changes nothing: every operation completes before the status.
    static func startStopUnit(_ r: Request, _ core: inout DriveCore) throws(SenseError) -> Reply {
        let control = r.cdb[4]
        if control >> 4 != 0 { return .none }
        guard control & 0x02 != 0 else { return .none }
        if control & 0x01 != 0 {
            core.guestLoad()
        } else {
            try core.guestEject(by: r.initiator)
        }
        return .none
    }

    /// PREVENT ALLOW MEDIUM REMOVAL (MMC-6 6.19): bit 0 of the PREVENT field prevents (1) or
    /// allows (0) removal for this initiator; the drive is locked while any initiator prevents.
    /// The persistent bit (bit 1) is ignored. Allowed without a medium.
    static func preventAllow(_ r: Request, _ core: inout DriveCore) throws(SenseError) -> Reply {
        core.setPrevent(r.cdb[4] & 0x01 != 0, by: r.initiator)
        return .none
    }

    /// MECHANISM STATUS (MMC-6 6.11, Table 323): the 8-byte header only: no fault, no changer,
    /// mechanism idle, Door open = tray open, no slot tables.
    static func mechanismStatus(_ r: Request, _ core: inout DriveCore) throws(SenseError) -> Reply {
        let d: [UInt8] = [0x00, core.trayOpen ? 0x10 : 0x00, 0, 0, 0, 0x00, 0x00, 0x00]
        return .bytes(d.truncated(to: Int(r.cdb.u16(8))))
    }
}
