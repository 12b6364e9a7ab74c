import Foundation
import SCSI
import XCTest
@testable import ISCSI

/// The target against initiators nobody here wrote: libiscsi's tools (Debian libiscsi-bin) and
/// QEMU's iscsi block driver (qemu-utils + qemu-block-extra). Skipped when they are not installed.
final class RealInitiatorTests: XCTestCase {
    static let target = "iqn.2026-11.io.vmediafs:guest1"
    static let chapTarget = "iqn.2026-11.io.vmediafs:guest2"
    static let hidden = "iqn.2026-11.io.vmediafs:guest3"
    /// libiscsi's default initiator name for its tools.
    static let libiscsi = "iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test"
    var provider: TestProvider!
    var server: ISCSIServer!
    var drive: OpticalDrive!
    var imagePath = ""

    override func setUpWithError() throws {
        guard tool("iscsi-inq") != nil else { XCTFail("libiscsi-bin is not installed (mountscripts/install-deps.sh --test installs it)"); return }
        imagePath = NSTemporaryDirectory() + "iscsi-test-\(getpid()).iso"
        // 3000 blocks + a short last block, with content that differs block to block.
        var bytes = [UInt8](repeating: 0, count: 3000 * 2048 + 700)
        for i in 0..<bytes.count { bytes[i] = UInt8(truncatingIfNeeded: i &* 31 &+ i >> 11) }
        _ = FileManager.default.createFile(atPath: imagePath, contents: Data(bytes))
        provider = TestProvider()
        drive = OpticalDrive(identity: DeviceIdentity(vendor: "VMEDIAFS", product: "Virtual DVD", revision: "1.0",
                                                      serial: "R1", identifier: 7))
        try drive.insert(Medium(source: FileSource(path: imagePath)))
        let initiators: Set<String> = [Self.libiscsi, "iqn.2008-11.org.linux-kvm"]
        provider.add(Self.target, allowed: initiators, drives: [0: drive])
        provider.add(Self.chapTarget, allowed: initiators, policy: .chap(user: "bob", secret: "bobs-secret-123"),
                     drives: [0: makeDrive()])
        provider.add(Self.hidden, allowed: ["iqn.other"], drives: [0: makeDrive()])
        server = ISCSIServer(provider: provider, port: 0)
        try server.start()
    }

    override func tearDown() {
        server?.stop()
        if !imagePath.isEmpty { try? FileManager.default.removeItem(atPath: imagePath) }
    }

    var portal: String { "127.0.0.1:\(server.boundPort)" }
    func url(_ target: String = RealInitiatorTests.target, lun: Int = 0, auth: String = "") -> String {
        "iscsi://\(auth)\(portal)/\(target)/\(lun)"
    }

