import NIOCore
import XCTest
@testable import ISCSI

/// Byte-exact tests of the building blocks: CRC32C, MD5, CHAP, text keys, PDU framing, negotiation.
final class CodecTests: XCTestCase {
    func testCRC32CKnownVectors() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        // RFC 3720 B.4: 32 bytes of zeros, of 0xFF, incrementing, decrementing.
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
        XCTAssertEqual(CRC32C.checksum((0..<32).map { UInt8($0) }), 0x46DD_794E)
        XCTAssertEqual(CRC32C.checksum((0..<32).map { UInt8(31 - $0) }), 0x113F_DB5C)
    }

    func testMD5KnownVectors() {
        func hex(_ s: String) -> String { CHAP.hex(MD5.digest(Array(s.utf8))) }
        XCTAssertEqual(hex(""), "0xd41d8cd98f00b204e9800998ecf8427e")  // RFC 1321 A.5
        XCTAssertEqual(hex("abc"), "0x900150983cd24fb0d6963f7d28e17f72")
        XCTAssertEqual(hex("message digest"), "0xf96b697d7cb7938d525a2f31aaf161d0")
        XCTAssertEqual(hex("abcdefghijklmnopqrstuvwxyz"), "0xc3fcd3d76192e4007dfb496cca67e13b")
        XCTAssertEqual(hex(String(repeating: "1234567890", count: 8)), "0x57edf4a22be3c955ac49da2e2107b67a")
    }

    func testCHAPResponseIsMD5OfIdentifierSecretChallenge() {
        let challenge: [UInt8] = [0xde, 0xad, 0xbe, 0xef]
        let r = CHAP.response(identifier: 7, secret: Array("secretsecret".utf8), challenge: challenge)
        XCTAssertEqual(r, MD5.digest([7] + Array("secretsecret".utf8) + challenge))
        XCTAssertTrue(CHAP.verify(response: r, identifier: 7, secret: Array("secretsecret".utf8), challenge: challenge))
        XCTAssertFalse(CHAP.verify(response: r, identifier: 8, secret: Array("secretsecret".utf8), challenge: challenge))
        XCTAssertFalse(CHAP.verify(response: Array(r.dropLast()), identifier: 7, secret: Array("secretsecret".utf8), challenge: challenge))
    }

    func testBinaryValueEncodings() {
        XCTAssertEqual(CHAP.decodeBinary("0x0aFf"), [0x0A, 0xFF])
        XCTAssertEqual(CHAP.decodeBinary("0xabc"), [0x0A, 0xBC])
        XCTAssertEqual(CHAP.decodeBinary("0bAQID"), [1, 2, 3])
        XCTAssertEqual(CHAP.decodeBinary("0bAQI="), [1, 2])
        XCTAssertNil(CHAP.decodeBinary("0xzz"))
        XCTAssertNil(CHAP.decodeBinary("1234"))
        XCTAssertEqual(CHAP.hex([0, 0x9f]), "0x009f")
    }

    func testTextKeys() {
        let data = Array("InitiatorName=iqn.x\0SessionType=Discovery\0\0".utf8)
        let pairs = TextKeys.parse(data)!
        XCTAssertEqual(pairs.map(\.key), ["InitiatorName", "SessionType"])
        XCTAssertEqual(pairs.map(\.value), ["iqn.x", "Discovery"])
        XCTAssertEqual(TextKeys.encode(pairs), Array("InitiatorName=iqn.x\0SessionType=Discovery\0".utf8))
        XCTAssertNil(TextKeys.parse(Array("NoEquals\0".utf8)))
        XCTAssertNil(TextKeys.parse(Array("=x\0".utf8)))
    }

    func testPDURoundTripWithPaddingAndDigests() throws {
        for (hd, dd) in [(false, false), (true, false), (false, true), (true, true)] {
            var p = ISCSIPDU(opcode: .textRequest, immediate: true, flags: 0x80)
            p.initiatorTaskTag = 0x0102_0304
            p.data = [1, 2, 3, 4, 5]
            var buf = ByteBuffer()
            PDUEncoder.write(p, to: &buf, headerDigest: hd, dataDigest: dd)
            XCTAssertEqual(buf.readableBytes, 48 + (hd ? 4 : 0) + 8 + (dd ? 4 : 0))
            XCTAssertEqual(Array(buf.readableBytesView)[5..<8], [0, 0, 5])
            let state = FramingState()
            state.headerDigest = hd
            state.dataDigest = dd
            var partial = ByteBuffer(bytes: Array(buf.readableBytesView.dropLast()))
            XCTAssertNil(try PDUDecoder.parse(&partial, state: state))  // one byte short: wait
            let q = try XCTUnwrap(try PDUDecoder.parse(&buf, state: state))
            XCTAssertEqual(q.data, [1, 2, 3, 4, 5])
            XCTAssertEqual(q.initiatorTaskTag, 0x0102_0304)
            XCTAssertTrue(q.immediate)
            XCTAssertEqual(q.opcode, .textRequest)
            XCTAssertEqual(buf.readableBytes, 0)
        }
    }

    func testDecoderRefusesOversizedSegmentsAndBadDigests() {
        let state = FramingState()
        var header = [UInt8](repeating: 0, count: 48)
        header[5] = 0x01  // 64 KiB data segment, above the 8 KiB login limit
        var buf = ByteBuffer(bytes: header)
        XCTAssertThrowsError(try PDUDecoder.parse(&buf, state: state)) {
            XCTAssertEqual($0 as? ISCSIFramingError, .dataSegmentTooLong(65536, limit: 8192))
        }
        state.headerDigest = true
        var p = ByteBuffer()
        PDUEncoder.write(ISCSIPDU(opcode: .nopOut), to: &p, headerDigest: true, dataDigest: false)
        p.setInteger(UInt8(0x55), at: 50)  // corrupt the digest
        XCTAssertThrowsError(try PDUDecoder.parse(&p, state: state)) {
            XCTAssertEqual($0 as? ISCSIFramingError, .headerDigestMismatch)
        }
    }

    func testLUNEncoding() {
        var p = ISCSIPDU(opcode: .scsiCommand)
        p.lunField = ISCSIPDU.encodeLUN(5)
        XCTAssertEqual(Array(p.bhs[8..<16]), [0, 5, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(p.lun, 5)
        p.lunField = ISCSIPDU.encodeLUN(300)
        XCTAssertEqual(Array(p.bhs[8..<10]), [0x41, 0x2C])
        XCTAssertEqual(p.lun, 300)
    }

    func testNegotiationFollowsResultFunctions() {
        var n = Negotiator(targetMaxRecvDataSegmentLength: 65536)
        let answer = n.respond(to: [("HeaderDigest", "CRC32C,None"), ("DataDigest", "None"),
                                    ("MaxRecvDataSegmentLength", "4096"), ("MaxBurstLength", "16776192"),
                                    ("FirstBurstLength", "262144"), ("InitialR2T", "No"), ("ImmediateData", "Yes"),
                                    ("MaxConnections", "8"), ("ErrorRecoveryLevel", "2"), ("DefaultTime2Wait", "0"),
                                    ("DefaultTime2Retain", "60"), ("MaxOutstandingR2T", "8"),
                                    ("DataPDUInOrder", "No"), ("X-com.example.Foo", "1"), ("MaxBurstLength", "12")])
        let d = Dictionary(answer.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
        XCTAssertEqual(d["HeaderDigest"], "CRC32C")
        XCTAssertEqual(d["DataDigest"], "None")
        XCTAssertNil(answer.first { $0.key == "MaxRecvDataSegmentLength" && $0.value == "4096" })  // declarative
        XCTAssertEqual(d["MaxRecvDataSegmentLength"], "65536")  // ours, declared once
        XCTAssertEqual(answer.filter { $0.key == "MaxBurstLength" }.map(\.value), ["1048576", "Reject"])
        XCTAssertEqual(d["FirstBurstLength"], "65536")
        XCTAssertEqual(d["InitialR2T"], "Yes")
        XCTAssertEqual(d["MaxConnections"], "1")
        XCTAssertEqual(d["ErrorRecoveryLevel"], "0")
        XCTAssertEqual(d["DefaultTime2Wait"], "2")
        XCTAssertEqual(d["DefaultTime2Retain"], "20")
        XCTAssertEqual(d["MaxOutstandingR2T"], "1")
        XCTAssertEqual(d["DataPDUInOrder"], "Yes")
        XCTAssertEqual(d["X-com.example.Foo"], "NotUnderstood")
        let p = n.parameters
        XCTAssertTrue(p.headerDigest)
        XCTAssertEqual(p.initiatorMaxRecvDataSegmentLength, 4096)
        XCTAssertEqual(p.maxBurstLength, 1_048_576)
        XCTAssertTrue(p.initialR2T)
        XCTAssertEqual(n.respond(to: [("DataDigest", "MD5")]).first?.value, "Reject")
    }
}

/// The CDB of a SCSI Command with and without an Extended CDB AHS.
final class ExtendedCDBTests: XCTestCase {
    func command(ahs: [UInt8]) -> ISCSIPDU {
        var p = ISCSIPDU(opcode: .scsiCommand, flags: 0x80)
        p.bhs.replaceSubrange(32..<48, with: 1...16)
        p.ahs = ahs
        return p
    }

    func testExtendedCDBBytesFollowTheBHSOnes() {
        // AHSLength 5: the reserved byte and 4 more CDB bytes (a 20-byte CDB), padded to 8.
        XCTAssertEqual(ISCSIConnection.cdb(of: command(ahs: [0, 5, 1, 0, 17, 18, 19, 20])), Array(1...20))
        XCTAssertEqual(ISCSIConnection.cdb(of: command(ahs: [])), Array(1...16))
        XCTAssertEqual(ISCSIConnection.cdb(of: command(ahs: [0, 8, 2, 0, 0, 0, 0, 0])), Array(1...16))  // not a CDB AHS
    }

    func testMalformedExtendedCDBLengthsAreRefused() {
        XCTAssertNil(ISCSIConnection.cdb(of: command(ahs: [0, 0, 1, 0])))  // trapped before
        XCTAssertNil(ISCSIConnection.cdb(of: command(ahs: [0, 9, 1, 0, 1, 2, 3, 4])))
        XCTAssertNil(ISCSIConnection.cdb(of: command(ahs: [0xFF, 0xFF, 1, 0])))
    }
}
