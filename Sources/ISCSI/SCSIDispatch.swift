import SCSI
import Synchronization

/// The I_T nexuses of one session: per LUN, the drive it was attached to and the id the drive
/// handed out (`OpticalDrive.attach(reportPowerOn: true)` on first use).
///
/// Threading rule: used from the thread pool (commands) and the event loop (close). Lock order:
/// this table's lock, then a drive's own lock (`attach`, `setReportedLUNs`); `detach` is always
/// called after this lock is released, because it may call the drive's delegate.
final class NexusTable: Sendable {
    private struct Entry { let drive: OpticalDrive; let id: InitiatorID }
    private struct State {
        var closed = false
        var entries: [UInt64: Entry] = [:]
    }
    private let state = Mutex(State())

    init() {}

    /// The nexus for `lun` on `drive`, attaching on first use (after telling the drive the
    /// target's LUN list, so that first list raises no unit attention). Nil once the session closed.
    func nexus(lun: UInt64, drive: OpticalDrive, luns: [UInt64]) -> InitiatorID? {
        var stale: Entry?
        let id = state.withLock { s -> InitiatorID? in
            if s.closed { return nil }
            if let e = s.entries[lun] {
                if e.drive === drive { return e.id }
                stale = e  // the drive at this LUN was replaced
            }
            drive.setReportedLUNs(luns)
            let id = drive.attach(reportPowerOn: true)
            s.entries[lun] = Entry(drive: drive, id: id)
            return id
        }
        if let stale { stale.drive.detach(stale.id) }
        return id
    }

    var isClosed: Bool { state.withLock { $0.closed } }

    /// A LUN reset for this nexus: the old nexus is lost (its lock released) and a new one
    /// starts with POWER ON / RESET unit attention.
    func reset(lun: UInt64) {
        let old = state.withLock { s -> Entry? in
            guard !s.closed, let e = s.entries[lun] else { return nil }
            s.entries[lun] = Entry(drive: e.drive, id: e.drive.attach(reportPowerOn: true))
            return e
        }
        if let old { old.drive.detach(old.id) }
    }

    var attachedLUNs: [UInt64] { state.withLock { Array($0.entries.keys) } }

    /// Closes the table and detaches every nexus (releasing the session's locks).
    func closeAndDetach() {
        let all = state.withLock { s -> [Entry] in
            s.closed = true
            defer { s.entries = [:] }
            return Array(s.entries.values)
        }
        for e in all { e.drive.detach(e.id) }
    }
}

/// One SCSI command as the pool runs it: everything it needs, all Sendable.
struct CommandRequest: Sendable {
    let target: String
    let lun: UInt64
    let cdb: [UInt8]
    let dataOut: [UInt8]
    /// Bytes of a READ to copy out in the same pool job (the whole transfer when it is small),
    /// saving a second trip to the pool.
    let prefetch: Int
    /// The initiator's Expected Data Transfer Length.
    let expected: Int
}

/// A command's result, and a READ's first bytes when they were read in the same job.
struct ExecutedCommand: Sendable {
    var result: CommandResult
    var prefetched: [UInt8]?
}

/// Runs commands against the provider's drives. Called on the thread pool (drives may read
/// files: `validate()` and the block source).
enum SCSIDispatch {
    /// Executes one command. Nil when the session closed meanwhile (nothing to answer).
    static func execute(_ r: CommandRequest, provider: any ISCSIProvider, nexus: NexusTable) -> ExecutedCommand? {
        guard let result = run(r, provider: provider, nexus: nexus) else { return nil }
        guard case .blocks(let range) = result.data, r.prefetch > 0, min(range.count, r.expected) <= r.prefetch else {
            return ExecutedCommand(result: result)
        }
        do throws(MediumError) {
            let bytes = try readChunk(range, from: 0, count: min(range.count, r.prefetch))
            return ExecutedCommand(result: result, prefetched: bytes)
        } catch {
            return ExecutedCommand(result: .checkCondition(error.sense))
        }
    }

    private static func run(_ r: CommandRequest, provider: any ISCSIProvider, nexus: NexusTable) -> CommandResult? {
        let (unit, luns) = provider.unit(r.lun, of: r.target)
        guard let drive = unit else {
            return AbsentLogicalUnit.execute(r.cdb, reportedLUNs: luns)
        }
        guard let id = nexus.nexus(lun: r.lun, drive: drive, luns: luns) else { return nil }
        drive.setReportedLUNs(luns)  // no-op unless the LUN set changed: then 06/3F/0E
        let result = drive.execute(r.cdb, from: id, dataOut: r.dataOut)
        if nexus.isClosed {  // the connection dropped while we ran: the command re-attached
            drive.detach(id)
            return nil
        }
        return result
    }

    /// `count` bytes of a READ's data starting `from` bytes into it (zeros past the source).
    static func readChunk(_ range: BlockRange, from: Int, count: Int) throws(MediumError) -> [UInt8] {
        let inSource = max(0, min(count, range.length - from))
        let sub = BlockRange(source: range.source, offset: range.offset + UInt64(min(from, range.length)),
                             length: inSource, zeroFill: count - inSource, generation: range.generation)
        return try sub.bytes()
    }
}

/// Builders for the PDUs that answer a SCSI command (RFC 7143 11.4, 11.7).
enum ResponseBuilder {
    /// Residual flags and count: underflow (U, 02h) when less than the expected length is sent,
    /// overflow (O, 04h) when the command had more.
    static func residual(produced: Int, expected: Int) -> (flags: UInt8, count: UInt32) {
        if produced < expected { return (0x02, UInt32(expected - produced)) }
        if produced > expected { return (0x04, UInt32(clamping: produced - expected)) }
        return (0, 0)
    }

    /// A SCSI Response. With sense, the data segment is the 2-byte SenseLength and the sense.
    static func scsiResponse(itt: UInt32, status: ScsiStatus, sense: [UInt8], produced: Int, expected: Int,
                             sn: SequenceNumbers) -> ISCSIPDU {
        let r = residual(produced: produced, expected: expected)
        var p = ISCSIPDU(opcode: .scsiResponse, flags: 0x80 | r.flags)
        p.bhs[2] = 0x00  // command completed at target
        p.bhs[3] = status.rawValue
        p.initiatorTaskTag = itt
        p.stamp(sn)
        p.setU32(r.count, at: 44)
        if !sense.isEmpty {
            p.data = [UInt8(sense.count >> 8), UInt8(sense.count & 0xFF)] + sense
        }
        return p
    }

    /// A Data-In PDU; with `status`, it carries the command's GOOD status (S bit) and residual.
    static func dataIn(itt: UInt32, lunField: UInt64, data: [UInt8], offset: Int, dataSN: UInt32,
                       final: Bool, status: (produced: Int, expected: Int)?, sn: SequenceNumbers) -> ISCSIPDU {
        var p = ISCSIPDU(opcode: .dataIn, flags: final ? 0x80 : 0)
        p.lunField = lunField
        p.initiatorTaskTag = itt
        p.setU32(ISCSIPDU.reservedTag, at: 20)
        p.stamp(sn)
        if let status {
            let r = residual(produced: status.produced, expected: status.expected)
            p.flags |= 0x01 | r.flags
            p.bhs[3] = ScsiStatus.good.rawValue
            p.setU32(r.count, at: 44)
        } else {
            p.setU32(0, at: 24)  // StatSN is reserved without the S bit
        }
        p.setU32(dataSN, at: 36)
        p.setU32(UInt32(offset), at: 40)
        p.data = data
        return p
    }
}
