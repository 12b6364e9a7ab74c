// libFuzzer harness: the iSCSI target's PDU codec, login state machine (with CHAP), text
// negotiation and full-feature dispatch (Sources/ISCSI), compiled into the ISCSI module itself
// (fuzz/build.sh) and run in process on NIO's EmbeddedChannel: the real pipeline of a
// connection (PDUDecoder, PDUEncoder, ISCSIConnection), no sockets, no threads.
//
// Input: one config byte, then records `[kind, length (2 bytes, big-endian), payload]`.
//   config bit 0: the target requires CHAP; bits 1, 2: header / data digests for the stand-alone
//   codec check; bit 3: a small MaxRecvDataSegmentLength (8192) for the target.
//   kind % 9: 0 raw bytes to the connection; 1 a Login Request (payload[0] = flags, the rest its
//   text); 2 the right CHAP answer to the last challenge (payload[0] = flags, payload[1] bit 0
//   spoils it); 3 a PDU (payload[0] opcode, [1] flags, [2..<48] the rest of the BHS, then data)
//   with CmdSN and ExpStatSN set right; 4 the same PDU as given; 5 a Text Request with the
//   payload as its text; 6 a NOP-Out ping or (payload[0] bit 0) a Logout; 7 raw bytes in small
//   pieces; 8 time passes (payload[0] seconds: the login timeout, pings).
// Oracles: the stand-alone decoder's PDUs re-encode to the same PDUs; what the target writes
// during login decodes; every connection handler is freed once its channel is finished.

import Glibc
import NIOCore
import NIOEmbedded
import NIOPosix
import SCSI

let targetName = "iqn.2026-11.io.vmediafs:g1"
let chapUser = "guest1", chapSecret = "averylongsecret"

/// One target with one drive at LUN 0; any `iqn.` initiator may log in.
final class FuzzProvider: ISCSIProvider {
    let chap: Bool
    let drive: OpticalDrive
    init(chap: Bool, drive: OpticalDrive) { self.chap = chap; self.drive = drive }
    func discoverableTargets(initiator: String) -> [String] { [targetName, targetName + "-other"] }
    func loginPolicy(target: String, initiator: String) -> LoginPolicy? {
        guard target.lowercased() == targetName, initiator.hasPrefix("iqn.") else { return nil }
        return chap ? .chap(user: chapUser, secret: chapSecret) : .open
    }
    func lun(_ lun: UInt64, of target: String) -> OpticalDrive? { lun == 0 && target == targetName ? drive : nil }
    func luns(of target: String) -> [UInt64] { target == targetName ? [0] : [] }
    func sessionsChanged(target: String, initiators: [String]) {}
}

final class FuzzSource: BlockSource {
    var byteCount: UInt64 { 8 * 2048 + 100 }
    var fileDescriptor: Int32? { nil }
    func validate() throws(MediumError) {}
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(MediumError) -> Int {
        guard offset < byteCount else { return 0 }
        let n = Int(min(UInt64(buffer.count), byteCount - offset))
        for i in 0..<n { buffer[i] = UInt8(truncatingIfNeeded: offset &+ UInt64(i)) }
        return n
    }
}

let drive: OpticalDrive = {
    let d = OpticalDrive(identity: DeviceIdentity(vendor: "VMEDIAFS", product: "Virtual DVD-ROM", revision: "1.0",
                                                  serial: "fuzz", identifier: 1))
    try? d.insert(Medium(source: FuzzSource()))
    return d
}()
let providers = [FuzzProvider(chap: false, drive: drive), FuzzProvider(chap: true, drive: drive)]
/// Never started: the pool runs `submit`ted work at once on the caller's thread (cancelled
/// state), and `runIfActive` fails, so a SCSI command closes the connection here. Commands are
/// run through `SCSIDispatch` directly instead (kind 3 with opcode 01h).
let pool = NIOThreadPool(numberOfThreads: 1)
/// FUZZ_TRACE=1: print what the target answers (to check that seeds reach where they should).
let trace = getenv("FUZZ_TRACE") != nil

