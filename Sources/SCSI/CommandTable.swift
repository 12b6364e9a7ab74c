/// What a handler sees of the command.
struct Request: Sendable {
    let cdb: CDB
    let initiator: InitiatorID
    /// The data-out buffer (MODE SELECT's parameter list); empty for other commands.
    let dataOut: [UInt8]
    let device: DeviceModel
}

/// What a handler produces on success.
enum Reply: Sendable {
    case none
    case bytes([UInt8])
    /// A READ: the range to serve; the source is validated after the lock is released.
    case read(BlockRange)
}

/// A command handler: runs with the drive lock held, pure (no I/O, no callbacks).
typealias Handler = @Sendable (Request, inout DriveCore) throws(SenseError) -> Reply

/// One supported command (an opcode, or an opcode plus service action).
struct Command: Sendable {
    let opcode: UInt8
    /// The service action (byte 1, bits 4-0) for service-action opcodes (9Eh, A3h).
    let serviceAction: UInt8?
    let name: String
    /// CDB length; a shorter CDB is refused with 05/24/00.
    let length: Int
    /// CDB usage data for REPORT SUPPORTED OPERATION CODES (SPC-4 6.35.3): a bit set for every
    /// CDB bit the device server evaluates. `usage[0]` is the opcode.
    let usage: [UInt8]
    /// Fails 02/3A/0x without a medium (after the unit attention check).
    let needsMedium: Bool
    /// Runs while a unit attention is pending, leaving it pending: INQUIRY, REPORT LUNS and
    /// REQUEST SENSE (SPC-4 5.14; REQUEST SENSE reports and clears it), GET CONFIGURATION and
    /// GET EVENT STATUS NOTIFICATION (MMC-6 4.1.6.1, so that a host can poll for media events).
    let passesAttention: Bool
    let handler: Handler

    init(_ opcode: UInt8, sa: UInt8? = nil, _ name: String, usage: [UInt8], needsMedium: Bool,
         passesAttention: Bool = false, _ handler: @escaping Handler) {
        precondition(usage.first == opcode, "usage data must start with the opcode")
        self.opcode = opcode
        self.serviceAction = sa
        self.name = name
        self.length = usage.count
        self.usage = usage
        self.needsMedium = needsMedium
        self.passesAttention = passesAttention
        self.handler = handler
    }
}

/// The opcode -> handler table.
///
/// Each command family lives in its own file and contributes its `Command`s here.
enum CommandTable {
    /// Every supported command, in ascending opcode / service action order.
    static let all: [Command] = {
        let list = PrimaryCommands.commands + InquiryCommands.commands + ModeCommands.commands
            + ReadCommands.commands + TOCCommands.commands + ConfigurationCommands.commands
            + EventCommands.commands + MediumControlCommands.commands + WriteProtectedCommands.commands
        return list.sorted { ($0.opcode, $0.serviceAction ?? 0) < ($1.opcode, $1.serviceAction ?? 0) }
    }()

    /// Indexed by opcode: the commands with that opcode (several for service-action opcodes).
    static let byOpcode: [[Command]] = {
        var table = [[Command]](repeating: [], count: 256)
        for c in all { table[Int(c.opcode)].append(c) }
        return table
    }()

    /// The command for `cdb`, or the sense to report: 05/20/00 for an unknown opcode, 05/24/00
    /// (pointing at the service action field) for an unknown service action.
    static func lookup(_ cdb: CDB) throws(SenseError) -> Command {
        let candidates = byOpcode[Int(cdb.opcode)]
        guard let first = candidates.first else { throw SenseError(.invalidOpcode) }
        if first.serviceAction == nil { return first }
        if cdb.count < 2 { throw SenseError.invalidField(byte: 0) }
        let sa = cdb.serviceAction
        guard let match = candidates.first(where: { $0.serviceAction == sa }) else {
            throw SenseError.invalidField(byte: 1, bit: 4)
        }
        return match
    }

    static func command(opcode: UInt8, serviceAction: UInt8?) -> Command? {
        byOpcode[Int(opcode)].first { $0.serviceAction == serviceAction }
    }
}

extension DriveCore {
    /// Runs one command with the lock held: the SPC-4/MMC-6 checks in order, then the handler.
    ///
    /// Order: an empty CDB -> 05/24/00; a pending unit attention (unless the opcode is exempt);
    /// unknown opcode / service action; CDB shorter than the opcode's length -> 05/24/00
    /// (field pointer: byte 0); medium required but absent -> 02/3A/0x; then the handler.
    mutating func run(_ cdb: CDB, from initiator: InitiatorID, dataOut: [UInt8], device: DeviceModel) -> Outcome {
        ensureAttached(initiator)
        let descriptor = nexus[initiator]?.descriptorSense ?? false
        func fail(_ e: SenseError) -> Outcome {
            .done(.checkCondition(e.code, field: e.field, descriptorFormat: descriptor))
        }
        guard cdb.count > 0 else { return fail(.invalidField(byte: 0)) }
        // An unknown opcode reports a pending unit attention first, like any other command.
        let found = Result { () throws(SenseError) in try CommandTable.lookup(cdb) }
        if (try? found.get())?.passesAttention != true, let ua = takeAttention(initiator) {
            return fail(SenseError(ua))
        }
        let command: Command
        do { command = try found.get() } catch { return fail(error) }
        if cdb.count < command.length { return fail(.invalidField(byte: 0)) }
        if command.needsMedium && medium == nil { return fail(SenseError(notPresentSense)) }
        let request = Request(cdb: cdb, initiator: initiator, dataOut: dataOut, device: device)
        do {
            switch try command.handler(request, &self) {
            case .none: return .done(.good())
            case .bytes(let b): return .done(.good(b.isEmpty ? .none : .bytes(b)))
            case .read(let range): return .read(range, descriptorSense: descriptor)
            }
        } catch {
            return fail(error)
        }
    }
}

/// The result of `DriveCore.run`: finished, or a READ still to validate outside the lock.
enum Outcome: Sendable {
    case done(CommandResult)
    case read(BlockRange, descriptorSense: Bool)
}
