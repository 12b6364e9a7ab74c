import Foundation
import XCTest
@testable import ISO9660

/// What the differential tests compare for one path of a tree.
struct EntrySnapshot: Equatable, CustomStringConvertible {
    var kind: NodeKind
    var size: UInt64
    /// Permission bits (0o7777), or nil when the compared formats do not record them.
    var permissions: UInt32?
    var symlinkTarget: String?
    /// A digest of the content (regular files only).
    var digest: UInt64?

    var description: String {
        "\(kind) size=\(size) mode=\(permissions.map { String($0, radix: 8) } ?? "-") target=\(symlinkTarget ?? "-") digest=\(digest.map { String($0, radix: 16) } ?? "-")"
    }
}

/// FNV-1a over bytes, good enough to compare file contents.
func digest(_ bytes: [UInt8], into hash: inout UInt64) {
    for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
}

enum Snapshot {
    static let fnvStart: UInt64 = 0xcbf2_9ce4_8422_2325

    /// Walks a host directory tree (not following symlinks).
    static func host(_ root: String, permissions: Bool) throws -> [String: EntrySnapshot] {
        var result: [String: EntrySnapshot] = [:]
        func walk(_ dir: String, _ prefix: String) throws {
            for name in try FileManager.default.contentsOfDirectory(atPath: dir) {
                let path = dir + "/" + name, rel = prefix + name
                var st = stat()
                guard lstat(path, &st) == 0 else { throw POSIXError(.EIO) }
                let perms: UInt32? = permissions ? UInt32(st.st_mode) & 0o7777 : nil
                switch UInt32(st.st_mode) & UInt32(S_IFMT) {
                case UInt32(S_IFDIR):
                    result[rel] = EntrySnapshot(kind: .directory, size: 0, permissions: perms)
                    try walk(path, rel + "/")
                case UInt32(S_IFLNK):
                    let target = try FileManager.default.destinationOfSymbolicLink(atPath: path)
                    result[rel] = EntrySnapshot(kind: .symlink, size: UInt64(target.utf8.count), permissions: nil, symlinkTarget: target)
                case UInt32(S_IFREG):
                    var hash = fnvStart
                    digest([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))), into: &hash)
                    result[rel] = EntrySnapshot(kind: .regularFile, size: UInt64(st.st_size), permissions: perms, digest: hash)
                default:
                    result[rel] = EntrySnapshot(kind: .other, size: 0, permissions: perms)
                }
            }
        }
        try walk(root, "")
        return result
    }

    /// Walks a `Volume` through its public API, reading every file in chunks.
    static func volume(_ volume: Volume, permissions: Bool, chunk: Int = 65536) throws -> [String: EntrySnapshot] {
        var result: [String: EntrySnapshot] = [:]
        func walk(_ dir: NodeID, _ prefix: String) throws {
            for entry in try volume.children(of: dir) {
                let rel = prefix + entry.name
                let a = try volume.attributes(of: entry.id)
                XCTAssertEqual(a.kind, entry.kind, rel)
                XCTAssertEqual(try volume.lookup(entry.name, in: dir)?.id, entry.id, rel)
                let perms: UInt32? = permissions ? a.mode & 0o7777 : nil
                switch a.kind {
                case .directory:
                    XCTAssertEqual(a.mode & 0o170000, 0o040000, rel)
                    result[rel] = EntrySnapshot(kind: .directory, size: 0, permissions: perms)
                    try walk(entry.id, rel + "/")
                case .symlink:
                    XCTAssertEqual(a.mode & 0o170000, 0o120000, rel)
                    result[rel] = EntrySnapshot(kind: .symlink, size: a.size, permissions: nil, symlinkTarget: a.symlinkTarget)
                case .regularFile:
                    XCTAssertEqual(a.mode & 0o170000, 0o100000, rel)
                    var hash = fnvStart
                    var offset: UInt64 = 0
                    while offset < a.size {
                        let bytes = try volume.read(entry.id, at: offset, count: chunk)
                        XCTAssertFalse(bytes.isEmpty, rel)
                        if bytes.isEmpty { break }
                        digest(bytes, into: &hash)
                        offset += UInt64(bytes.count)
                    }
                    result[rel] = EntrySnapshot(kind: .regularFile, size: a.size, permissions: perms, digest: hash)
                case .other:
                    result[rel] = EntrySnapshot(kind: .other, size: 0, permissions: perms)
                }
            }
        }
        try walk(Volume.rootID, "")
        return result
    }

    /// Asserts two snapshots are equal, listing the first differences.
    static func assertEqual(_ actual: [String: EntrySnapshot], _ expected: [String: EntrySnapshot], _ label: String,
                            file: StaticString = #filePath, line: UInt = #line) {
        var problems: [String] = []
        for key in Set(actual.keys).union(expected.keys).sorted() where actual[key] != expected[key] {
            problems.append("\(key): got \(actual[key]?.description ?? "nothing"), expected \(expected[key]?.description ?? "nothing")")
        }
        XCTAssert(problems.isEmpty, "\(label): \(problems.count) differences (of \(expected.count) entries):\n" + problems.prefix(15).joined(separator: "\n"), file: file, line: line)
    }
}