/// The stand-alone codec check: every PDU the decoder finds re-encodes to bytes that decode to it.
func checkCodec(_ bytes: [UInt8], headerDigest: Bool, dataDigest: Bool) {
    let framing = FramingState()
    framing.headerDigest = headerDigest
    framing.dataDigest = dataDigest
    var buffer = ByteBuffer(bytes: bytes)
    var count = 0
    while count < 64, let pdu = try? PDUDecoder.parse(&buffer, state: framing) {
        count += 1
        precondition(pdu.bhs.count == ISCSIPDU.bhsLength && pdu.ahs.count % 4 == 0, "a malformed PDU came out")
        var out = ByteBuffer()
        PDUEncoder.write(pdu, to: &out, headerDigest: headerDigest, dataDigest: dataDigest)
        let again = try? PDUDecoder.parse(&out, state: framing)
        precondition(again?.ahs == pdu.ahs && again?.data == pdu.data, "a PDU did not survive re-encoding")
        precondition(out.readableBytes == 0, "re-encoding left bytes over")
        if let text = TextKeys.parse(pdu.data) {
            precondition(TextKeys.parse(TextKeys.encode(text))?.count == text.count, "text keys did not survive re-encoding")
            var negotiator = Negotiator()
            _ = negotiator.respond(to: text)
        }
    }
}

/// One connection, driven by the records.
struct Session {
    let channel = EmbeddedChannel()
    let framing = FramingState()
    let initiatorFraming = FramingState()
    var fromTarget = ByteBuffer()
    var cmdSN: UInt32 = 1
    var expStatSN: UInt32 = 0
    var itt: UInt32 = 1
    var challenge: (id: UInt8, bytes: [UInt8])?
    var open = true

    init(provider: FuzzProvider, limits: ServerLimits) throws {
        initiatorFraming.maxDataSegment = 1 << 24
        let services = ServerServices(provider: provider, pool: pool, limits: limits)
        let ops = channel.pipeline.syncOperations
        try ops.addHandler(ByteToMessageHandler(PDUDecoder(state: framing)))
        try ops.addHandler(MessageToByteHandler(PDUEncoder(state: framing)))
        try ops.addHandler(ISCSIConnection(framing: framing, services: services))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 3260)).wait()
    }

    mutating func write(_ bytes: [UInt8]) {
        guard open, channel.isActive else { open = false; return }
        do { try channel.writeInbound(ByteBuffer(bytes: bytes)) } catch { open = channel.isActive }
        drain()
    }

    mutating func send(_ pdu: ISCSIPDU) {
        var buffer = ByteBuffer()
        PDUEncoder.write(pdu, to: &buffer, headerDigest: framing.headerDigest, dataDigest: framing.dataDigest)
        write(Array(buffer.readableBytesView))
    }

    /// Reads what the target wrote. During login (no digests yet) it must decode.
    mutating func drain() {
        while let out = try? channel.readOutbound(as: ByteBuffer.self) {
            var out = out
            fromTarget.writeBuffer(&out)
        }
        guard !framing.headerDigest && !framing.dataDigest else { fromTarget.clear(); return }
        while fromTarget.readableBytes > 0 {
            let pdu: ISCSIPDU?
            do { pdu = try PDUDecoder.parse(&fromTarget, state: initiatorFraming) } catch {
                preconditionFailure("the target wrote bytes that do not decode: \(error)")
            }
            guard let pdu else { break }
            if trace {
                let keys = TextKeys.parse(pdu.data).map { $0.map { "\($0.key)=\($0.value)" }.joined(separator: " ") } ?? "\(pdu.data.count) bytes"
                print("target: \(pdu.opcode.map { "\($0)" } ?? "?") flags \(pdu.flags) status \(pdu.bhs[36]) \(pdu.bhs[37]) \(keys.prefix(200))")
            }
            if pdu.opcode != .dataIn && pdu.opcode != .readyToTransfer { expStatSN = pdu.u32(at: 24) &+ 1 }
            if pdu.opcode == .loginResponse, let keys = TextKeys.parse(pdu.data),
               let id = keys.last(where: { $0.key == "CHAP_I" }).flatMap({ UInt8($0.value) }),
               let c = keys.last(where: { $0.key == "CHAP_C" }).flatMap({ CHAP.decodeBinary($0.value) }) {
                challenge = (id, c)
            }
        }
    }

    mutating func login(flags: UInt8, text: [UInt8]) {
        var p = ISCSIPDU(opcode: .loginRequest, immediate: true, flags: flags)
        p.bhs.replaceSubrange(8..<14, with: [0x80, 0, 0, 0x12, 0x34, 0x56])
        p.initiatorTaskTag = 0
        p.setU32(cmdSN, at: 24)
        p.setU32(expStatSN, at: 28)
        p.data = text
        send(p)
    }

    mutating func pdu(_ payload: ArraySlice<UInt8>, fix: Bool) {
        var bhs = [UInt8](repeating: 0, count: ISCSIPDU.bhsLength)
        for (i, b) in payload.prefix(ISCSIPDU.bhsLength).enumerated() { bhs[i] = b }
        var p = ISCSIPDU(bhs: bhs, data: Array(payload.dropFirst(ISCSIPDU.bhsLength)))
        if fix {
            p.setU32(cmdSN, at: 24)
            p.setU32(expStatSN, at: 28)
            if !p.immediate { cmdSN &+= 1 }
        }
        if p.opcode == .scsiCommand {
            var cdb = Array(p.bhs[32..<48])
            if p.ahs.count > 4 { cdb += p.ahs.dropFirst(4) }
            let request = CommandRequest(target: targetName, lun: p.lun, cdb: cdb, dataOut: p.data,
                                         prefetch: Int(p.u32(at: 20) & 0xFFFF), expected: Int(p.u32(at: 20)))
            let nexus = NexusTable()
            _ = SCSIDispatch.execute(request, provider: providers[0], nexus: nexus)
            nexus.closeAndDetach()
        }
        send(p)
    }

    mutating func text(_ text: [UInt8]) {
        var p = ISCSIPDU(opcode: .textRequest, flags: 0x80)
        p.initiatorTaskTag = itt
        itt &+= 1
        p.setU32(ISCSIPDU.reservedTag, at: 20)
        p.setU32(cmdSN, at: 24)
        p.setU32(expStatSN, at: 28)
        cmdSN &+= 1
        p.data = text
        send(p)
    }

    mutating func nopOrLogout(_ payload: ArraySlice<UInt8>) {
        var p: ISCSIPDU
        if (payload.first ?? 0) & 1 == 0 {
            p = ISCSIPDU(opcode: .nopOut, immediate: true, flags: 0x80)
            p.setU32(ISCSIPDU.reservedTag, at: 20)
            p.data = Array(payload.dropFirst())
        } else {
            p = ISCSIPDU(opcode: .logoutRequest, immediate: true, flags: 0x80 | (payload.dropFirst().first ?? 0) & 0x7F)
        }
        p.initiatorTaskTag = itt
        itt &+= 1
        p.setU32(cmdSN, at: 24)
        p.setU32(expStatSN, at: 28)
        send(p)
    }

    mutating func answerChallenge(_ payload: ArraySlice<UInt8>) {
        guard let challenge else { return }
        var answer = CHAP.response(identifier: challenge.id, secret: Array(chapSecret.utf8), challenge: challenge.bytes)
        if (payload.dropFirst().first ?? 0) & 1 != 0 { answer[0] ^= 1 }
        let keys = TextKeys.encode([("CHAP_N", chapUser), ("CHAP_R", CHAP.hex(answer))])
        login(flags: payload.first ?? 0x81, text: keys)
    }
}

