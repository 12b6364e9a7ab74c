import Glibc
import VirtualMedia
import XCTest
import VMediaFS
@testable import vmediafs

final class DaemonOptionsTests: XCTestCase {
    func testMountHelperStyleArguments() throws {
        // What mount.fuse3 passes for: mount -t fuse.vmediafs vmediafs /mnt/v -o state=/s.db,media_dir=/a,...
        let o = try DaemonOptions.parse(["vmediafs", "/mnt/v", "-o", "rw,state=/s.db,media_dir=/a,media_dir=/b,host_drive=/dev/sr0,allow_other,iscsi"])
        XCTAssertEqual(o.source, "vmediafs")
        XCTAssertEqual(o.mountpoint, "/mnt/v")
        XCTAssertEqual(o.statePath, "/s.db")
        XCTAssertEqual(o.mediaDirectories, ["/a", "/b"])
        XCTAssertEqual(o.hostDrives, ["/dev/sr0"])
        XCTAssertEqual(o.iscsi, "127.0.0.1:3260")
        XCTAssertTrue(o.allowOther)
        XCTAssertEqual(o.fuseOptions, ["rw"])
        XCTAssertFalse(o.foreground, "mount(8) expects the daemon to detach")
        let fuse = o.fuseArguments.joined(separator: " ")
        XCTAssertTrue(fuse.contains("allow_other,default_permissions"), "allow_other always brings default_permissions")
        XCTAssertTrue(fuse.contains("subtype=vmediafs"))
        XCTAssertTrue(fuse.contains("max_read=1032192"))
    }

    func testLongOptions() throws {
        let o = try DaemonOptions.parse(["/mnt/v", "--state", "/x.db", "--media-dir=/m", "--iscsi", "0.0.0.0:3300", "-f"])
        XCTAssertEqual(o.statePath, "/x.db")
        XCTAssertEqual(o.mediaDirectories, ["/m"])
        XCTAssertEqual(o.iscsi, "0.0.0.0:3300")
        XCTAssertTrue(o.foreground)
        let d = try DaemonOptions.parse(["/mnt/v", "--iscsi", "-d"])
        XCTAssertEqual(d.iscsi, "127.0.0.1:3260", "--iscsi without a value")
        XCTAssertTrue(d.debug && d.foreground)
    }

    func testMaxReadGoesToBothLibfuseAndInit() throws {
        let o = try DaemonOptions.parse(["/mnt", "-o", "max_read=524288"])
        XCTAssertEqual(o.maxRead, 524288)
        let fuse = o.fuseArguments.joined(separator: " ")
        XCTAssertTrue(fuse.contains("max_read=524288"), fuse)
        XCTAssertFalse(fuse.contains("max_read=1032192"), "one max_read only: libfuse refuses two that differ")
        for bad in ["max_read=0", "max_read=100", "max_read=4194304", "max_read=x"] {
            XCTAssertThrowsError(try DaemonOptions.parse(["/mnt", "-o", bad]), bad)
        }
    }

    func testDiscIOMode() throws {
        XCTAssertEqual(try DaemonOptions.parse(["/mnt"]).discIO, .cached)
        let o = try DaemonOptions.parse(["/mnt", "-o", "disc_io=direct,ro"])
        XCTAssertEqual(o.discIO, .direct)
        XCTAssertEqual(o.fuseOptions, ["ro"], "disc_io is the daemon's own, not libfuse's")
    }

    func testFuseLayerPassthroughAndIoUring() throws {
        let d = try DaemonOptions.parse(["/mnt/v"])
        XCTAssertEqual(d.layer, .own, "the own wire layer by default")
        XCTAssertFalse(d.passthrough)
        XCTAssertFalse(d.ioUring)
        let o = try DaemonOptions.parse(["/mnt/v", "-o", "fuse_layer=libfuse,passthrough,io_uring"])
        XCTAssertEqual(o.layer, .libfuse)
        XCTAssertTrue(o.passthrough && o.ioUring)
        XCTAssertEqual(o.fuseOptions, [], "none of them is passed on as a mount option")
        XCTAssertEqual(try DaemonOptions.parse(["/mnt/v", "-o", "fuse_layer=own"]).layer, .own)
        XCTAssertThrowsError(try DaemonOptions.parse(["/mnt/v", "-o", "fuse_layer=kernel9"])) { e in
            XCTAssertEqual((e as? VMError)?.errno, EINVAL)
        }
    }