    func testIscsiLsShowsOnlyAllowedTargets() {
        let r = runTool(tool("iscsi-ls")!, ["-i", Self.libiscsi, "-s", "iscsi://bob%bobs-secret-123@\(portal)"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("Target:\(Self.target) Portal:\(portal),1"), r.output)
        XCTAssertFalse(r.output.contains(Self.hidden), r.output)
        XCTAssertTrue(r.output.contains("Lun:0    Type:MMC"), r.output)
    }

    func testIscsiInqAndReadCapacity() {
        let inq = runTool(tool("iscsi-inq")!, ["-i", Self.libiscsi, url()])
        XCTAssertEqual(inq.status, 0, inq.output)
        XCTAssertTrue(inq.output.contains("Peripheral Device Type:MMC"), inq.output)
        XCTAssertTrue(inq.output.contains("Removable:1"), inq.output)
        let cap = runTool(tool("iscsi-readcapacity16")!, ["-i", Self.libiscsi, url()])
        XCTAssertEqual(cap.status, 0, cap.output)
        XCTAssertTrue(cap.output.contains("RETURNED LOGICAL BLOCK ADDRESS:3000"), cap.output)  // 3001 blocks
        XCTAssertTrue(cap.output.contains("LOGICAL BLOCK LENGTH IN BYTES:2048"), cap.output)
    }

    func testCHAPAndRefusals() {
        XCTAssertEqual(runTool(tool("iscsi-inq")!, ["-i", Self.libiscsi, url(Self.chapTarget, auth: "bob%bobs-secret-123@")]).status, 0)
        XCTAssertNotEqual(runTool(tool("iscsi-inq")!, ["-i", Self.libiscsi, url(Self.chapTarget, auth: "bob%wrong-secret-1@")]).status, 0)
        XCTAssertNotEqual(runTool(tool("iscsi-inq")!, ["-i", Self.libiscsi, url(Self.chapTarget)]).status, 0)
        XCTAssertNotEqual(runTool(tool("iscsi-inq")!, ["-i", Self.libiscsi, url(Self.hidden)]).status, 0)
        XCTAssertNotEqual(runTool(tool("iscsi-inq")!, ["-i", "iqn.intruder", url()]).status, 0)
        XCTAssertEqual(server.counts.sessions, 0)
    }

    func testQemuReadsTheDiscByteExact() throws {
        guard let qemuImg = tool("qemu-img") else { XCTFail("qemu-utils is not installed (mountscripts/install-deps.sh --test installs it)"); return }
        let info = runTool(qemuImg, ["info", url()])
        XCTAssertEqual(info.status, 0, info.output)
        XCTAssertTrue(info.output.contains("(6146048 bytes)"), info.output)
        let out = NSTemporaryDirectory() + "iscsi-out-\(getpid()).raw"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let convert = runTool(qemuImg, ["convert", "-O", "raw", url(), out], timeout: 60)
        XCTAssertEqual(convert.status, 0, convert.output)
        // The disc is whole blocks: the image's bytes, then zeros to the end of the last block.
        let got = try Data(contentsOf: URL(fileURLWithPath: out))
        let want = try Data(contentsOf: URL(fileURLWithPath: imagePath))
        XCTAssertEqual(got.count, 3001 * 2048)
        XCTAssertEqual(got.prefix(want.count), want)
        XCTAssertTrue(got.suffix(from: want.count).allSatisfy { $0 == 0 })
        // Again with CRC32C header digests (libiscsi offers no data digest; the mini initiator tests those).
        let opts = "driver=raw,file.driver=iscsi,file.transport=tcp,file.portal=\(portal),file.target=\(Self.target)," +
            "file.lun=0,file.header-digest=crc32c"
        try? FileManager.default.removeItem(atPath: out)
        let digested = runTool(qemuImg, ["convert", "-O", "raw", "--image-opts", opts, out], timeout: 60)
        XCTAssertEqual(digested.status, 0, digested.output)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out)), got)
        if let qemuIo = tool("qemu-io") {
            let r = runTool(qemuIo, ["-r", "-c", "read -P 0 6144700 1348", "-c", "read -v 0 16", url()])
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertTrue(r.output.contains("00000000:  00 1f 3e 5d 7c 9b ba d9"), r.output)
        }
    }

    /// iscsi-test-cu families: each run against a freshly loaded medium; the table goes to the
    /// test log and to .build/iscsi-test-cu.txt. Families that apply to a read-only MMC LUN must pass.
    func testIscsiTestCuFamilies() throws {
        guard let cu = tool("iscsi-test-cu") else { XCTFail("iscsi-test-cu is not installed (mountscripts/install-deps.sh --test installs it)"); return }
        let mustPass = ["SCSI.Inquiry", "SCSI.TestUnitReady", "SCSI.Read6", "SCSI.Read10", "SCSI.Read12",
                        "SCSI.Read16", "SCSI.ReadCapacity10", "SCSI.ReadCapacity16", "SCSI.ReportSupportedOpcodes",
                        "SCSI.PreventAllow", "SCSI.ModeSense6", "SCSI.ReadOnly", "SCSI.NoMedia", "SCSI.Mandatory",
                        "SCSI.Write10", "SCSI.Write12", "SCSI.Write16", "SCSI.WriteVerify10",
                        "iSCSI.iSCSIcmdsn", "iSCSI.iSCSIdatasn", "iSCSI.iSCSIResiduals", "iSCSI.iSCSITMF"]
        let recordedOnly = ["SCSI.StartStopUnit", "SCSI.Verify10", "SCSI.Verify12", "SCSI.Verify16",
                            "SCSI.Prefetch10", "SCSI.Unmap", "SCSI.Reserve6", "SCSI.PrinReadKeys",
                            "SCSI.ProutRegister", "SCSI.ProutReserve"]
        var table = "| family | tests | passed | failed | skipped | verdict |\n|---|---|---|---|---|---|\n"
        for family in mustPass + recordedOnly {
            if !drive.state.mediumPresent { try drive.insert(Medium(source: FileSource(path: imagePath))) }
            let r = runTool(cu, ["-n", "-t", family, url()], timeout: 60)
            let counts = r.output.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("tests") }?
                .split(separator: " ").compactMap { Int($0) } ?? []
            let skipped = r.output.components(separatedBy: "[SKIPPED]").count - 1
            let total = counts.first ?? 0, passed = counts.count > 2 ? counts[2] : 0, failed = counts.count > 3 ? counts[3] : -1
            // A family whose every test was skipped passed nothing: that is no pass.
            let verdict = failed == 0 && passed > 0 ? "pass" : "FAIL"
            table += "| \(family) | \(total) | \(passed) | \(failed) | \(skipped) | \(verdict) |\n"
            if mustPass.contains(family) {
                XCTAssertEqual(verdict, "pass", "\(family):\n\(r.output.suffix(3000))")
            }
        }
        print(table)
        try? table.write(toFile: ".build/iscsi-test-cu.txt", atomically: true, encoding: .utf8)
    }
}