func run(_ input: UnsafeBufferPointer<UInt8>) {
    let config = input[0]
    var limits = ServerLimits(maxConnections: 4)
    if config & 8 != 0 { limits.maxRecvDataSegmentLength = 8192 }
    guard var session = try? Session(provider: providers[Int(config & 1)], limits: limits) else { return }
    var at = 1
    var records = 0
    while at + 3 <= input.count, records < 256, session.open {
        records += 1
        let kind = input[at] % 9
        let length = Int(input[at + 1]) << 8 | Int(input[at + 2])
        let end = min(input.count, at + 3 + length)
        let payload = Array(input[(at + 3)..<end])[...]
        at = end
        switch kind {
        case 0:
            checkCodec(Array(payload), headerDigest: config & 2 != 0, dataDigest: config & 4 != 0)
            session.write(Array(payload))
        case 1: session.login(flags: payload.first ?? 0, text: Array(payload.dropFirst()))
        case 2: session.answerChallenge(payload)
        case 3: session.pdu(payload, fix: true)
        case 4:
            checkCodec(Array(payload), headerDigest: config & 2 != 0, dataDigest: config & 4 != 0)
            session.pdu(payload, fix: false)
        case 5: session.text(Array(payload))
        case 6: session.nopOrLogout(payload)
        case 7:
            let step = Int(payload.first ?? 0) % 7 + 1
            var rest = payload.dropFirst()
            while !rest.isEmpty, session.open {
                session.write(Array(rest.prefix(step)))
                rest = rest.dropFirst(step)
            }
        default:
            session.channel.embeddedEventLoop.advanceTime(by: .seconds(Int64(payload.first ?? 1)))
            session.drain()
        }
    }
    _ = try? session.channel.finish(acceptAlreadyClosed: true)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzISCSI(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    run(UnsafeBufferPointer(start: data, count: size))
    let alive = ISCSIConnection.alive.load(ordering: .relaxed)
    precondition(alive == 0, "\(alive) connection handler(s) outlived their channel")
    return 0
}
