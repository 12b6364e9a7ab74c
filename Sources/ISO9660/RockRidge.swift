/// Rock Ridge (IEEE P1282, RRIP 1.09/1.10/1.12) information of one directory record.
struct RockRidgeInfo: Sendable {
    var name: String?
    var mode: UInt32?
    var linkCount: UInt32?
    var uid: UInt32?
    var gid: UInt32?
    var symlinkTarget: String?
    var isDevice = false
    var modificationTime: Timespec?
    var accessTime: Timespec?
    var changeTime: Timespec?
    /// CL: the directory this placeholder stands for was relocated to this logical block.
    var childLink: UInt64?
    /// RE: this directory is a relocated one (hidden where it is, shown at its CL placeholder).
    var isRelocated = false

    /// Longest name and symlink target kept (longer ones are cut, never allocated without bound).
    static let maxNameBytes = 1024
    static let maxTargetBytes = 4096

    init() {}

    init(_ entries: [SUSPEntry]) {
        var nameBytes: [UInt8] = []
        var nameSeen = false
        var symlink = SymlinkBuilder()
        for entry in entries {
            let d = entry.data
            switch entry.signature {
            case "PX" where d.count >= 32:
                mode = d.le32(0)
                linkCount = d.le32(8)
                uid = d.le32(16)
                gid = d.le32(24)
            case "PN":
                isDevice = true
            case "NM" where d.count >= 1:
                let flags = d[0]
                if flags & 0x02 != 0 || flags & 0x04 != 0 { continue }    // "." / "..": not a name
                nameSeen = true
                if nameBytes.count < RockRidgeInfo.maxNameBytes {
                    nameBytes.append(contentsOf: d[1...].prefix(RockRidgeInfo.maxNameBytes - nameBytes.count))
                }
            case "SL" where d.count >= 1:
                symlink.add(Array(d[1...]))
            case "TF" where d.count >= 1:
                readTimes(d)
            case "CL" where d.count >= 4:
                childLink = UInt64(d.le32(0))
            case "RE":
                isRelocated = true
            default:
                break   // PL, RR, SF and others carry nothing shown here
            }
        }
        if nameSeen && !nameBytes.isEmpty { name = String(decoding: nameBytes, as: UTF8.self) }
        if symlink.started { symlinkTarget = symlink.finished }
    }

    /// TF: flag bits say which times follow, in order creation, modify, access, attributes,
    /// backup, expiration, effective; bit 7 selects the 17-byte long form instead of 7 bytes.
    private mutating func readTimes(_ d: [UInt8]) {
        let flags = d[0]
        let long = flags & 0x80 != 0
        let width = long ? 17 : 7
        var offset = 1
        for bit in 0..<7 where flags & (1 << bit) != 0 {
            guard offset + width <= d.count else { return }
            let time = long ? CivilTime.iso17(d, at: offset) : CivilTime.iso7(d, at: offset)
            switch bit {
            case 1: modificationTime = time
            case 2: accessTime = time
            case 3: changeTime = time
            default: break
            }
            offset += width
        }
    }
}

/// Assembles an SL symlink target from component records spread over one or more SL entries.
struct SymlinkBuilder {
    private(set) var target = ""
    private(set) var started = false
    /// The previous component ended without its CONTINUE flag, so a "/" goes before the next one.
    private var needsSeparator = false
    private var pendingBytes: [UInt8] = []

    /// Adds the component area of one SL entry (its bytes after the SL flags byte).
    mutating func add(_ components: [UInt8]) {
        started = true
        var position = 0
        while position + 2 <= components.count {
            let flags = components[position]
            let length = Int(components[position + 1])
            let content = components.slice(position + 2, length)
            position += 2 + length
            var piece: [UInt8]
            if flags & 0x08 != 0 {            // ROOT
                flush()
                target = "/"
                needsSeparator = false
                continue
            } else if flags & 0x02 != 0 {     // CURRENT
                piece = Array(".".utf8)
            } else if flags & 0x04 != 0 {     // PARENT
                piece = Array("..".utf8)
            } else if flags & 0x10 != 0 || flags & 0x20 != 0 {   // VOLROOT, HOST: implementation-defined
                piece = []
            } else {
                piece = content
            }
            if pendingBytes.isEmpty && needsSeparator && !target.hasSuffix("/") { append("/") }
            pendingBytes.append(contentsOf: piece)
            if flags & 0x01 == 0 {            // component complete
                flush()
                needsSeparator = true
            }
        }
    }

    private mutating func flush() {
        if !pendingBytes.isEmpty { append(String(decoding: pendingBytes, as: UTF8.self)) }
        pendingBytes = []
    }

    private mutating func append(_ text: String) {
        guard target.utf8.count + text.utf8.count <= RockRidgeInfo.maxTargetBytes else { return }
        target += text
    }

    var finished: String {
        var copy = self
        copy.flush()
        return copy.target
    }
}
