// libFuzzer harness: CDBs through the MMC emulator (Sources/SCSI), with host-side media
// changes and several I_T nexuses, compiled into the SCSI module itself (fuzz/build.sh).
//
// Input: one setup byte, then records `[kind, length, length bytes]` until the input ends.
//   setup bit 0: a medium is loaded before the first record; bits 1-2: which medium (see
//   `media`); bit 3: the first initiator starts with a power-on unit attention.
//   kind 0x00-0xEF: a CDB (the record's bytes, any length) from initiator `kind & 0x0F`
//   (modulo the attached ones); with bit 0x20 a data-out buffer follows as `[length, bytes]`.
//   kind 0xF0-0xFF: a host operation, `kind & 0x0F`: 0 insert medium A, 1 insert medium B (a
//   swap when loaded), 2 eject, 3 cancel a pending eject, 4 attach another initiator, 5 detach
//   one, 6 set the reported LUN list, 7 make the backing fail validation (toggle).
// After every step: the drive's invariants hold, CHECK CONDITION carries sense and no data, GOOD
// carries none, data never exceeds the CDB's allocation length, and READ data materialises.

import Synchronization

/// An in-memory medium; `failing` makes `validate()` throw, as a changed backing image does.
final class FuzzSource: BlockSource {
    let bytes: [UInt8]
    let declaredSize: UInt64
    let failing = Atomic<Bool>(false)
    var byteCount: UInt64 { declaredSize }
    var fileDescriptor: Int32? { nil }

    init(bytes: [UInt8], declaredSize: UInt64? = nil) {
        self.bytes = bytes
        self.declaredSize = declaredSize ?? UInt64(bytes.count)
    }

    func validate() throws(MediumError) {
        if failing.load(ordering: .relaxed) { throw MediumError(reason: "backing changed") }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(MediumError) -> Int {
        try validate()
        guard offset < declaredSize else { return 0 }
        let n = Int(min(UInt64(buffer.count), declaredSize - offset))
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        if offset < UInt64(bytes.count) {
            let real = min(n, bytes.count - Int(offset))
            bytes.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + Int(offset), byteCount: real) }
        }
        return n
    }
}

/// Calls back into the drive from every callback: the drive's lock must not be held.
final class FuzzDelegate: OpticalDriveDelegate {
    func opticalDrive(_ drive: OpticalDrive, didEject medium: Medium, cause: EjectCause) {
        precondition(!drive.state.mediumPresent, "didEject with a medium still present")
    }
    func opticalDrive(_ drive: OpticalDrive, lockChanged locked: Bool, by initiator: InitiatorID) {
        _ = drive.state
    }
}

let delegate = FuzzDelegate()
let identity = DeviceIdentity(vendor: "VMEDIAFS", product: "Virtual DVD-ROM", revision: "1.0",
                              serial: "fuzz-vtopt0", identifier: 0x0123_4567_89AB_CDEF)

/// Media to load: 3.5 blocks; 1 block; an empty file; a DVD-sized one (sparse: reads zeros).
let pattern = (0..<(2048 * 3 + 1000)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 / 2048) }
let oneBlock = Array(pattern.prefix(2048))

func media(_ choice: Int) -> [FuzzSource] {
    switch choice {
    case 0: return [FuzzSource(bytes: pattern), FuzzSource(bytes: oneBlock)]
    case 1: return [FuzzSource(bytes: oneBlock), FuzzSource(bytes: pattern)]
    case 2: return [FuzzSource(bytes: []), FuzzSource(bytes: pattern)]
    default: return [FuzzSource(bytes: pattern, declaredSize: 8 << 30), FuzzSource(bytes: pattern)]
    }
}

