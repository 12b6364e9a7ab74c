import Foundation
import NIOCore
import ISCSI

/// A minimal blocking iSCSI initiator over a POSIX socket, written from RFC 7143 for the tests:
/// login (with one-way CHAP), SCSI commands with Data-In / R2T / Data-Out, raw bytes for faults.
public final class MiniInitiator {
    public let fd: Int32
    public var cmdSN: UInt32 = 1
    public var itt: UInt32 = 1
    public var expStatSN: UInt32 = 0
    public var maxRecv = 8192
    let framing = FramingState()
    /// The digests this connection negotiated (header, data).
    public var digests: (header: Bool, data: Bool) { (framing.headerDigest, framing.dataDigest) }
    var pending = ByteBuffer()
    /// A random ISID per instance: two instances are two sessions, not a reinstatement.
    public private(set) var isid: [UInt8] = [0x80, 0, 0] + (0..<3).map { _ in UInt8.random(in: 0...255) }
    public func reuse(isid: [UInt8]) { self.isid = isid }

    public init?(port: Int, timeoutSeconds: Int = 5) {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if ok != 0 { Glibc.close(fd); return nil }
        framing.maxDataSegment = 16 << 20
    }

    deinit { Glibc.close(fd) }
    public func close() { shutdown(fd, Int32(SHUT_RDWR)) }

