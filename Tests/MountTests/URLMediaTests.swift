import Foundation
import Glibc
import XCTest

/// nginx on 127.0.0.1 serving `root`: a real range-capable server (ETag, Last-Modified).
final class Nginx {
    let port: Int
    let scheme: String
    private let process: Process

    /// `server` is extra configuration inside the server block; `tls` serves HTTPS with a
    /// self-signed certificate made here (which the daemon must refuse: no system CA signed it).
    init(prefix: String, root: String, server: String = "", tls: Bool = false) throws {
        try FileManager.default.createDirectory(atPath: prefix, withIntermediateDirectories: true)
        if tls {
            let r = sh("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -keyout '\(prefix)/tls.key' -out '\(prefix)/tls.crt'")
            guard r.status == 0 else { throw NSError(domain: "openssl: \(r.err)", code: 1) }
        }
        var lastError = ""
        for _ in 0..<20 {
            let port = Int.random(in: 20000...60000)
            let conf = """
                user root; worker_processes 1; pid \(prefix)/nginx.pid; error_log \(prefix)/nginx-error.log;
                events { worker_connections 256; }
                http { access_log \(prefix)/nginx-access.log; client_body_temp_path \(prefix)/nginx-body;
                       proxy_temp_path \(prefix)/nginx-proxy; fastcgi_temp_path \(prefix)/nginx-fastcgi;
                       uwsgi_temp_path \(prefix)/nginx-uwsgi; scgi_temp_path \(prefix)/nginx-scgi;
                       types { application/octet-stream iso; }
                       server { listen 127.0.0.1:\(port)\(tls ? " ssl" : ""); root \(root); \(server)
                                \(tls ? "ssl_certificate \(prefix)/tls.crt; ssl_certificate_key \(prefix)/tls.key;" : "") } }
                """
            try conf.write(toFile: prefix + "/nginx.conf", atomically: true, encoding: .utf8)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/sbin/nginx")
            p.arguments = ["-p", prefix, "-c", prefix + "/nginx.conf", "-g", "daemon off;"]
            p.standardError = FileHandle.nullDevice
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            let deadline = Date().addingTimeInterval(5)
            while p.isRunning && Date() < deadline {
                if sh("curl -sk -o /dev/null -w '%{http_code}' \(tls ? "https" : "http")://127.0.0.1:\(port)/").out != "000" {
                    self.port = port; process = p; scheme = tls ? "https" : "http"; return
                }
                usleep(20_000)
            }
            if p.isRunning { p.terminate(); p.waitUntilExit() }
            lastError = readText(prefix + "/nginx-error.log") ?? ""
        }
        throw NSError(domain: "nginx did not start: \(lastError)", code: 1)
    }

    func url(_ name: String) -> String { "\(scheme)://127.0.0.1:\(port)/\(name)" }

    func stop() {
        kill(process.processIdentifier, SIGTERM)   // fast shutdown: no waiting for idle keep-alive connections
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
    }
}

/// Media from http(s) URLs (`--media-url`), served by nginx and by a server that misbehaves.
final class URLMediaTests: MountTestCase {
    var www: String { fx.root + "/www" }
    var nginx: Nginx!
    var servers: [Process] = []

    override func setUpWithError() throws {
        fx = try MountFixture()
        try FileManager.default.createDirectory(atPath: www, withIntermediateDirectories: true)
        nginx = try Nginx(prefix: fx.root, root: www)
        fx.extraArgs += ["--media-url", nginx.url("")]
        try fx.start()
    }

    override func tearDown() {
        nginx?.stop()
        for p in servers where p.isRunning { p.terminate(); p.waitUntilExit() }
        super.tearDown()
    }

