/// One ECMA-119 9.1 directory record, decoded.
struct DirectoryRecord: Sendable {
    /// Flag bits of byte 25 (ECMA-119 9.1.6).
    struct Flags: OptionSet, Sendable {
        let rawValue: UInt8
        static let hidden = Flags(rawValue: 1 << 0)
        static let directory = Flags(rawValue: 1 << 1)
        static let associated = Flags(rawValue: 1 << 2)
        static let multiExtent = Flags(rawValue: 1 << 7)
    }

    /// The logical block where the extent (extended attribute record included) starts.
    var extentBlock: UInt64
    /// Logical blocks of extended attribute record before the data.
    var extendedAttributeBlocks: UInt64
    var dataLength: UInt64
    var recordingTime: Timespec
    var flags: Flags
    var fileUnitSize: UInt8
    var interleaveGap: UInt8
    /// The raw file identifier; [0] is ".", [1] is "..".
    var identifier: [UInt8]
    /// The system use area (SUSP / Rock Ridge entries), after any SP skip bytes are applied by the caller.
    var systemUse: [UInt8]

    /// The smallest valid record: 33 fixed bytes plus a one-byte identifier.
    static let minimumLength = 34

    var isDot: Bool { identifier == [0] }
    var isDotDot: Bool { identifier == [1] }
    var isDirectory: Bool { flags.contains(.directory) }

    /// Decodes the record that starts at `offset` in `bytes`; `nil` when its lengths are inconsistent.
    init?(_ bytes: [UInt8], at offset: Int) {
        let length = Int(bytes.u8(offset))
        guard length >= DirectoryRecord.minimumLength, offset + length <= bytes.count else { return nil }
        let nameLength = Int(bytes.u8(offset + 32))
        guard nameLength >= 1, 33 + nameLength <= length else { return nil }
        extendedAttributeBlocks = UInt64(bytes.u8(offset + 1))
        extentBlock = UInt64(bytes.le32(offset + 2))
        dataLength = UInt64(bytes.le32(offset + 10))
        recordingTime = CivilTime.iso7(bytes, at: offset + 18)
        flags = Flags(rawValue: bytes.u8(offset + 25))
        fileUnitSize = bytes.u8(offset + 26)
        interleaveGap = bytes.u8(offset + 27)
        identifier = bytes.slice(offset + 33, nameLength)
        let systemUseStart = 33 + nameLength + (nameLength % 2 == 0 ? 1 : 0)
        systemUse = systemUseStart < length ? bytes.slice(offset + systemUseStart, length - systemUseStart) : []
    }

    /// The absolute byte offset of the data (after the extended attribute record).
    func dataOffset(blockSize: UInt64) -> UInt64 {
        (extentBlock &+ extendedAttributeBlocks) &* blockSize
    }
}

/// Plain ISO 9660 and Joliet file identifiers as shown to users.
enum ISOName {
    /// ECMA-119 7.5 identifier without the ";version" suffix and, for plain ISO names, without
    /// the separator dot of a name that has no extension ("README." becomes "README").
    static func display(_ identifier: [UInt8], joliet: Bool) -> String {
        var name = joliet ? decodeUTF16BE(identifier) : String(decoding: identifier, as: UTF8.self)
        if let semicolon = name.lastIndex(of: ";"),
           name[name.index(after: semicolon)...].allSatisfy({ $0.isASCII && $0.isNumber }) {
            name = String(name[..<semicolon])
        }
        if !joliet, name.count > 1, name.hasSuffix(".") { name.removeLast() }
        return name
    }
}