    public func sendRaw(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    public func send(_ pdu: ISCSIPDU) {
        var buf = ByteBuffer()
        PDUEncoder.write(pdu, to: &buf, headerDigest: framing.headerDigest, dataDigest: framing.dataDigest)
        sendRaw(Array(buf.readableBytesView))
    }

    /// The next PDU, or nil on timeout / close.
    public func receive() -> ISCSIPDU? {
        while true {
            if let pdu = try? PDUDecoder.parse(&pending, state: framing) {
                if pdu.opcode != .dataIn && pdu.opcode != .readyToTransfer && pdu.u32(at: 24) != 0 || pdu.opcode == .scsiResponse {
                    expStatSN = pdu.u32(at: 24) &+ 1
                }
                return pdu
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return nil }
            pending.writeBytes(chunk[0..<n])
        }
    }

    /// True when the peer closed the connection (EOF) within the timeout.
    public func waitForClose() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return true }
            if n < 0 { return errno == ECONNRESET }
        }
    }

    public func loginRequest(csg: UInt8, nsg: UInt8, transit: Bool, _ keys: [(key: String, value: String)]) -> ISCSIPDU? {
        var p = ISCSIPDU(opcode: .loginRequest, immediate: true,
                         flags: (transit ? 0x80 : 0) | csg << 2 | (transit ? nsg : 0))
        p.bhs.replaceSubrange(8..<14, with: isid)
        p.initiatorTaskTag = 0
        p.setU32(cmdSN, at: 24)
        p.setU32(expStatSN, at: 28)
        p.data = TextKeys.encode(keys)
        send(p)
        return receive()
    }

    public static func status(_ p: ISCSIPDU) -> UInt16 { p.u16(at: 36) }
    public static func keys(_ p: ISCSIPDU) -> [String: String] {
        Dictionary((TextKeys.parse(p.data) ?? []).map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
    }

    /// Logs in; returns the login status (0 = success). `chap` answers a CHAP challenge.
    public func login(initiator: String, target: String?, chap: (user: String, secret: String)? = nil,
               operational: [(key: String, value: String)] = []) -> UInt16 {
        var first: [(key: String, value: String)] = [("InitiatorName", initiator)]
        if let target { first += [("SessionType", "Normal"), ("TargetName", target)] } else { first.append(("SessionType", "Discovery")) }
        first.append(("AuthMethod", chap == nil ? "None" : "CHAP,None"))
        guard var r = loginRequest(csg: 0, nsg: 1, transit: chap == nil, first) else { return 0xFFFF }
        if MiniInitiator.status(r) != 0 { return MiniInitiator.status(r) }
        if let chap, MiniInitiator.keys(r)["AuthMethod"] == "CHAP" {
            guard let c = loginRequest(csg: 0, nsg: 1, transit: false, [("CHAP_A", "5")]) else { return 0xFFFF }
            let k = MiniInitiator.keys(c)
            guard let id = k["CHAP_I"].flatMap({ UInt8($0) }), let challenge = k["CHAP_C"].flatMap(CHAP.decodeBinary) else { return 0xFFFE }
            let answer = CHAP.response(identifier: id, secret: Array(chap.secret.utf8), challenge: challenge)
            guard let done = loginRequest(csg: 0, nsg: 1, transit: true, [("CHAP_N", chap.user), ("CHAP_R", CHAP.hex(answer))]) else { return 0xFFFF }
            r = done
            if MiniInitiator.status(r) != 0 { return MiniInitiator.status(r) }
        }
        var ops: [(key: String, value: String)] = [("HeaderDigest", "None"), ("DataDigest", "None"),
                                                   ("MaxRecvDataSegmentLength", String(maxRecv)), ("InitialR2T", "Yes"),
                                                   ("ImmediateData", "Yes"), ("MaxBurstLength", "262144"),
                                                   ("FirstBurstLength", "65536")]
        for o in operational {
            ops.removeAll { $0.key == o.key }
            ops.append(o)
        }
        guard let f = loginRequest(csg: 1, nsg: 3, transit: true, ops) else { return 0xFFFF }
        let k = MiniInitiator.keys(f)
        framing.headerDigest = k["HeaderDigest"] == "CRC32C"
        framing.dataDigest = k["DataDigest"] == "CRC32C"
        return MiniInitiator.status(f)
    }

    public struct Response {
        public var status: UInt8
        public var data: [UInt8]
        public var sense: [UInt8]
        public var residualFlags: UInt8
        public var residual: UInt32
        public var dataPDUs = 0
    }

    /// Sends one SCSI command and collects its answer. `dataOut` goes as immediate data up to
    /// `immediate` bytes, the rest on R2T.
    public func command(_ cdb: [UInt8], lun: UInt64 = 0, expected: Int = 0, dataOut: [UInt8] = [], immediate: Int = 0) -> Response? {
        var p = ISCSIPDU(opcode: .scsiCommand, flags: 0x80 | (dataOut.isEmpty ? 0 : 0x20) | (expected > 0 && dataOut.isEmpty ? 0x40 : 0))
        p.lunField = ISCSIPDU.encodeLUN(lun)
        let tag = itt
        itt &+= 1
        p.initiatorTaskTag = tag
        p.setU32(UInt32(dataOut.isEmpty ? expected : dataOut.count), at: 20)
        p.setU32(cmdSN, at: 24)
        cmdSN &+= 1
        p.setU32(expStatSN, at: 28)
        var padded = cdb
        padded += [UInt8](repeating: 0, count: max(0, 16 - cdb.count))
        p.bhs.replaceSubrange(32..<48, with: padded.prefix(16))
        p.data = Array(dataOut.prefix(immediate))
        send(p)
        var data: [UInt8] = []
        var pdus = 0
        while let r = receive() {
            switch r.opcode {
            case .dataIn:
                data += r.data
                pdus += 1
                if r.flags & 0x01 != 0 {
                    return Response(status: r.bhs[3], data: data, sense: [], residualFlags: r.flags & 0x06,
                                    residual: r.u32(at: 44), dataPDUs: pdus)
                }
            case .readyToTransfer:
                let offset = Int(r.u32(at: 40)), length = Int(r.u32(at: 44))
                var out = ISCSIPDU(opcode: .dataOut, flags: 0x80)
                out.lunField = p.lunField
                out.initiatorTaskTag = tag
                out.setU32(r.u32(at: 20), at: 20)
                out.setU32(expStatSN, at: 28)
                out.setU32(UInt32(offset), at: 40)
                out.data = Array(dataOut[offset..<offset + length])
                send(out)
            case .scsiResponse:
                let sense = r.data.count >= 2 ? Array(r.data[2...]) : []
                return Response(status: r.bhs[3], data: data, sense: sense, residualFlags: r.flags & 0x06,
                                residual: r.u32(at: 44), dataPDUs: pdus)
            case .reject:
                return nil
            default:
                continue
            }
        }
        return nil
    }

    /// An immediate, final request with the next task tag and no target transfer tag (Text,
    /// NOP-Out), numbered with the session's current CmdSN and ExpStatSN; not sent.
    public func immediateRequest(_ opcode: ISCSIOpcode) -> ISCSIPDU {
        var p = ISCSIPDU(opcode: opcode, immediate: true, flags: 0x80)
        p.initiatorTaskTag = itt
        itt &+= 1
        p.setU32(ISCSIPDU.reservedTag, at: 20)
        p.setU32(cmdSN, at: 24)
        p.setU32(expStatSN, at: 28)
        return p
    }

    /// A Text request (SendTargets); returns the answer's keys in order.
    public func text(_ keys: [(key: String, value: String)]) -> [(key: String, value: String)]? {
        var p = immediateRequest(.textRequest)
        p.data = TextKeys.encode(keys)
        send(p)
        guard let r = receive(), r.opcode == .textResponse else { return nil }
        return TextKeys.parse(r.data)
    }

    public func logout() -> Bool {
        var p = ISCSIPDU(opcode: .logoutRequest, immediate: true, flags: 0x80)
        p.initiatorTaskTag = itt
        itt &+= 1
        p.setU32(cmdSN, at: 24)
        p.setU32(expStatSN, at: 28)
        send(p)
        return receive()?.opcode == .logoutResponse
    }

    public static func u32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
}

/// Fixed-format sense key/ASC/ASCQ.
public func senseTriple(_ s: [UInt8]) -> [UInt8] { s.count >= 14 ? [s[2] & 0x0F, s[12], s[13]] : [] }
