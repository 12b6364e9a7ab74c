import Glibc
import VirtualMedia
import XCTest
@testable import RemoteMedia

/// Which URLs a user may make the root daemon fetch, and the credentials sent to them.
final class URLRulesTests: XCTestCase {
    func errno(_ rules: URLRules, _ url: String) -> Int32 {
        do { _ = try rules.check(url); return 0 } catch { return error.errno }
    }

    func testOnlyURLsUnderAPrefixAtABoundaryPass() throws {
        let rules = try URLRules(prefixes: ["http://Images.Example:8080/iso/", "https://mirror.example/pub"])
        XCTAssertEqual(try rules.check("http://images.example:8080/iso/debian.iso"), "http://images.example:8080/iso/debian.iso")
        XCTAssertEqual(try rules.check("HTTP://IMAGES.example:8080/iso/a.iso"), "http://images.example:8080/iso/a.iso",
                       "scheme and host compare in any case")
        XCTAssertEqual(errno(rules, "https://mirror.example/pub/x.iso"), 0)
        XCTAssertEqual(errno(rules, "https://mirror.example/pub?x=1"), 0)
        XCTAssertEqual(errno(rules, "https://mirror.example/pub"), 0)
        XCTAssertEqual(errno(rules, "https://mirror.example/public/x.iso"), EPERM, "a prefix without / ends at a segment")
        XCTAssertEqual(errno(rules, "https://mirror.example.evil/pub/x.iso"), EPERM)
        XCTAssertEqual(errno(rules, "http://images.example:8081/iso/debian.iso"), EPERM, "another port")
        XCTAssertEqual(errno(rules, "http://images.example:8080/ISO/debian.iso"), EPERM, "paths compare exactly")
        XCTAssertEqual(errno(rules, "http://127.0.0.1/iso/debian.iso"), EPERM)
        XCTAssertEqual(errno(rules, "https://images.example:8080/iso/debian.iso"), EPERM, "another scheme")
    }

    func testMalformedOrClimbingURLsAreRefused() throws {
        let rules = try URLRules(prefixes: ["http://h/iso/"])
        for bad in ["http://h/iso/../secret", "http://h/iso/%2e%2E/secret", "http://h/iso/.%2e/x", "http://h/iso/./x",
                    "http://user:pw@h/iso/x", "http://h/iso/x#frag", "http://h/iso/a b", "http://h/iso/caf\u{e9}",
                    "http://h/iso/x\u{1}", "http:///iso/x", "ftp://h/iso/x"] {
            XCTAssertEqual(errno(rules, bad), EINVAL, bad)
        }
        XCTAssertEqual(errno(rules, "http://h/iso/%2fx"), 0, "an escaped slash is part of one segment")
        XCTAssertEqual(errno(rules, "http://h/iso/a..b.iso"), 0)
    }

    func testPrefixesMustBeHTTPURLs() {
        for bad in ["/srv/iso", "ftp://h/", "http://", "http://u@h/", "http://h/a b"] {
            XCTAssertThrowsError(try URLRules(prefixes: [bad]), bad)
        }
    }

    func testCredentialsComeFromAPrivateFileByLongestPrefix() throws {
        let dir = NSTemporaryDirectory() + "vmfs-creds-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        mkdir(dir, 0o700)
        defer { _ = try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/creds"
        try "# prefix user:password\nhttp://h/ user:pass\n\nhttp://h/private/ admin:s3cret:with:colons\n"
            .write(toFile: file, atomically: false, encoding: .utf8)
        chmod(file, 0o644)
        XCTAssertThrowsError(try URLRules(prefixes: ["http://h/"], credentialsFile: file)) { error in
            XCTAssertEqual((error as? VMError)?.errno, EPERM, "a credentials file others can read is refused")
        }
        chmod(file, 0o600)
        let rules = try URLRules(prefixes: ["http://h/"], credentialsFile: file)
        XCTAssertEqual(rules.authorization(for: "http://h/a.iso"), "Basic dXNlcjpwYXNz")
        XCTAssertEqual(rules.authorization(for: "http://h/private/b.iso"), "Basic " + Base64.encode(Array("admin:s3cret:with:colons".utf8)))
        XCTAssertNil(rules.authorization(for: "http://other/a.iso"))
        try "http://h/ no-colon\n".write(toFile: file, atomically: false, encoding: .utf8)
        XCTAssertThrowsError(try URLRules(prefixes: ["http://h/"], credentialsFile: file))
    }

    func testBase64MatchesRFC4648Vectors() {
        let vectors = ["": "", "f": "Zg==", "fo": "Zm8=", "foo": "Zm9v", "foob": "Zm9vYg==", "fooba": "Zm9vYmE=", "foobar": "Zm9vYmFy"]
        for (plain, encoded) in vectors { XCTAssertEqual(Base64.encode(Array(plain.utf8)), encoded) }
    }
}