    /// An ISO in the web root holding hello.txt and a file of `megabytes` MiB of random bytes.
    @discardableResult
    func makeServedISO(_ name: String, megabytes: Int = 12) throws -> String {
        try FileManager.default.createDirectory(atPath: www + "/" + (name as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        let iso = try fx.makeISO(name, files: ["hello.txt": "hello from the web\n"], in: www)
        let src = fx.sourceTree(name)
        XCTAssertEqual(sh("head -c \(megabytes)M /dev/urandom > '\(src)/big.bin' && xorriso -as mkisofs -quiet -R -J -o '\(iso)' '\(src)'").status, 0)
        return iso
    }

    /// `Tests/Servers/range_server.py` serving the web root; its URL prefix.
    func startRangeServer() throws -> String {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Servers/range_server.py").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", script, www]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        servers.append(p)
        let port = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return "http://127.0.0.1:\(port)/"
    }

    /// Restarts the daemon with `args` added.
    func restart(with args: [String]) throws {
        fx.stop()
        fx.extraArgs += args
        try fx.start()
    }

    func testAURLInsertsAndReadsAsTheImageDoes() throws {
        makeDrive()
        let iso = try makeServedISO("web.iso")
        let url = nginx.url("web.iso")
        XCTAssertEqual(writeErrno(mediaFile, url + "\n"), 0, fx.status("aix01", "cd0")["last_error"] ?? "")
        let s = fx.status("aix01", "cd0")
        XCTAssertEqual(s["kind"], "url")
        XCTAssertEqual(s["media"], url)
        let size = try FileManager.default.attributesOfItem(atPath: iso)[.size] as! UInt64
        XCTAssertEqual(s["size"], String(size))
        XCTAssertEqual(readText(mediaFile), url + "\n")
        let cmp = sh("cmp '\(disc)' '\(iso)'")
        XCTAssertEqual(cmp.status, 0, cmp.out + cmp.err)
        XCTAssertEqual(readText(fx.path("guests/aix01/cd0/contents/hello.txt")), "hello from the web\n")
        XCTAssertEqual(sh("cmp '\(fx.path("guests/aix01/cd0/contents/big.bin"))' '\(fx.sourceTree("web.iso"))/big.bin'").status, 0)
        XCTAssertEqual(sh("iso-info --no-header -f -i '\(disc)' | grep -c big.bin").out.trimmingCharacters(in: .whitespacesAndNewlines), "1")
        // Read once: nginx saw each part of the image once, however often it was read here.
        XCTAssertEqual(sh("cmp '\(disc)' '\(iso)'").status, 0)
        let ranges = (readText(fx.root + "/nginx-access.log") ?? "").split(separator: "\n").filter { $0.contains("GET /web.iso") }
        XCTAssertLessThanOrEqual(ranges.count, Int(size >> 20) + 2, "chunks fetched more than once: \(ranges.count)")
        // library/ lists it, of kind url, with its user; vmedia lsrep too.
        XCTAssertEqual(readText(fx.path("library/web.iso/kind")), "url\n")
        XCTAssertEqual(readText(fx.path("library/web.iso/path")), url + "\n")
        XCTAssertEqual(readText(fx.path("library/web.iso/users")), "aix01/cd0\n")
        let lsrep = sh("VMEDIAFS_MOUNT='\(fx.mnt)' '\(vmediaPath)' lsrep --json")
        XCTAssertTrue(lsrep.out.contains("\"kind\":\"url\"") || lsrep.out.contains("\"kind\": \"url\""), lsrep.out + lsrep.err)
        // Eject, then insert again by its library name.
        XCTAssertEqual(unlink(mediaFile), 0)
        XCTAssertEqual(fx.status("aix01", "cd0")["state"], "empty")
    }

    func testVmediaLoadoptTakesAURL() throws {
        makeDrive()
        let iso = try makeServedISO("cli.iso", megabytes: 1)
        let r = sh("VMEDIAFS_MOUNT='\(fx.mnt)' '\(vmediaPath)' loadopt aix01/cd0 '\(nginx.url("cli.iso"))'")
        XCTAssertEqual(r.status, 0, r.out + r.err)
        XCTAssertEqual(fx.status("aix01", "cd0")["media"], nginx.url("cli.iso"))
        XCTAssertEqual(sh("cmp '\(disc)' '\(iso)'").status, 0)
    }

    func testURLsTheDaemonMayNotFetchAreRefusedWithAReason() throws {
        makeDrive()
        try makeServedISO("x.iso", megabytes: 1)
        let cases: [(String, Int32, String)] = [
            ("http://127.0.0.1:1/x.iso", EPERM, "no --media-url prefix"),
            (nginx.url("../x.iso"), EINVAL, ". or .."),
            (nginx.url("missing.iso"), ENOENT, "no such image"),
            ("http://user:pw@127.0.0.1:\(nginx.port)/x.iso", EINVAL, "credentials"),
        ]
        for (url, expected, reason) in cases {
            XCTAssertEqual(writeErrno(mediaFile, url), expected, url)
            let s = fx.status("aix01", "cd0")
            XCTAssertTrue(s["last_error"]?.contains(reason) == true, "\(url): \(s["last_error"] ?? "")")
            XCTAssertEqual(s["state"], "empty")
        }
        // A server without range support (python's http.server) is refused at insert.
        let port = Int.random(in: 20000...60000)
        let plain = Process()
        plain.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        plain.arguments = ["python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", www, String(port)]
        plain.standardError = FileHandle.nullDevice
        plain.standardOutput = FileHandle.nullDevice
        try plain.run()
        servers.append(plain)
        XCTAssertTrue(eventually(5) { sh("curl -s -o /dev/null http://127.0.0.1:\(port)/x.iso").status == 0 })
        try restart(with: ["--media-url", "http://127.0.0.1:\(port)/"])
        XCTAssertEqual(writeErrno(mediaFile, "http://127.0.0.1:\(port)/x.iso"), EINVAL)
        XCTAssertTrue(fx.status("aix01", "cd0")["last_error"]?.contains("range requests") == true, fx.status("aix01", "cd0")["last_error"] ?? "")
        XCTAssertTrue(fx.logText.contains("range requests"), "the refusal is logged")
    }

    func testWithoutMediaURLEveryURLIsRefused() throws {
        fx.stop()
        fx.extraArgs = ["--media-dir", fx.media]
        try fx.start()
        makeDrive()
        try makeServedISO("y.iso", megabytes: 1)
        XCTAssertEqual(writeErrno(mediaFile, nginx.url("y.iso")), EPERM)
        XCTAssertTrue(fx.status("aix01", "cd0")["last_error"]?.contains("--media-url") == true)
    }

    func testAnImageChangedOnTheServerGivesEIOAndAChangeEvent() throws {
        makeDrive()
        let iso = try makeServedISO("moving.iso", megabytes: 24)
        XCTAssertEqual(writeErrno(mediaFile, nginx.url("moving.iso")), 0)
        XCTAssertEqual(sh("dd if='\(disc)' of=/dev/null bs=2048 count=16 status=none").status, 0)
        let events = fx.root + "/events.out"
        _ = FileManager.default.createFile(atPath: events, contents: nil)
        let watcher = Process()
        watcher.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        watcher.arguments = ["20", "grep", "-m1", "-F", " change ", fx.path("events")]
        watcher.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: events))
        try watcher.run()
        servers.append(watcher)
        usleep(300_000)
        // Rewritten in place with other bytes: nginx's ETag (mtime and size) changes.
        XCTAssertEqual(sh("dd if=/dev/urandom of='\(iso)' bs=1M count=1 seek=20 conv=notrunc status=none && touch -d '2030-01-01' '\(iso)'").status, 0)
        let r = sh("dd if='\(disc)' of=/dev/null bs=2048 skip=\(20 << 9) count=16 status=none")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("Input/output error"), r.err)
        XCTAssertTrue(eventually(5) { fx.status("aix01", "cd0")["last_error"]?.contains("changed on the server") == true },
                      fx.status("aix01", "cd0")["last_error"] ?? "")
        XCTAssertTrue(eventually(10) { (readText(events) ?? "").contains("change") }, (readText(events) ?? "") + fx.logText)
        XCTAssertNotEqual(sh("dd if='\(disc)' of=/dev/null bs=2048 count=1 iflag=direct status=none").status, 0,
                          "the cached start of the old image is not served either")
    }

    func testAStalledServerGivesEIOInTimeAndTheMountKeepsServing() throws {
        let prefix = try startRangeServer()
        try restart(with: ["--media-url", prefix, "-o", "url_timeout=1"])
        makeDrive()
        let iso = try makeServedISO("slow.iso", megabytes: 4)
        XCTAssertEqual(writeErrno(mediaFile, prefix + "slow.iso"), 0, fx.status("aix01", "cd0")["last_error"] ?? "")
        try "30".write(toFile: iso + ".stall", atomically: true, encoding: .utf8)
        let started = Date()
        let reader = sh("dd if='\(disc)' of=/dev/null bs=64k count=1 iflag=direct status=none", timeout: 60)
        XCTAssertNotEqual(reader.status, 0)
        XCTAssertNotEqual(reader.status, -2, "the read hung")
        XCTAssertTrue(reader.err.contains("Input/output error"), reader.err)
        XCTAssertLessThan(Date().timeIntervalSince(started), 25, "the read waited for the server instead of its timeout")
        // The rest of the mount answered all along.
        XCTAssertEqual(fx.status("aix01", "cd0")["state"], "loaded")
        XCTAssertTrue(FileManager.default.fileExists(atPath: fx.path("guests/aix01")))
        unlink(iso + ".stall")
        XCTAssertTrue(eventually(15) { sh("cmp '\(disc)' '\(iso)'").status == 0 }, "reads work once the server answers")
        XCTAssertNotEqual(fx.status("aix01", "cd0")["last_error"]?.contains("changed") ?? false, true)
    }

    func testURLMediaSurviveARestartAndAreCheckedOnTheFirstRead() throws {
        makeDrive()
        makeDrive("aix02", "cd1")
        let iso = try makeServedISO("kept.iso", megabytes: 2)
        let other = try makeServedISO("gone.iso", megabytes: 1)
        XCTAssertEqual(writeErrno(mediaFile, nginx.url("kept.iso")), 0)
        XCTAssertEqual(writeErrno(fx.path("guests/aix02/cd1/media"), nginx.url("gone.iso")), 0)
        fx.stop()
        XCTAssertEqual(unlink(other), 0)
        try fx.start()
        XCTAssertEqual(fx.status("aix01", "cd0")["kind"], "url")
        XCTAssertEqual(fx.status("aix01", "cd0")["media"], nginx.url("kept.iso"))
        XCTAssertEqual(sh("cmp '\(disc)' '\(iso)'").status, 0)
        // The image that vanished from the server while the daemon was down fails at its first read.
        XCTAssertNotEqual(sh("dd if='\(fx.path("guests/aix02/cd1/disc"))' of=/dev/null bs=2048 count=1 status=none").status, 0)
        XCTAssertTrue(eventually(5) { fx.status("aix02", "cd1")["last_error"]?.contains("gone from the server") == true },
                      fx.status("aix02", "cd1")["last_error"] ?? "")
    }

    func testSharingRulesHoldForURLs() throws {
        makeDrive()
        makeDrive("aix02", "cd1")
        try makeServedISO("shared.iso", megabytes: 1)
        let url = nginx.url("shared.iso")
        XCTAssertEqual(writeErrno(mediaFile, url), 0)
        XCTAssertEqual(writeErrno(fx.path("guests/aix02/cd1/media"), url), EBUSY, "one drive at a time unless sharable")
        XCTAssertEqual(writeErrno(fx.path("library/shared.iso/sharable"), "yes\n"), 0)
        XCTAssertEqual(writeErrno(fx.path("guests/aix02/cd1/media"), "shared.iso\n"), 0, "by its library name")
        XCTAssertEqual(fx.status("aix02", "cd1")["media"], url)
        XCTAssertEqual(readText(fx.path("library/shared.iso/users")), "aix01/cd0\naix02/cd1\n")
    }

    func testTLSIsVerifiedAndCredentialsComeFromTheRootOnlyFile() throws {
        try makeServedISO("private/p.iso", megabytes: 1)
        // HTTPS with a certificate no system CA signed: refused at insert, with the reason.
        let tls = try Nginx(prefix: fx.root + "/tls", root: www, tls: true)
        defer { tls.stop() }
        // Basic authentication on /private/ (user vm, password s3cret).
        let hash = sh("openssl passwd -apr1 s3cret").out.trimmingCharacters(in: .whitespacesAndNewlines)
        try "vm:\(hash)\n".write(toFile: fx.root + "/htpasswd", atomically: true, encoding: .utf8)
        let locked = try Nginx(prefix: fx.root + "/auth", root: www,
                               server: "location /private/ { auth_basic vm; auth_basic_user_file \(fx.root)/htpasswd; }")
        defer { locked.stop() }
        let creds = fx.root + "/url.creds"
        try "\(locked.url("private/")) vm:s3cret\n".write(toFile: creds, atomically: true, encoding: .utf8)
        chmod(creds, 0o644)
        fx.stop()
        fx.extraArgs += ["--media-url", tls.url(""), "--media-url", locked.url(""), "--media-url-credentials", creds]
        XCTAssertThrowsError(try fx.start(), "a credentials file others may read keeps the daemon from starting")
        XCTAssertTrue(fx.logText.contains("readable by nobody else"), fx.logText)
        chmod(creds, 0o600)
        try fx.start()
        makeDrive()
        XCTAssertEqual(writeErrno(mediaFile, tls.url("private/p.iso")), EIO)
        let why = fx.status("aix01", "cd0")["last_error"] ?? ""
        XCTAssertTrue(why.contains("certificate"), why)
        // Without the prefix's credentials the server refuses; with them the image loads.
        XCTAssertEqual(writeErrno(mediaFile, locked.url("p.iso")), ENOENT, "outside /private/ there is no such image")
        XCTAssertEqual(writeErrno(mediaFile, locked.url("private/p.iso")), 0, fx.status("aix01", "cd0")["last_error"] ?? "")
        XCTAssertEqual(sh("cmp '\(disc)' '\(www)/private/p.iso'").status, 0)
    }
}
