import Foundation
import ISCSI
import NIOCore

/// What a misbehaving initiator needs on top of `MiniInitiator`: sends that may fail (the target
/// stopped reading), bounded waits, raw PDUs with any header, and commands sent without waiting.
extension MiniInitiator {
    /// Bounds every blocking `send` on this socket, so that a peer that stops reading makes our
    /// sends fail (EAGAIN) instead of blocking the test forever.
    public func limitSends(seconds: Int) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Bounds every blocking `recv` (and so `receive()` and `waitForClose()`).
    public func limitReceives(seconds: Int) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends all of `bytes` unless the socket fails or times out; true when all were sent.
    @discardableResult
    public func trySendRaw(_ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
            }
            if n <= 0 { return false }
            sent += n
        }
        return true
    }

    /// `pdu` as bytes on the wire with this connection's digests (DataSegmentLength and
    /// TotalAHSLength filled in from its parts).
    public func wireBytes(_ pdu: ISCSIPDU) -> [UInt8] {
        var buf = ByteBuffer()
        PDUEncoder.write(pdu, to: &buf, headerDigest: digests.header, dataDigest: digests.data)
        return Array(buf.readableBytesView)
    }

    /// A SCSI Command PDU with the next CmdSN and ITT, not sent. `immediate` sets the I bit
    /// (no CmdSN consumed).
    public func commandPDU(_ cdb: [UInt8], lun: UInt64 = 0, expected: Int, reads: Bool, writes: Bool = false,
                           final: Bool = true, immediate: Bool = false) -> ISCSIPDU {
        var flags: UInt8 = final ? 0x80 : 0
        if reads { flags |= 0x40 }
        if writes { flags |= 0x20 }
        var p = ISCSIPDU(opcode: .scsiCommand, immediate: immediate, flags: flags)
        p.lunField = ISCSIPDU.encodeLUN(lun)
        p.initiatorTaskTag = itt
        itt &+= 1
        p.setU32(UInt32(expected), at: 20)
        p.setU32(cmdSN, at: 24)
        if !immediate { cmdSN &+= 1 }
        p.setU32(expStatSN, at: 28)
        let padded = cdb + [UInt8](repeating: 0, count: max(0, 16 - cdb.count))
        p.bhs.replaceSubrange(32..<48, with: padded.prefix(16))
        return p
    }

    /// A NOP-Out ping (immediate) with `data`, not sent; the target answers with a NOP-In.
    public func pingPDU(data: [UInt8] = []) -> ISCSIPDU {
        var p = immediateRequest(.nopOut)
        p.data = data
        return p
    }

    /// Sends a ping and reads PDUs until its NOP-In comes back: everything sent before it has
    /// been handled by the target. False on close or timeout.
    public func roundTrip() -> Bool {
        let ping = pingPDU()
        send(ping)
        while let r = receive() {
            if r.opcode == .nopIn && r.initiatorTaskTag == ping.initiatorTaskTag { return true }
        }
        return false
    }

    /// READ(10) of `blocks` 2048-byte blocks at `lba`; the data, or nil unless it came back GOOD.
    public func read(lba: UInt32, blocks: UInt16) -> [UInt8]? {
        let cdb: [UInt8] = [0x28, 0] + MiniInitiator.u32(lba) + [0, UInt8(blocks >> 8), UInt8(blocks & 0xFF), 0]
        guard let r = command(cdb, expected: Int(blocks) * 2048), r.status == 0 else { return nil }
        return r.data
    }
}