/// The allocation length of the CDBs whose data-in it bounds (SPC-4, MMC-6), or nil.
func allocationLength(_ cdb: [UInt8]) -> Int? {
    func be(_ at: Int, _ n: Int) -> Int? {
        guard cdb.count >= at + n else { return nil }
        return cdb[at..<(at + n)].reduce(0) { $0 << 8 | Int($1) }
    }
    switch cdb.first {
    case 0x12: return be(3, 2)                          // INQUIRY
    case 0x03, 0x1A: return be(4, 1)                    // REQUEST SENSE, MODE SENSE(6)
    case 0x5A, 0x43, 0x46, 0x4A, 0x51, 0x52, 0x5C: return be(7, 2)
    case 0xBD: return be(8, 2)                          // MECHANISM STATUS
    case 0xA0, 0xA3: return be(6, 4)                    // REPORT LUNS, REPORT SUPPORTED OPCODES
    case 0x9E: return cdb.count > 1 && cdb[1] & 0x1F == 0x10 ? be(10, 4) : nil  // READ CAPACITY(16)
    default: return nil
    }
}

func check(_ result: CommandResult, cdb: [UInt8]) {
    switch result.status {
    case .checkCondition:
        precondition(result.sense != nil && !result.senseBytes.isEmpty, "CHECK CONDITION without sense")
        if case .none = result.data {} else { preconditionFailure("CHECK CONDITION with data") }
    case .good:
        precondition(result.sense == nil && result.senseBytes.isEmpty, "GOOD with sense")
    default:
        break
    }
    if let limit = allocationLength(cdb) {
        precondition(result.data.count <= limit, "opcode \(cdb[0]): \(result.data.count) bytes for allocation length \(limit)")
    }
    if case .blocks(let range) = result.data, range.count <= 1 << 20 {
        if let bytes = try? range.bytes() { precondition(bytes.count == range.count, "a READ materialised short") }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCDBs(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let input = UnsafeBufferPointer(start: data, count: size)
    let setup = input[0]
    let sources = media(Int(setup >> 1) & 3)
    let drive = OpticalDrive(identity: identity, delegate: delegate)
    var initiators = [drive.attach(reportPowerOn: setup & 8 != 0)]
    if setup & 1 != 0 { try? drive.insert(Medium(source: sources[0])) }

    var at = 1
    var steps = 0
    func take(_ n: Int) -> [UInt8] {
        let end = min(size, at + n)
        defer { at = end }
        return Array(input[at..<end])
    }
    while at + 2 <= size, steps < 512 {
        steps += 1
        let kind = input[at]
        let length = Int(input[at + 1])
        at += 2
        let bytes = take(length)
        if kind >= 0xF0 {
            let arg = Int(bytes.first ?? 0)
            switch kind & 0x0F {
            case 0: try? drive.insert(Medium(source: sources[0]))
            case 1: try? drive.insert(Medium(source: sources[1]))
            case 2: _ = try? drive.eject()
            case 3: drive.cancelPendingEject()
            case 4: if initiators.count < 8 { initiators.append(drive.attach(reportPowerOn: arg & 1 != 0)) }
            case 5: drive.detach(initiators[arg % initiators.count])
            case 6: drive.setReportedLUNs(arg == 0 ? nil : (0..<UInt64(arg % 9)).map { $0 * 3 })
            case 7: for s in sources { s.failing.store(!s.failing.load(ordering: .relaxed), ordering: .relaxed) }
            default: _ = drive.state
            }
        } else {
            let who = initiators[Int(kind & 0x0F) % initiators.count]
            var dataOut: [UInt8] = []
            if kind & 0x20 != 0, at < size {
                let n = Int(input[at])
                at += 1
                dataOut = take(n)
            }
            check(drive.execute(bytes, from: who, dataOut: dataOut), cdb: bytes)
        }
        if let broken = drive.invariantViolation() { preconditionFailure("invariant broken: \(broken)") }
    }
    // The hot path (no CDB array) must agree with the plain one.
    let who = initiators[0]
    let lba = UInt64(input[size - 1] % 8)
    let fast = drive.read(lba: lba, blocks: 1, from: who)
    check(fast, cdb: [0xA8])
    if drive.state.mediumPresent, case .blocks = fast.data {
        precondition((try? drive.readBytes(lba: lba, blocks: 1, from: who).count) ?? 2048 == 2048, "readBytes of one block")
    }
    return 0
}
