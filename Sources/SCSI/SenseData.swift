/// Where in the CDB (or the parameter list) the offending field is: the sense-key-specific
/// "field pointer" bytes of SPC-4 4.5.2.4.2 (Table 50).
public struct FieldPointer: Hashable, Sendable {
    /// True when the field is in the CDB (C/D = 1); false for the parameter list (C/D = 0).
    public var inCDB: Bool
    /// Index of the byte holding the field (its most significant byte for multi-byte fields).
    public var byte: UInt16
    /// The field's most significant bit within that byte, when known (sets BPV).
    public var bit: UInt8?

    public init(inCDB: Bool = true, byte: UInt16, bit: UInt8? = nil) {
        self.inCDB = inCDB
        self.byte = byte
        self.bit = bit.map { $0 & 0x07 }
    }

    /// A field in the CDB.
    public static func cdb(_ byte: Int, bit: UInt8? = nil) -> FieldPointer {
        FieldPointer(inCDB: true, byte: UInt16(truncatingIfNeeded: byte), bit: bit)
    }

    /// A field in the parameter list (data-out).
    public static func parameter(_ byte: Int, bit: UInt8? = nil) -> FieldPointer {
        FieldPointer(inCDB: false, byte: UInt16(truncatingIfNeeded: byte), bit: bit)
    }

    /// The three sense-key-specific bytes (SKSV set).
    var senseKeySpecific: (UInt8, UInt8, UInt8) {
        var b0: UInt8 = 0x80
        if inCDB { b0 |= 0x40 }
        if let bit { b0 |= 0x08 | bit }
        return (b0, UInt8(byte >> 8), UInt8(byte & 0xFF))
    }
}

/// What a command handler throws: a sense code, optionally with a field pointer.
/// Handlers are declared `throws(SenseError)`; a bare `SenseCode` converts with `SenseError(code)`.
public struct SenseError: Error, Sendable, Equatable {
    public var code: SenseCode
    public var field: FieldPointer?

    public init(_ code: SenseCode, field: FieldPointer? = nil) {
        self.code = code
        self.field = field
    }

    /// 05/24/00 INVALID FIELD IN CDB pointing at `byte` (and `bit`, when known).
    static func invalidField(byte: Int, bit: UInt8? = nil) -> SenseError {
        SenseError(.invalidFieldInCDB, field: .cdb(byte, bit: bit))
    }

    /// 05/26/00 INVALID FIELD IN PARAMETER LIST pointing at `byte` of the data-out buffer.
    static func invalidParameter(byte: Int, bit: UInt8? = nil) -> SenseError {
        SenseError(.invalidFieldInParameterList, field: .parameter(byte, bit: bit))
    }
}

/// Builds sense data bytes: fixed format (SPC-4 4.5.3, Table 48, response code 70h) and
/// descriptor format (SPC-4 4.5.2, Table 12, response code 72h, with the sense key specific
/// descriptor of 4.5.2.4 when a field pointer is known).
public enum SenseData {
    /// Fixed-format sense data: always 18 bytes (additional sense length 0Ah).
    public static func fixed(_ code: SenseCode, field: FieldPointer? = nil) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 18)
        bytes[0] = 0x70                 // VALID = 0 (no INFORMATION), current error
        bytes[2] = code.key & 0x0F
        bytes[7] = 10                   // additional sense length: bytes 8...17
        bytes[12] = code.asc
        bytes[13] = code.ascq
        if let field {
            let sks = field.senseKeySpecific
            bytes[15] = sks.0
            bytes[16] = sks.1
            bytes[17] = sks.2
        }
        return bytes
    }

    /// Descriptor-format sense data: an 8-byte header, plus an 8-byte sense key specific
    /// descriptor (type 02h) when `field` is given.
    public static func descriptor(_ code: SenseCode, field: FieldPointer? = nil) -> [UInt8] {
        var bytes: [UInt8] = [0x72, code.key & 0x0F, code.asc, code.ascq, 0, 0, 0, 0]
        if let field {
            let sks = field.senseKeySpecific
            bytes += [0x02, 0x06, 0x00, 0x00, sks.0, sks.1, sks.2, 0x00]
            bytes[7] = 8
        }
        return bytes
    }

    /// Either format.
    public static func build(_ code: SenseCode, field: FieldPointer?, descriptorFormat: Bool) -> [UInt8] {
        descriptorFormat ? descriptor(code, field: field) : fixed(code, field: field)
    }
}
