import XCTest
import Synchronization
@testable import SCSI

/// An in-memory medium. Byte i of a pattern medium is `pattern(i)`, so any read can be checked
/// without keeping the bytes; `tag` goes into every byte's high bits to tell media apart.
final class MemorySource: BlockSource {
    let bytes: [UInt8]
    let failure = Mutex<MediumError?>(nil)
    var byteCount: UInt64 { UInt64(bytes.count) }
    var fileDescriptor: Int32? { nil }

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// `count` bytes where byte i is (i / 2048 + tag * 31 + i) & 0xFF: differs per block and per tag.
    convenience init(count: Int, tag: Int = 0) {
        self.init((0..<count).map { MemorySource.pattern($0, tag: tag) })
    }

    static func pattern(_ i: Int, tag: Int) -> UInt8 { UInt8(truncatingIfNeeded: i / 2048 + tag * 31 + i) }

    func fail(with error: MediumError?) { failure.withLock { $0 = error } }

    func validate() throws(MediumError) {
        if let e = failure.withLock({ $0 }) { throw e }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(MediumError) -> Int {
        try validate()
        guard offset < byteCount else { return 0 }
        let n = min(buffer.count, bytes.count - Int(offset))
        bytes.withUnsafeBytes { src in
            buffer.baseAddress!.copyMemory(from: src.baseAddress! + Int(offset), byteCount: n)
        }
        return n
    }
}

/// A source whose `byteCount` is huge, for capacity / MSF / overflow tests; reads give zeros.
final class SparseSource: BlockSource {
    let byteCount: UInt64
    var fileDescriptor: Int32? { 7 }
    init(byteCount: UInt64) { self.byteCount = byteCount }
    func validate() throws(MediumError) {}
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(MediumError) -> Int {
        guard offset < byteCount else { return 0 }
        let n = Int(min(UInt64(buffer.count), byteCount - offset))
        UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n]).initializeMemory(as: UInt8.self, repeating: 0)
        return n
    }
}

/// Records delegate calls.
final class RecordingDelegate: OpticalDriveDelegate {
    enum Call: Equatable {
        case ejected(cause: EjectCause, generationAfter: UInt64)
        case lock(Bool, InitiatorID)
    }
    let calls = Mutex<[Call]>([])
    /// Called inside the callback to prove the drive's lock is not held.
    let probe = Mutex<(@Sendable (OpticalDrive) -> Void)?>(nil)

    func opticalDrive(_ drive: OpticalDrive, didEject medium: Medium, cause: EjectCause) {
        let gen = drive.state.generation   // would deadlock if the drive's lock were held
        calls.withLock { $0.append(.ejected(cause: cause, generationAfter: gen)) }
        probe.withLock { $0 }?(drive)
    }

    func opticalDrive(_ drive: OpticalDrive, lockChanged locked: Bool, by initiator: InitiatorID) {
        _ = drive.state
        calls.withLock { $0.append(.lock(locked, initiator)) }
    }

    var recorded: [Call] { calls.withLock { $0 } }
}

let testIdentity = DeviceIdentity(vendor: "VMEDIAFS", product: "Virtual DVD-ROM", revision: "1.0",
                                  serial: "guest1-vtopt0", identifier: 0x0123_4567_89AB_CDEF)

func makeDrive(lun: UInt64 = 0) -> OpticalDrive {
    OpticalDrive(identity: testIdentity, lun: lun)
}

/// 3 blocks and a half: the last block is short.
func smallMedium(tag: Int = 0) -> Medium {
    Medium(source: MemorySource(count: 2048 * 3 + 1000, tag: tag))
}

/// Fixed-format sense bytes (SPC-4 Table 48) for comparison.
func fixedSense(_ key: UInt8, _ asc: UInt8, _ ascq: UInt8, sks: [UInt8]? = nil) -> [UInt8] {
    var b: [UInt8] = [0x70, 0, key, 0, 0, 0, 0, 0x0A, 0, 0, 0, 0, asc, ascq, 0, 0, 0, 0]
    if let sks { b[15] = sks[0]; b[16] = sks[1]; b[17] = sks[2] }
    return b
}

extension CommandResult {
    var bytes: [UInt8] { (try? materializedData()) ?? [] }
}

func assertGood(_ r: CommandResult, _ expected: [UInt8]? = nil, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(r.status, .good, "sense \(String(describing: r.sense))", file: file, line: line)
    XCTAssertTrue(r.senseBytes.isEmpty, file: file, line: line)
    if let expected { XCTAssertEqual(r.bytes, expected, file: file, line: line) }
}

func assertCheck(_ r: CommandResult, _ code: SenseCode, field: FieldPointer? = nil,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(r.status, .checkCondition, file: file, line: line)
    XCTAssertEqual(r.sense, code, file: file, line: line)
    XCTAssertEqual(r.senseBytes, SenseData.fixed(code, field: field), file: file, line: line)
    if case .none = r.data {} else { XCTFail("data with CHECK CONDITION", file: file, line: line) }
}

/// A drive with `medium` loaded and one attached initiator whose insert attention is consumed.
func loadedDrive(_ medium: Medium = smallMedium()) -> (OpticalDrive, InitiatorID) {
    let drive = makeDrive()
    let i = drive.attach()
    try! drive.insert(medium)
    _ = drive.execute([0x00, 0, 0, 0, 0, 0], from: i)   // consume 06/28/00
    return (drive, i)
}

/// CDB builders.
enum CDBs {
    static let tur: [UInt8] = [0x00, 0, 0, 0, 0, 0]
    static func read10(_ lba: UInt32, _ count: UInt16) -> [UInt8] {
        [0x28, 0, UInt8(lba >> 24), UInt8((lba >> 16) & 0xFF), UInt8((lba >> 8) & 0xFF), UInt8(lba & 0xFF),
         0, UInt8(count >> 8), UInt8(count & 0xFF), 0]
    }
    static func read12(_ lba: UInt32, _ count: UInt32) -> [UInt8] {
        [0xA8, 0, UInt8(lba >> 24), UInt8((lba >> 16) & 0xFF), UInt8((lba >> 8) & 0xFF), UInt8(lba & 0xFF),
         UInt8(count >> 24), UInt8((count >> 16) & 0xFF), UInt8((count >> 8) & 0xFF), UInt8(count & 0xFF), 0, 0]
    }
    static func read16(_ lba: UInt64, _ count: UInt32) -> [UInt8] {
        var c: [UInt8] = [0x88, 0]
        for i in 0..<8 { c.append(UInt8(truncatingIfNeeded: lba >> UInt64(56 - 8 * i))) }
        for i in 0..<4 { c.append(UInt8(truncatingIfNeeded: count >> UInt32(24 - 8 * i))) }
        return c + [0, 0]
    }
    static let eject: [UInt8] = [0x1B, 0, 0, 0, 0x02, 0]
    static let load: [UInt8] = [0x1B, 0, 0, 0, 0x03, 0]
    static let prevent: [UInt8] = [0x1E, 0, 0, 0, 0x01, 0]
    static let allow: [UInt8] = [0x1E, 0, 0, 0, 0x00, 0]
    static func gesn(_ classes: UInt8 = 0x10, alloc: UInt16 = 8) -> [UInt8] {
        [0x4A, 0x01, 0, 0, classes, 0, 0, UInt8(alloc >> 8), UInt8(alloc & 0xFF), 0]
    }
    static func requestSense(desc: Bool = false, alloc: UInt8 = 252) -> [UInt8] {
        [0x03, desc ? 1 : 0, 0, 0, alloc, 0]
    }
}
