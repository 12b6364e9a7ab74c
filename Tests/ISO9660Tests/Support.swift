import Foundation
import TestSupport
import XCTest
@testable import ISO9660

/// A `SectorReader` over an image file, with `pread`.
final class FileSectorReader: SectorReader, @unchecked Sendable {
    let fd: Int32
    let sectorCount: UInt64
    let size: UInt64

    init(path: String) throws {
        fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw POSIXError(.ENOENT) }
        var st = stat()
        fstat(fd, &st)
        size = UInt64(st.st_size)
        sectorCount = (size + 2047) / 2048
    }

    deinit { close(fd) }

    func readSectors(_ sector: UInt64, count: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        guard count >= 0, buffer.count == count * 2048, sector + UInt64(count) <= sectorCount else { throw POSIXError(.EINVAL) }
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(sector * 2048) + off_t(done))
            if n < 0 { throw POSIXError(.EIO) }
            if n == 0 { break }
            done += n
        }
        // A short last sector reads as zeros.
        if done < buffer.count { memset(buffer.baseAddress! + done, 0, buffer.count - done) }
    }
}

/// A `SectorReader` over bytes in memory (for hand-built and mutated images).
struct MemorySectorReader: SectorReader {
    let bytes: [UInt8]
    var sectorCount: UInt64 { UInt64((bytes.count + 2047) / 2048) }

    func readSectors(_ sector: UInt64, count: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        guard count >= 0, buffer.count == count * 2048, sector + UInt64(count) <= sectorCount else { throw POSIXError(.EINVAL) }
        let start = Int(sector) * 2048
        let end = min(bytes.count, start + buffer.count)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        if end > start {
            bytes.withUnsafeBytes { source in
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[start..<end]))
            }
        }
    }
}


enum Tool {
    /// Whether an executable is installed.
    static func available(_ name: String) -> Bool {
        ["/usr/bin/", "/usr/sbin/", "/bin/", "/sbin/"].contains { FileManager.default.isExecutableFile(atPath: $0 + name) }
    }

    /// Runs a tool, throwing with its stderr on failure.
    @discardableResult
    static func run(_ name: String, _ arguments: [String], in directory: String? = nil, timeout: Double = 180) throws -> String {
        let path = ["/usr/bin/", "/usr/sbin/", "/bin/", "/sbin/"].map { $0 + name }.first { FileManager.default.isExecutableFile(atPath: $0) } ?? name
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("tool-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        defer { try? handle.close(); try? FileManager.default.removeItem(at: log) }
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            throw NSError(domain: "Tool", code: -1, userInfo: [NSLocalizedDescriptionKey: "\(name) did not finish in \(Int(timeout)) s"])
        }
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        guard process.terminationStatus == 0 else {
            throw NSError(domain: "Tool", code: Int(process.terminationStatus),
                          userInfo: [NSLocalizedDescriptionKey: "\(name) \(arguments.joined(separator: " ")) failed: \(output.suffix(2000))"])
        }
        return output
    }
}

/// A temporary directory removed at the end of a test.
final class TempDir {
    let path: String
    init(_ label: String) throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("iso9660-\(label)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func sub(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}
