// iscsi-demo: serves one ISO (or a generated in-memory disc) as LUN 0 of one target, so that real
// initiators (libiscsi's tools, QEMU, the Linux initiator) can be tried against the ISCSI module.
//
//   iscsi-demo [--host 127.0.0.1] [--port 3260] [--target iqn.2026-11.io.vmediafs:demo]
//              [--initiator IQN]... [--chap user:secret] [--empty] [ISO]
//
// Without --initiator any initiator may log in. Stops on SIGINT/SIGTERM.
import Foundation
import ISCSI
import SCSI
import Synchronization

/// A file read with pread.
final class FileSource: BlockSource {
    let fd: Int32
    let byteCount: UInt64
    var fileDescriptor: Int32? { fd }
    init(path: String) throws {
        fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw NSError(domain: "iscsi-demo", code: Int(errno)) }
        var st = stat()
        fstat(fd, &st)
        byteCount = UInt64(st.st_size)
    }
    func validate() throws(MediumError) {}
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(MediumError) -> Int {
        let n = pread(fd, buffer.baseAddress, buffer.count, off_t(offset))
        if n < 0 { throw MediumError(reason: "pread: errno \(errno)") }
        return n
    }
}

/// A generated disc: byte i is a function of i, so any read can be checked.
final class PatternSource: BlockSource {
    let byteCount: UInt64
    var fileDescriptor: Int32? { nil }
    init(bytes: UInt64) { byteCount = bytes }
    func validate() throws(MediumError) {}
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(MediumError) -> Int {
        let n = Int(min(UInt64(buffer.count), byteCount - min(offset, byteCount)))
        for i in 0..<n { buffer[i] = UInt8(truncatingIfNeeded: ((offset + UInt64(i)) &* 2654435761) >> 13) }
        return n
    }
}

final class DemoProvider: ISCSIProvider {
    let target: String
    let allowed: [String]
    let policy: LoginPolicy
    let drive: OpticalDrive
    init(target: String, allowed: [String], policy: LoginPolicy, drive: OpticalDrive) {
        self.target = target; self.allowed = allowed; self.policy = policy; self.drive = drive
    }
    func mayLogIn(_ initiator: String) -> Bool { allowed.isEmpty || allowed.contains(initiator) }
    func discoverableTargets(initiator: String) -> [String] { mayLogIn(initiator) ? [target] : [] }
    func loginPolicy(target: String, initiator: String) -> LoginPolicy? {
        target == self.target && mayLogIn(initiator) ? policy : nil
    }
    func lun(_ lun: UInt64, of target: String) -> OpticalDrive? { target == self.target && lun == 0 ? drive : nil }
    func luns(of target: String) -> [UInt64] { target == self.target ? [0] : [] }
    func sessionsChanged(target: String, initiators: [String]) {
        FileHandle.standardError.write("sessions of \(target): \(initiators)\n".data(using: .utf8)!)
    }
}

var host = "127.0.0.1", port = 3260, target = "iqn.2026-11.io.vmediafs:demo"
var allowed: [String] = [], policy = LoginPolicy.open, image: String?, empty = false
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--host": host = args.popFirst() ?? host
    case "--port": port = Int(args.popFirst() ?? "") ?? port
    case "--target": target = args.popFirst() ?? target
    case "--initiator": allowed.append(args.popFirst() ?? "")
    case "--chap":
        let v = (args.popFirst() ?? "").split(separator: ":", maxSplits: 1).map(String.init)
        policy = .chap(user: v.first ?? "", secret: v.count > 1 ? v[1] : "")
    case "--empty": empty = true
    default: image = a
    }
}

let drive = OpticalDrive(identity: DeviceIdentity(vendor: "VMEDIAFS", product: "Virtual DVD", revision: "1.0",
                                                  serial: "DEMO0001", identifier: 0x1234_5678))
if !empty {
    let source: any BlockSource = try image.map { try FileSource(path: $0) } ?? PatternSource(bytes: 64 << 20)
    try drive.insert(Medium(source: source))
}
let provider = DemoProvider(target: target, allowed: allowed, policy: policy, drive: drive)
let server = ISCSIServer(provider: provider, host: host, port: port)
do { try server.start() } catch {
    FileHandle.standardError.write("iscsi-demo: \(error)\n".data(using: .utf8)!)
    exit(1)
}
FileHandle.standardOutput.write("iscsi-demo: serving \(target) LUN 0 on \(host):\(server.boundPort)\n".data(using: .utf8)!)

signal(SIGINT, SIG_IGN); signal(SIGTERM, SIG_IGN)
let done = DispatchSemaphore(value: 0)
let sources = [SIGINT, SIGTERM].map { sig -> DispatchSourceSignal in
    let s = DispatchSource.makeSignalSource(signal: sig)
    s.setEventHandler { done.signal() }
    s.resume()
    return s
}
done.wait()
server.stop()
