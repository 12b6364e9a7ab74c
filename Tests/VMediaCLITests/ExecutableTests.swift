import Foundation
import XCTest
@testable import VMediaCLI

/// The built `vmedia` run as a user would: exit statuses, messages on standard error,
/// completion scripts.
final class ExecutableTests: XCTestCase {
    struct Run { var status: Int32; var out: String; var err: String }

    /// The `vmedia` next to the test bundle.
    var executable: URL {
        let candidates = [Bundle.main.bundleURL, Bundle(for: ExecutableTests.self).bundleURL,
                          Bundle(for: ExecutableTests.self).bundleURL.deletingLastPathComponent()]
        let found = candidates.map { $0.appendingPathComponent("vmedia") }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
        return found ?? candidates[0].appendingPathComponent("vmedia")
    }

    func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Run {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["VMEDIAFS_MOUNT"] = nil
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, out: String(decoding: outData, as: UTF8.self),
                   err: String(decoding: errData, as: UTF8.self))
    }

    var fake: FakeMount!
    override func setUpWithError() throws {
        // The test target depends on the executable, so it is always built: its absence is a failure.
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: executable.path), "vmedia not built at \(executable.path)")
        fake = try FakeMount()
    }
    override func tearDown() { fake?.tearDown() }

    func testBashCompletionScript() throws {
        let r = try run(["--generate-completion-script", "bash"])
        XCTAssertEqual(r.status, 0)
        XCTAssertTrue(r.out.hasPrefix("#!/bin/bash"), r.out)
        XCTAssertTrue(r.out.contains("complete") && r.out.contains("vmedia"))
        for sub in ["mkvopt", "lsvopt", "loadopt", "unloadopt", "lsrep"] { XCTAssertTrue(r.out.contains(sub), sub) }
    }

    func testZshAndFishCompletionScripts() throws {
        XCTAssertTrue(try run(["--generate-completion-script", "zsh"]).out.contains("#compdef vmedia"))
        XCTAssertTrue(try run(["--generate-completion-script", "fish"]).out.contains("complete -c 'vmedia'"))
    }

    func testMissingMountExitsOneAndNamesTheOption() throws {
        let r = try run(["lsvopt", "--mount", NSTemporaryDirectory()])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.hasPrefix("vmedia: "), r.err)
        XCTAssertTrue(r.err.contains("not a vmediafs mount"), r.err)
    }

    func testUsageErrorExitsOne() throws {
        let r = try run(["mkvopt"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.contains("Missing expected argument"), r.err)
        XCTAssertEqual(try run(["unloadopt", "x", "--timeout", "3"]).status, 1, "--timeout needs --wait")
        XCTAssertEqual(try run(["--help"]).status, 0)
    }

    func testWholeSessionThroughTheEnvironmentVariable() throws {
        let env = ["VMEDIAFS_MOUNT": fake.root]
        XCTAssertEqual(try run(["mkguest", "web01"], environment: env).status, 0)
        let made = try run(["mkvopt", "web01"], environment: env)
        XCTAssertEqual(made.status, 0)
        XCTAssertEqual(made.out, "vtopt0\n")
        try fake.settle()
        let image = try fake.makeImage("a.iso", bytes: 2048)
        XCTAssertEqual(try run(["loadopt", "vtopt0", "a.iso"], environment: env).status, 0)
        try fake.settle()

        let list = try run(["lsvopt", "--json"], environment: env)
        XCTAssertEqual(list.status, 0)
        let drives = try XCTUnwrap(parseJSON(list.out) as? [[String: Any]])
        XCTAssertEqual(drives.first?["media"] as? String, image)

        let again = try run(["loadopt", "vtopt0", "a.iso"], environment: env)
        XCTAssertEqual(again.status, 2)
        XCTAssertEqual(again.err, "vmedia: web01/vtopt0: media is loaded (\(image)); use --force to replace it\n")

        let unknown = try run(["status", "vtopt9"], environment: env)
        XCTAssertEqual(unknown.status, 1)
        XCTAssertEqual(unknown.err, "vmedia: vtopt9: no such drive\n")

        let status = try run(["status", "web01/vtopt0"], environment: env)
        XCTAssertTrue(status.out.contains("state=loaded\n"))
        XCTAssertEqual(try run(["lsrep"], environment: env).out.split(separator: "\n").last.map(String.init),
                       "a.iso  2.0K  no        web01/vtopt0")
        XCTAssertEqual(try run(["unloadopt", "vtopt0"], environment: env).status, 0)
        // The daemon's `status` is virtual; a plain directory must lose it before rmdir.
        try FileManager.default.removeItem(atPath: fake.root + "/guests/web01/vtopt0/status")
        XCTAssertEqual(try run(["rmvopt", "vtopt0"], environment: env).status, 0)
        XCTAssertEqual(try run(["rmguest", "web01"], environment: env).status, 0)
        XCTAssertEqual(try run(["lsguest"], environment: env).out, "GUEST  OWNER  DRIVES\n")
    }

    func testMountOptionWinsOverEnvironment() throws {
        let other = try FakeMount()
        defer { other.tearDown() }
        try FileManager.default.createDirectory(atPath: fake.root + "/guests/here", withIntermediateDirectories: false)
        let r = try run(["lsguest", "--mount", fake.root, "--json"], environment: ["VMEDIAFS_MOUNT": other.root])
        XCTAssertEqual((parseJSON(r.out) as? [[String: Any]])?.first?["guest"] as? String, "here")
    }

    func testMountAndJSONBeforeTheSubcommand() throws {
        try FileManager.default.createDirectory(atPath: fake.root + "/guests/early", withIntermediateDirectories: false)
        let r = try run(["--mount", fake.root, "--json", "lsguest"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual((parseJSON(r.out) as? [[String: Any]])?.first?["guest"] as? String, "early")
        let bad = try run(["--mount", fake.root, "--json", "mkguest", "x"])
        XCTAssertEqual(bad.status, 1, "mkguest has no --json: a usage error")
    }

    func testEventsCountStops() throws {
        try FakeMount.writeText(fake.root + "/events", "T1 create g/d\nT2 insert g/d media=/x.iso\nT3 eject g/d\n")
        let r = try run(["events", "--count", "2", "--mount", fake.root])
        XCTAssertEqual(r.status, 0)
        XCTAssertEqual(r.out, "T1 create g/d\nT2 insert g/d media=/x.iso\n")
    }
}
