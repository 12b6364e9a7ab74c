import NIOCore

/// The framing parameters of one connection, shared by its decoder, encoder and session handler.
///
/// Threading rule: one instance per connection, touched only on that connection's event loop
/// (the three handlers of one pipeline), so it needs no lock and is not `Sendable`.
/// Digest settings and segment limit of one connection. Public, with the codec below, so that
/// test initiators and tools can speak iSCSI through the same framing code.
public final class FramingState {
    /// CRC32C header digest in force (after the login phase, when negotiated).
    public var headerDigest = false
    /// CRC32C data digest in force.
    public var dataDigest = false
    /// The largest data segment we accept: 8192 during login (RFC 7143 13.12 default), then the
    /// MaxRecvDataSegmentLength we declared.
    public var maxDataSegment = 8192

    public init() {}
}

/// Why a connection's byte stream was refused. Any of these closes that connection only.
public enum ISCSIFramingError: Error, Equatable, Sendable {
    case dataSegmentTooLong(Int, limit: Int)
    case headerDigestMismatch
    case dataDigestMismatch
    case truncatedPDU(Int)
}

/// Splits the byte stream into PDUs (RFC 7143 11.2): BHS, AHS, optional header digest, data
/// segment padded to 4 bytes, optional data digest. Strict: a data segment longer than the
/// negotiated limit or a digest mismatch throws (the handler then closes the connection), so a
/// peer cannot make us buffer more than one PDU's worth of bytes.
public struct PDUDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ISCSIPDU
    let state: FramingState

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let pdu = try PDUDecoder.parse(&buffer, state: state) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(pdu))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while let pdu = try PDUDecoder.parse(&buffer, state: state) {
            context.fireChannelRead(wrapInboundOut(pdu))
        }
        if buffer.readableBytes > 0 {
            let n = buffer.readableBytes
            buffer.moveReaderIndex(forwardBy: n)
            throw ISCSIFramingError.truncatedPDU(n)
        }
        return .needMoreData
    }

    /// One PDU if the buffer holds a whole one (consumed), nil if more bytes are needed.
    public static func parse(_ buffer: inout ByteBuffer, state: FramingState) throws -> ISCSIPDU? {
        let start = buffer.readerIndex
        guard buffer.readableBytes >= ISCSIPDU.bhsLength,
              let ahsWords = buffer.getInteger(at: start + 4, as: UInt8.self),
              let lenBytes = buffer.getBytes(at: start + 5, length: 3) else { return nil }
        let ahsLength = Int(ahsWords) * 4
        let dataLength = Int(lenBytes[0]) << 16 | Int(lenBytes[1]) << 8 | Int(lenBytes[2])
        if dataLength > state.maxDataSegment {
            throw ISCSIFramingError.dataSegmentTooLong(dataLength, limit: state.maxDataSegment)
        }
        let headerDigest = state.headerDigest ? 4 : 0
        let dataDigest = state.dataDigest && dataLength > 0 ? 4 : 0
        let padded = (dataLength + 3) & ~3
        let total = ISCSIPDU.bhsLength + ahsLength + headerDigest + padded + dataDigest
        guard buffer.readableBytes >= total else { return nil }

        let header = buffer.readBytes(length: ISCSIPDU.bhsLength + ahsLength)!
        if headerDigest > 0 {
            let sent = buffer.readInteger(endianness: .little, as: UInt32.self)!
            if sent != CRC32C.checksum(header) { throw ISCSIFramingError.headerDigestMismatch }
        }
        let paddedData = buffer.readBytes(length: padded)!
        let data = Array(paddedData[0..<dataLength])
        if dataDigest > 0 {
            let sent = buffer.readInteger(endianness: .little, as: UInt32.self)!
            if sent != CRC32C.checksum(paddedData) { throw ISCSIFramingError.dataDigestMismatch }
        }
        return ISCSIPDU(bhs: Array(header[0..<ISCSIPDU.bhsLength]),
                        ahs: Array(header[ISCSIPDU.bhsLength...]), data: data)
    }
}

/// Writes PDUs: fills TotalAHSLength and DataSegmentLength from the PDU's parts, pads the data
/// segment with zeros to 4 bytes and appends the digests in force.
public struct PDUEncoder: MessageToByteEncoder {
    public typealias OutboundIn = ISCSIPDU
    let state: FramingState

    public func encode(data pdu: ISCSIPDU, out: inout ByteBuffer) throws {
        PDUEncoder.write(pdu, to: &out, headerDigest: state.headerDigest, dataDigest: state.dataDigest)
    }

    public static func write(_ pdu: ISCSIPDU, to out: inout ByteBuffer, headerDigest: Bool, dataDigest: Bool) {
        var bhs = pdu.bhs
        bhs[4] = UInt8(pdu.ahs.count / 4)
        bhs[5] = UInt8(truncatingIfNeeded: pdu.data.count >> 16)
        bhs[6] = UInt8(truncatingIfNeeded: pdu.data.count >> 8)
        bhs[7] = UInt8(truncatingIfNeeded: pdu.data.count)
        let base = out.readerIndex
        let headerStart = out.writerIndex
        out.writeBytes(bhs)
        out.writeBytes(pdu.ahs)
        if headerDigest {
            let crc = out.withUnsafeReadableBytes { raw in
                CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[(headerStart - base)...]))
            }
            out.writeInteger(crc, endianness: .little)
        }
        guard !pdu.data.isEmpty else { return }
        let dataStart = out.writerIndex
        out.writeBytes(pdu.data)
        let pad = (4 - pdu.data.count % 4) % 4
        if pad > 0 { out.writeRepeatingByte(0, count: pad) }
        if dataDigest {
            let crc = out.withUnsafeReadableBytes { raw in
                CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[(dataStart - base)...]))
            }
            out.writeInteger(crc, endianness: .little)
        }
    }
}