    func testMediaURLOptions() throws {
        let d = try DaemonOptions.parse(["/mnt/v", "--state", "/var/lib/x/state.db"])
        XCTAssertEqual(d.mediaURLs, [], "no URLs unless asked for")
        XCTAssertEqual(d.urlCacheBytes, 1 << 30)
        XCTAssertEqual(d.urlTimeout, 10)
        XCTAssertEqual(d.urlCacheDirectory, "/var/lib/x/url-cache")
        let o = try DaemonOptions.parse(["/mnt/v", "--media-url", "http://a/iso/", "--media-url=https://b/",
                                         "-o", "media_url=http://c/,url_cache=512M,url_timeout=2.5,media_url_credentials=/etc/v.creds"])
        XCTAssertEqual(o.mediaURLs, ["http://a/iso/", "https://b/", "http://c/"])
        XCTAssertEqual(o.urlCacheBytes, 512 << 20)
        XCTAssertEqual(o.urlTimeout, 2.5)
        XCTAssertEqual(o.mediaURLCredentials, "/etc/v.creds")
        XCTAssertEqual(o.fuseOptions, [])
        XCTAssertEqual(DaemonOptions.byteSize("2G"), 2 << 30)
        XCTAssertEqual(DaemonOptions.byteSize("64k"), 64 << 10)
        XCTAssertNil(DaemonOptions.byteSize("99999999999T"), "overflow")
        for bad in ["url_cache=12", "url_cache=lots", "url_timeout=0", "url_timeout=x"] {
            XCTAssertThrowsError(try DaemonOptions.parse(["/mnt/v", "-o", bad]), bad)
        }
    }

    func testRedfishOptions() throws {
        XCTAssertNil(try DaemonOptions.parse(["/mnt/v"]).redfish, "off by default")
        XCTAssertEqual(try DaemonOptions.parse(["/mnt/v", "--redfish"]).redfish, "127.0.0.1:8000")
        XCTAssertEqual(try DaemonOptions.parse(["/mnt/v", "--redfish", "0.0.0.0:8443", "-f"]).redfish, "0.0.0.0:8443")
        let o = try DaemonOptions.parse(["/mnt/v", "-o", "redfish=,redfish_users=/u,redfish_cert=/c,redfish_key=/k,redfish_http"])
        XCTAssertEqual(o.redfish, "127.0.0.1:8000")
        XCTAssertEqual([o.redfishUsers, o.redfishCertificate, o.redfishKey], ["/u", "/c", "/k"])
        XCTAssertTrue(o.redfishPlainHTTP)
        XCTAssertEqual(splitHostPort("127.0.0.1", defaultPort: 8000).1, 8000)
    }

    func testBadCommandLines() {
        for args in [[], ["/a", "/b", "/c"], ["/mnt", "--bogus"], ["/mnt", "--state"], ["/mnt", "-o", "disc_io=fast"]] {
            XCTAssertThrowsError(try DaemonOptions.parse(args), "\(args)") { e in
                XCTAssertEqual((e as? VirtualMedia.VMError)?.errno, EINVAL)
            }
        }
    }

    func testDefaultStatePath() throws {
        let o = try DaemonOptions.parse(["/mnt"])
        if geteuid() == 0 { XCTAssertEqual(o.resolvedStatePath, "/var/lib/vmediafs/state.db") }
        else { XCTAssertTrue(o.resolvedStatePath.hasSuffix("/vmediafs/state.db")) }
    }

    func testHostPort() {
        XCTAssertEqual(splitHostPort("127.0.0.1:3261").0, "127.0.0.1")
        XCTAssertEqual(splitHostPort("127.0.0.1:3261").1, 3261)
        XCTAssertEqual(splitHostPort("[::1]:3262").0, "::1")
        XCTAssertEqual(splitHostPort("[::1]:3262").1, 3262)
        XCTAssertEqual(splitHostPort("10.0.0.1").1, 3260)
    }
}
