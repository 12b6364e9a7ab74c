import Foundation
import Glibc
import XCTest

/// The Redfish VirtualMedia service (`--redfish`), driven by real clients: sushy, DMTF's
/// protocol validator, and curl for the error cases.
final class RedfishTests: MountTestCase {
    var base = ""
    var nginx: Nginx!
    var www: String { fx.root + "/www" }
    let password = "redfish-pw"

    /// `NAME UID pbkdf2-sha256$...` as Python's hashlib makes it.
    func userLine(_ name: String, uid: UInt32, password: String) -> String {
        sh("python3 -c \"import hashlib,os; s=os.urandom(16); print('\(name) \(uid) pbkdf2-sha256\\$100000\\$' + s.hex() + '\\$' + hashlib.pbkdf2_hmac('sha256', b'\(password)', s, 100000).hex())\"").out
    }

    override func setUpWithError() throws {
        fx = try MountFixture()
        try FileManager.default.createDirectory(atPath: www, withIntermediateDirectories: true)
        nginx = try Nginx(prefix: fx.root + "/web", root: www)
        let users = fx.root + "/redfish.users"
        try (userLine("admin", uid: 0, password: password) + userLine("nobody", uid: 65534, password: password))
            .write(toFile: users, atomically: true, encoding: .utf8)
        chmod(users, 0o600)
        XCTAssertEqual(sh("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout '\(fx.root)/rf.key' -out '\(fx.root)/rf.crt'").status, 0)
        fx.extraArgs += ["--media-url", nginx.url(""), "--redfish", "127.0.0.1:0", "--redfish-users", users,
                         "--redfish-cert", fx.root + "/rf.crt", "--redfish-key", fx.root + "/rf.key"]
        try fx.start()
        let line = fx.logText.split(separator: "\n").first { $0.contains("Redfish service on ") } ?? ""
        base = String(line.split(separator: " ").last ?? "").replacingOccurrences(of: "/redfish/v1", with: "")
        XCTAssertTrue(base.hasPrefix("https://127.0.0.1:"), fx.logText)
        makeDrive("web01", "cd0")
        XCTAssertEqual(sh("xorriso -as mkisofs -quiet -R -o '\(www)/boot.iso' /etc/hostname").status, 0)
    }

    override func tearDown() {
        nginx?.stop()
        super.tearDown()
    }

