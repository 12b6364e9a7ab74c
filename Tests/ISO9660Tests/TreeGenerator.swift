import Foundation
import TestSupport
@testable import ISO9660

/// Makes random source trees for the differential tests.
struct TreeGenerator {
    struct Style {
        /// Longest generated name, in UTF-16 units (Joliet keeps at most 64).
        var maxNameLength = 40
        var unicode = true
        /// Only characters of the Basic Multilingual Plane (UCS-2, as Joliet stores names).
        var bmpOnly = false
        var longNames = true
        var symlinks = true
        /// A 30-component symlink target (several SL entries and a continuation area). genisoimage
        /// 1.1.11 loops forever on it in some trees, so its tests leave it out.
        var longSymlink = true
        var deepChain = 0
        var files = 40
        var directories = 8
        var randomModes = true
        var maxFileSize = 70_000
    }

    var random: SeededRandom
    let style: Style
    private var used: Set<String> = []

    init(seed: UInt64, style: Style) {
        random = SeededRandom(seed: seed)
        self.style = style
    }

    static let ascii = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=.,~ ")
    static let unicode = Array("éèüßçñøåÆœ日本語中文한국어Ωλπж🎵😀€™")

    mutating func name() -> String {
        while true {
            let length = Int.random(in: 1...style.maxNameLength, using: &random)
            var name = ""
            for _ in 0..<length {
                if style.unicode && Int.random(in: 0..<5, using: &random) == 0 {
                    let character = Self.unicode.randomElement(using: &random)!
                    if style.bmpOnly && character.utf16.count > 1 { continue }
                    name.append(character)
                } else {
                    name.append(Self.ascii.randomElement(using: &random)!)
                }
            }
            name = name.trimmingCharacters(in: .whitespaces)
            // Keep clear of names tools treat specially.
            if name.isEmpty || name.hasPrefix(".") || name.hasPrefix("-") || name.hasSuffix(".") || name.utf16.count > style.maxNameLength { continue }
            if used.insert(name.lowercased()).inserted { return name }
        }
    }

    mutating func bytes(_ count: Int) -> Data {
        var bytes = [UInt8](repeating: 0, count: count)
        var i = 0
        while i < count {
            var word = random.next()
            for _ in 0..<8 where i < count { bytes[i] = UInt8(truncatingIfNeeded: word); word >>= 8; i += 1 }
        }
        return Data(bytes)
    }

    mutating func writeFile(_ path: String) throws {
        let size: Int
        switch Int.random(in: 0..<10, using: &random) {
        case 0: size = 0
        case 1: size = 2048 * Int.random(in: 1...4, using: &random)
        default: size = Int.random(in: 1...style.maxFileSize, using: &random)
        }
        try bytes(size).write(to: URL(fileURLWithPath: path))
        if style.randomModes {
            chmod(path, [0o644, 0o755, 0o600, 0o444, 0o640, 0o4755, 0o700].randomElement(using: &random)!)
        }
    }

    /// Fills `root` with a random tree and returns nothing; the tree is the expectation.
    mutating func populate(_ root: String) throws {
        var directories = [root]
        for _ in 0..<style.directories {
            let parent = directories.randomElement(using: &random)!
            let path = parent + "/" + name()
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            directories.append(path)
        }
        for _ in 0..<style.files {
            try writeFile(directories.randomElement(using: &random)! + "/" + name())
        }
        if style.longNames {
            // 255-byte names: ASCII, and two-byte UTF-8 characters (127 x 2 + 1).
            try writeFile(root + "/" + String(repeating: "L", count: 254) + "x")
            try writeFile(directories.last! + "/" + String(repeating: "é", count: 127) + "z")
            try FileManager.default.createDirectory(atPath: root + "/" + String(repeating: "d", count: 255), withIntermediateDirectories: false)
        }
        if style.symlinks {
            let links: [(String, String)] = [
                ("rel-link", "sub/../file"), ("abs-link", "/etc/passwd"), ("dangling", "does/not/exist"),
                ("dot-link", "./x/../y"), ("parent-link", "../.."), ("root-link", "/"),
                ("é-unicode-link", "日本/ファイル"),
            ] + (style.longSymlink ? [("long-link", (0..<30).map { "component\($0)" }.joined(separator: "/"))] : [])
            for (linkName, target) in links {
                let dir = directories.randomElement(using: &random)!
                try FileManager.default.createSymbolicLink(atPath: dir + "/" + linkName, withDestinationPath: target)
            }
        }
        if style.deepChain > 0 {
            var path = root + "/deep"
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            for level in 1...style.deepChain {
                path += "/level\(level)"
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
                try writeFile(path + "/file\(level)")
            }
        }
        if style.randomModes {
            for dir in directories.dropFirst() {
                chmod(dir, [0o755, 0o750, 0o700, 0o555].randomElement(using: &random)!)
            }
        }
    }
}
