/// GET EVENT STATUS NOTIFICATION (4Ah, MMC-6 6.7), polled mode, media class only.
///
/// Each initiator has its own queue of media events (`Nexus.events`): a host insert posts
/// NewMedia (2h), every removal (host, guest or deferred eject) MediaRemoval (3h), a host eject
/// refused by a lock EjectRequest (1h). Each is reported once, oldest first; with none pending
/// the answer is NoChg (0h) with the current media status.
enum EventCommands {
    static let commands: [Command] = [
        Command(0x4A, "GET EVENT STATUS NOTIFICATION", usage: [0x4A, 0x01, 0, 0, 0xFF, 0, 0, 0xFF, 0xFF, 0],
                needsMedium: false, passesAttention: true, getEventStatus),
    ]

    /// The only class we report: Media (bit 4 of NOTIFICATION CLASS REQUEST / SUPPORTED EVENT
    /// CLASSES, class code 4, MMC-6 Tables 161-163).
    static let mediaClassBit: UInt8 = 0x10
    static let mediaClass: UInt8 = 4

    /// Polled=0 (asynchronous) is not supported: 05/24/00 pointing at byte 1 bit 0.
    /// Media class requested: an 8-byte answer (header Table 162 + media event Table 165), the
    /// event consumed only when the allocation length lets the descriptor through, so a 4-byte
    /// header probe loses nothing. Media class not requested: the 4-byte header with NEA=1.
    static func getEventStatus(_ r: Request, _ core: inout DriveCore) throws(SenseError) -> Reply {
        if !r.cdb.bit(1, 0) { throw .invalidField(byte: 1, bit: 0) }
        let requested = r.cdb[4]
        let allocation = Int(r.cdb.u16(7))
        guard requested & mediaClassBit != 0 else {
            return .bytes([0x00, 0x02, 0x80, mediaClassBit].truncated(to: allocation))
        }
        let event = allocation >= 8 ? core.takeEvent(r.initiator) : .noChange
        let status: UInt8 = (core.medium != nil ? 0x02 : 0x00) | (core.trayOpen ? 0x01 : 0x00)
        let d: [UInt8] = [0x00, 0x06, mediaClass, mediaClassBit, event.rawValue, status, 0x00, 0x00]
        return .bytes(d.truncated(to: allocation))
    }
}