    /// curl against the service (the test's certificate trusted); returns status code and body.
    func curl(_ method: String, _ path: String, json: String? = nil, user: String = "admin", password pw: String? = nil) -> (Int, String) {
        let body = json.map { "-H 'Content-Type: application/json' -d '\($0)'" } ?? ""
        let r = sh("curl -s --cacert '\(fx.root)/rf.crt' -u '\(user):\(pw ?? password)' -X \(method) \(body) -w '\\n%{http_code}' '\(base)\(path)'")
        let parts = r.out.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(parts.last ?? "") ?? -1, parts.dropLast().joined(separator: "\n"))
    }

    func testSushyInsertsReadsAndEjectsAsIronicDoes() throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Servers/redfish_sushy.py").path
        let image = nginx.url("boot.iso")
        let r = sh("REQUESTS_CA_BUNDLE='\(fx.root)/rf.crt' python3 '\(script)' '\(base)' admin '\(password)' web01 cd0 '\(image)'")
        XCTAssertEqual(r.status, 0, r.out + r.err)
        XCTAssertTrue(r.out.contains("sushy: ok"), r.out + r.err)
        // The same operations the tree does, named for the Redfish user.
        XCTAssertTrue(fx.logText.contains("web01/cd0: inserted \(image) for uid 0 (redfish:admin)"), fx.logText)
        XCTAssertTrue(fx.logText.contains("web01/cd0: ejected \(image) for uid 0 (redfish:admin)"), fx.logText)
        XCTAssertEqual(fx.status("web01", "cd0")["state"], "empty")
    }

    func testActionsAreTheTreesOperationsWithItsChecksAndErrors() throws {
        let path = "/redfish/v1/Systems/web01/VirtualMedia/cd0"
        let insert = path + "/Actions/VirtualMedia.InsertMedia"
        XCTAssertEqual(curl("GET", path, password: "wrong").0, 401)
        XCTAssertEqual(curl("POST", insert, json: "{\"Image\": \"\(nginx.url("boot.iso"))\"}").0, 204)
        XCTAssertEqual(fx.status("web01", "cd0")["media"], nginx.url("boot.iso"), "the tree shows the Redfish insert")
        XCTAssertEqual(sh("cmp '\(fx.path("guests/web01/cd0/disc"))' '\(www)/boot.iso'").status, 0)
        let (code, doc) = curl("GET", path)
        XCTAssertEqual(code, 200)
        XCTAssertTrue(doc.contains("\"Inserted\":true") && doc.contains("\"WriteProtected\":true"), doc)
        // Loaded elsewhere and not sharable: EBUSY, ResourceInUse.
        makeDrive("web02", "cd1")
        let busy = curl("POST", "/redfish/v1/Managers/vmediafs/VirtualMedia/cd1/Actions/VirtualMedia.InsertMedia",
                        json: "{\"Image\": \"\(nginx.url("boot.iso"))\"}")
        XCTAssertEqual(busy.0, 409)
        XCTAssertTrue(busy.1.contains("ResourceInUse"), busy.1)
        // Outside the prefixes: EPERM, InsufficientPrivilege; a missing file: 400 with the reason.
        let outside = curl("POST", insert, json: "{\"Image\": \"http://127.0.0.1:1/x.iso\"}")
        XCTAssertEqual(outside.0, 403)
        XCTAssertTrue(outside.1.contains("InsufficientPrivilege") && outside.1.contains("no --media-url prefix"), outside.1)
        XCTAssertEqual(curl("POST", insert, json: "{\"Image\": \"/no/such.iso\"}").0, 400)
        XCTAssertEqual(curl("POST", insert, json: "{\"Image\": \"x\", \"WriteProtected\": false}").0, 400)
        XCTAssertEqual(curl("POST", insert, json: "not json").0, 400)
        XCTAssertEqual(fx.status("web01", "cd0")["media"], nginx.url("boot.iso"), "refusals leave the media")
        // A user mapped to a uid that may not write the drive directory (root's, 0755).
        let denied = curl("POST", path + "/Actions/VirtualMedia.EjectMedia", user: "nobody")
        XCTAssertEqual(denied.0, 403)
        XCTAssertEqual(fx.status("web01", "cd0")["state"], "loaded")
        // PATCH, as older clients eject.
        XCTAssertEqual(curl("PATCH", path, json: "{\"Image\": null, \"Inserted\": false}").0, 204)
        XCTAssertEqual(fx.status("web01", "cd0")["state"], "empty")
        XCTAssertEqual(curl("GET", "/redfish/v1/Systems/nosuch").0, 404)
    }

    func testDMTFProtocolValidatorFindsNoFailureInWhatIsImplemented() throws {
        let report = fx.root + "/protocol-report"
        let r = sh("REQUESTS_CA_BUNDLE='\(fx.root)/rf.crt' rf_protocol_validator -r '\(base)' -u admin -p '\(password)' --report-dir '\(report)'",
                   timeout: 600)
        XCTAssertEqual(r.status == -1 || r.status == -2, false, r.err)
        let tsv = sh("cat '\(report)'/*.tsv").out
        var failures: [String] = []
        for line in tsv.split(separator: "\n") {
            let fields: [Substring] = line.split(separator: "\t", omittingEmptySubsequences: false)
            if fields.count > 4 && fields[4] == "FAIL" { failures.append(String(fields[0])) }
        }
        // Known and written down in docs/redfish.md: no AccountService (users come from a
        // file), and swift-nio's HTTP parser answers an unknown method with 400 before the service sees it.
        let known: Set<String> = ["SEC_PRIV_SUPPORT_PREDEFINED_ROLES", "PROTO_HTTP_UNSUPPORTED_METHODS"]
        XCTAssertEqual(Set(failures).subtracting(known), [], "protocol validator failures: \(failures)")
        XCTAssertTrue(r.out.contains("PASS:"), r.out + r.err)
    }

    func testWithoutACertificateASelfSignedOneIsMadeKeptAndItsFingerprintLogged() throws {
        fx.stop()
        fx.extraArgs = fx.extraArgs.filter { !$0.hasSuffix("rf.crt") && !$0.hasSuffix("rf.key") && !$0.hasPrefix("--redfish-cert") && !$0.hasPrefix("--redfish-key") }
        try fx.start()
        let stateDir = (fx.state as NSString).deletingLastPathComponent
        func logged() -> String? {
            fx.logText.split(separator: "\n").last { $0.contains("SHA-256 fingerprint") }.map { String($0.split(separator: " ").last ?? "") }
        }
        let first = try XCTUnwrap(logged(), fx.logText)
        let openssl = sh("openssl x509 -noout -fingerprint -sha256 -in '\(stateDir)/redfish.crt'").out
        XCTAssertTrue(openssl.contains(first), "\(openssl) vs \(first)")
        var st = stat()
        XCTAssertEqual(stat(stateDir + "/redfish.key", &st), 0)
        XCTAssertEqual(st.st_mode & 0o077, 0, "the key is readable by its owner only")
        let line = fx.logText.split(separator: "\n").last { $0.contains("Redfish service on ") } ?? ""
        let url = String(line.split(separator: " ").last ?? "")
        XCTAssertTrue(url.hasPrefix("https://"), fx.logText)
        // Trusted once (its certificate as the CA), it answers with TLS verified.
        let r = sh("curl -s --cacert '\(stateDir)/redfish.crt' -u admin:\(password) '\(url)/Systems'")
        XCTAssertTrue(r.out.contains("web01"), r.out + r.err)
        fx.stop()
        try fx.start()
        XCTAssertEqual(logged(), first, "the same certificate after a restart")
    }
}
