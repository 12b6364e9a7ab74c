import Foundation
import NIOCore
import SCSI
import Synchronization
@testable import ISCSI

/// A generated disc: byte i is a function of i, so every read can be checked.
final class PatternSource: BlockSource {
    let byteCount: UInt64
    var fileDescriptor: Int32? { nil }
    init(bytes: UInt64) { byteCount = bytes }
    static func byte(_ i: UInt64) -> UInt8 { UInt8(truncatingIfNeeded: (i &* 2654435761) >> 13) }
    func validate() throws(MediumError) {}
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(MediumError) -> Int {
        let n = Int(min(UInt64(buffer.count), byteCount - min(offset, byteCount)))
        for i in 0..<n { buffer[i] = PatternSource.byte(offset + UInt64(i)) }
        return n
    }
}

/// A file read with pread (for the byte-exact QEMU comparison).
final class FileSource: BlockSource {
    let fd: Int32
    let byteCount: UInt64
    var fileDescriptor: Int32? { fd }
    init(path: String) {
        fd = open(path, O_RDONLY)
        var st = stat()
        fstat(fd, &st)
        byteCount = UInt64(st.st_size)
    }
    deinit { close(fd) }
    func validate() throws(MediumError) {}
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(MediumError) -> Int {
        let n = pread(fd, buffer.baseAddress, buffer.count, off_t(offset))
        if n < 0 { throw MediumError(reason: "pread failed") }
        return n
    }
}

/// Targets, their allowed initiators and policies, and drives, all changeable by the test.
final class TestProvider: ISCSIProvider {
    struct Target {
        var allowed: Set<String>
        var policy: LoginPolicy
        var drives: [UInt64: OpticalDrive]
    }
    let targets = Mutex<[String: Target]>([:])
    let sessions = Mutex<[String: [String]]>([:])

    func add(_ name: String, allowed: Set<String>, policy: LoginPolicy = .open, drives: [UInt64: OpticalDrive]) {
        targets.withLock { $0[name] = Target(allowed: allowed, policy: policy, drives: drives) }
    }
    func discoverableTargets(initiator: String) -> [String] {
        targets.withLock { $0.filter { $0.value.allowed.contains(initiator) }.keys.sorted() }
    }
    func loginPolicy(target: String, initiator: String) -> LoginPolicy? {
        targets.withLock { t in t[target].flatMap { $0.allowed.contains(initiator) ? $0.policy : nil } }
    }
    func lun(_ lun: UInt64, of target: String) -> OpticalDrive? { targets.withLock { $0[target]?.drives[lun] } }
    func luns(of target: String) -> [UInt64] { targets.withLock { $0[target]?.drives.keys.sorted() ?? [] } }
    func sessionsChanged(target: String, initiators: [String]) { sessions.withLock { $0[target] = initiators } }
}

func makeDrive(bytes: UInt64 = 8 << 20, serial: String = "T1") -> OpticalDrive {
    let d = OpticalDrive(identity: DeviceIdentity(vendor: "VMEDIAFS", product: "Virtual DVD", revision: "1.0",
                                                  serial: serial, identifier: 42))
    try! d.insert(Medium(source: PatternSource(bytes: bytes)))
    return d
}

/// Open descriptors of this process.
func openDescriptors() -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
}

/// Runs a program; returns exit status and combined output.
@discardableResult
func runTool(_ path: String, _ args: [String], timeout: TimeInterval = 60) -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    p.standardInput = FileHandle.nullDevice
    do { try p.run() } catch { return (-1, "cannot run \(path): \(error)") }
    let data = Mutex(Data())
    let done = DispatchSemaphore(value: 0)
    let reader = Thread {
        data.withLock { $0 = pipe.fileHandleForReading.readDataToEndOfFile() }
        done.signal()
    }
    reader.start()
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < deadline { usleep(20_000) }
    if p.isRunning { p.terminate() }
    p.waitUntilExit()
    // All of the output, not what happened to be read by now (a child that kept the pipe
    // open past the exit gets a few more seconds).
    _ = done.wait(timeout: .now() + 5)
    return (p.terminationStatus, String(decoding: data.withLock { $0 }, as: UTF8.self))
}

func tool(_ name: String) -> String? {
    for dir in ["/usr/bin", "/usr/local/bin", "/bin"] where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
        return "\(dir)/\(name)"
    }
    return nil
}
