import VMediaFS
import FuseKernel
import ISCSI
import Glibc
import NIOSSL
import Redfish
import RemoteMedia
import VirtualMedia

/// The daemon's settings, from `vmediafs [SOURCE] MOUNTPOINT [options]`.
struct DaemonOptions: Sendable, Equatable {
    public var mountpoint = ""
    public var source = "vmediafs"
    public var statePath: String?
    public var mediaDirectories: [String] = []
    public var hostDrives: [String] = []
    public var iscsi: String?
    public var foreground = false
    public var debug = false
    public var allowOther = false
    public var singleThreaded = false
    /// The mount's readahead window in KiB (`-o readahead=KIB`); nil keeps the session's default.
    public var readaheadKiB: UInt32?
    /// How `disc` is read (`-o disc_io=cached|direct`).
    public var discIO: DiscIO = .cached
    /// The largest read request the kernel may send (`-o max_read=BYTES`); libfuse wants
    /// the same value at mount and at INIT, so vmediafs passes it to both.
    public var maxRead: UInt32 = SessionOptions().maxRead
    public var openTimeout: Double = MediaConfiguration().openTimeout
    /// Who speaks the FUSE protocol (`-o fuse_layer=own|libfuse`).
    public var layer: FuseLayer = .own
    /// Let the kernel read `disc` straight from the image (`-o passthrough`; see docs/performance.md).
    public var passthrough = false
    /// Take requests over io_uring queues (`-o io_uring`; the fuse module's enable_uring must be Y).
    public var ioUring = false
    /// URL prefixes whose images may be inserted (`--media-url`, `-o media_url=`); none: no URLs.
    public var mediaURLs: [String] = []
    /// `PREFIX USER:PASSWORD` lines for those prefixes (`--media-url-credentials`).
    public var mediaURLCredentials: String?
    /// The most bytes of URL images kept on disk (`-o url_cache=SIZE`).
    public var urlCacheBytes: UInt64 = 1 << 30
    /// How long a read waits for a URL's server (`-o url_timeout=S`).
    public var urlTimeout: Double = 10
    /// Serve Redfish on this ADDR:PORT (`--redfish`, `-o redfish=`; 127.0.0.1:8000 with no value).
    public var redfish: String?
    /// The Redfish users: `NAME UID pbkdf2-sha256$...` lines in a root-only file.
    public var redfishUsers: String?
    /// PEM certificate chain and key for HTTPS.
    public var redfishCertificate: String?
    public var redfishKey: String?
    /// Plain HTTP instead of HTTPS (`-o redfish_http`): only on a loopback address.
    public var redfishPlainHTTP = false
    /// Options passed on to libfuse as they are (`-o ro`, `-o noatime`).
    public var fuseOptions: [String] = []

    public init() {}

    public static let usage = """
        usage: vmediafs [SOURCE] MOUNTPOINT [options]
          --state PATH        state database (-o state=PATH)
          --media-dir DIR     a virtual media repository folder; repeatable (-o media_dir=DIR)
          --host-drive DEV    a host block device that may be loaded; repeatable (-o host_drive=DEV)
          --media-url PREFIX  http(s) URLs under PREFIX may be inserted; repeatable (-o media_url=PREFIX)
          --media-url-credentials FILE
                              PREFIX USER:PASSWORD lines, a root-only file (-o media_url_credentials=FILE)
          --redfish [ADDR:PORT]
                              serve a Redfish VirtualMedia service (default 127.0.0.1:8000;
                              -o redfish=...); needs --redfish-users FILE; HTTPS with
                              --redfish-cert FILE --redfish-key FILE, else a self-signed
                              certificate kept beside the state (its fingerprint is
                              logged); plain HTTP only with -o redfish_http on loopback
          --iscsi [ADDR:PORT] serve the guests' drives over iSCSI (default 127.0.0.1:3260; -o iscsi=...)
          -f                  stay in the foreground
          -d                  debug: foreground, and log every FUSE request
          -s                  serve requests on one thread
          -o readahead=KIB    the mount's readahead window (default 2016; root only)
          -o max_read=BYTES   largest read request (default 1032192, just under 1 MiB so
                              that replies can be spliced)
          -o disc_io=MODE     cached (default): the kernel keeps disc's pages for a media
                              generation; direct: every read goes to the daemon, one copy
                              fewer on a first read, no kept pages, no shared mmap
          -o url_cache=SIZE   the most bytes of URL images kept in the block cache
                              (default 1G; K, M, G suffixes)
          -o url_timeout=S    how long a read of a URL image waits for its server,
                              retries included, before EIO (guests: 02/04/01); default 10
          -o open_timeout=S   how long an insert waits for the image's file system to
                              answer its open before EIO (default 15 seconds)
          -o fuse_layer=L     own (default): vmediafs speaks the FUSE protocol itself (root);
                              libfuse: through libfuse 3.14 (always used when not root)
          -o passthrough      the kernel reads disc from the image itself (FUSE passthrough,
                              Linux 6.9+, own layer); a handle opened before a media change
                              then keeps reading the old image instead of getting ESTALE
          -o io_uring         take requests over io_uring queues, one per CPU (Linux 6.14+,
                              own layer; needs /sys/module/fuse/parameters/enable_uring = Y)
          -o OPT[,OPT...]     the options above, allow_other, and any libfuse mount option
        """

    /// Parses the command line; throws a one-line message on anything it does not understand.
    public static func parse(_ args: [String]) throws(VMError) -> DaemonOptions {
        var o = DaemonOptions()
        var positional: [String] = []
        var i = 0
        func value(_ name: String) throws(VMError) -> String {
            i += 1
            guard i < args.count else { throw VMError(EINVAL, "\(name) needs a value") }
            return args[i]
        }
        while i < args.count {
            let a = args[i]
            switch a {
            case "--state": o.statePath = try value(a)
            case "--media-dir": o.mediaDirectories.append(try value(a))
            case "--host-drive": o.hostDrives.append(try value(a))
            case "--media-url": o.mediaURLs.append(try value(a))
            case "--redfish":
                if i + 1 < args.count, !args[i + 1].hasPrefix("-"), args[i + 1].contains(":") { o.redfish = try value(a) } else { o.redfish = "127.0.0.1:8000" }
            case "--redfish-users": o.redfishUsers = try value(a)
            case "--redfish-cert": o.redfishCertificate = try value(a)
            case "--redfish-key": o.redfishKey = try value(a)
            case "--media-url-credentials": o.mediaURLCredentials = try value(a)
            case "--iscsi":
                if i + 1 < args.count, !args[i + 1].hasPrefix("-"), args[i + 1].contains(":") { o.iscsi = try value(a) } else { o.iscsi = "127.0.0.1:3260" }
            case "-f", "--foreground": o.foreground = true
            case "-d", "--debug": o.debug = true; o.foreground = true
            case "-s": o.singleThreaded = true
            case "-o": try o.apply(options: try value(a))
            case "-h", "--help": throw VMError(0, usage)
            default:
                if a.hasPrefix("--state=") { o.statePath = String(a.dropFirst(8)) }
                else if a.hasPrefix("--media-dir=") { o.mediaDirectories.append(String(a.dropFirst(12))) }
                else if a.hasPrefix("--host-drive=") { o.hostDrives.append(String(a.dropFirst(13))) }
                else if a.hasPrefix("--media-url=") { o.mediaURLs.append(String(a.dropFirst(12))) }
                else if a.hasPrefix("--media-url-credentials=") { o.mediaURLCredentials = String(a.dropFirst(24)) }
                else if a.hasPrefix("-o") && a.count > 2 { try o.apply(options: String(a.dropFirst(2))) }
                else if a.hasPrefix("-") { throw VMError(EINVAL, "unknown option \(a)") }
                else { positional.append(a) }
            }
            i += 1
        }
        switch positional.count {
        case 1: o.mountpoint = positional[0]
        case 2: o.source = positional[0]; o.mountpoint = positional[1]
        default: throw VMError(EINVAL, positional.isEmpty ? "no mountpoint given" : "too many arguments: \(positional.joined(separator: " "))")
        }
        return o
    }

    mutating func apply(options list: String) throws(VMError) {
        for opt in list.split(separator: ",").map(String.init) where !opt.isEmpty {
            let (k, v) = splitMountOption(opt)
            switch k {
            case "state": statePath = v
            case "media_dir": mediaDirectories.append(v)
            case "host_drive": hostDrives.append(v)
            case "media_url": mediaURLs.append(v)
            case "redfish": redfish = v.isEmpty ? "127.0.0.1:8000" : v
            case "redfish_users": redfishUsers = v
            case "redfish_cert": redfishCertificate = v
            case "redfish_key": redfishKey = v
            case "redfish_http": redfishPlainHTTP = true
            case "media_url_credentials": mediaURLCredentials = v
            case "url_cache":
                guard let n = Self.byteSize(v), n >= 1 << 20 else { throw VMError(EINVAL, "url_cache takes a size of at least 1M (K, M, G suffixes)") }
                urlCacheBytes = n
            case "url_timeout":
                guard let t = Double(v), t > 0, t <= 3600 else { throw VMError(EINVAL, "url_timeout takes seconds, more than 0, at most 3600") }
                urlTimeout = t
            case "iscsi": iscsi = v.isEmpty ? "127.0.0.1:3260" : v
            case "allow_other": allowOther = true
            case "readahead":
                guard let k = UInt32(v) else { throw VMError(EINVAL, "readahead takes a size in KiB") }
                readaheadKiB = k
            case "max_read":
                guard let n = UInt32(v), (4096...1_048_576).contains(n) else {
                    throw VMError(EINVAL, "max_read takes a size in bytes from 4096 to 1048576")
                }
                maxRead = n
            case "open_timeout":
                guard let t = Double(v), t > 0, t <= 3600 else { throw VMError(EINVAL, "open_timeout takes seconds, more than 0, at most 3600") }
                openTimeout = t
            case "disc_io":
                guard let m = DiscIO(rawValue: v) else { throw VMError(EINVAL, "disc_io takes cached or direct") }
                discIO = m
            case "fuse_layer":
                guard let l = FuseLayer(rawValue: v) else { throw VMError(EINVAL, "fuse_layer takes own or libfuse") }
                layer = l
            case "passthrough": passthrough = true
            case "io_uring": ioUring = true
            case "default_permissions", "fsname", "subtype": break   // always set by vmediafs
            default: fuseOptions.append(opt)
            }
        }
    }

    /// "123", "64K", "512M", "2G" in bytes.
    static func byteSize(_ text: String) -> UInt64? {
        let units: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        guard let last = text.uppercased().last else { return nil }
        if let unit = units[last] { return UInt64(text.dropLast()).flatMap { $0.multipliedReportingOverflow(by: unit).overflow ? nil : $0 * unit } }
        return UInt64(text)
    }

    /// The folder of the state database: the URL block cache (`url-cache/`) and the Redfish
    /// service's self-signed certificate live beside it.
    var stateDirectory: String {
        let state = resolvedStatePath
        guard let slash = state.lastIndex(of: "/") else { return "." }
        return slash == state.startIndex ? "/" : String(state[..<slash])
    }

    /// Where the URL block cache lives: `url-cache/` beside the state database.
    var urlCacheDirectory: String { stateDirectory + "/url-cache" }

    /// The state database to use: `--state`, else root's /var/lib/vmediafs/state.db, else
    /// $XDG_STATE_HOME (or ~/.local/state)/vmediafs/state.db.
    public var resolvedStatePath: String {
        if let s = statePath { return s }
        if geteuid() == 0 { return "/var/lib/vmediafs/state.db" }
        if let x = getenv("XDG_STATE_HOME").map({ String(cString: $0) }), x.hasPrefix("/") { return x + "/vmediafs/state.db" }
        let home = getenv("HOME").map { String(cString: $0) } ?? "/tmp"
        return home + "/.local/state/vmediafs/state.db"
    }

    /// The arguments libfuse gets.
    var fuseArguments: [String] {
        // max_read must be given both here and in init (libfuse checks they agree).
        var opts = ["fsname=\(source)", "subtype=vmediafs", "max_read=\(maxRead)"]
        if allowOther { opts += ["allow_other", "default_permissions"] }
        opts += fuseOptions
        var a = ["-o", opts.joined(separator: ",")]
        if debug { a.append("-d") }
        return a
    }
}

/// Runs the daemon: opens the state, mounts, serves until unmounted or signalled.
/// Returns the process exit status.
///
/// Without `-f` the process detaches first, before any thread or file exists (SQLite's
/// locks do not survive a fork), and the parent waits until the child reports the mount
/// ready or failed: `mount -t fuse.vmediafs` and scripts see the real outcome.
func runDaemon(_ o: DaemonOptions) -> Int32 {
    let ready: Int32? = o.foreground ? nil : detachFromTerminal()
    let host: Host
    var remote: HTTPMediaSource?
    do throws(VMError) {
        let store = try StateStore(path: o.resolvedStatePath)
        if !o.mediaURLs.isEmpty {
            // After the detach: the HTTP client's threads must not be forked away.
            let rules = try URLRules(prefixes: o.mediaURLs, credentialsFile: o.mediaURLCredentials)
            remote = HTTPMediaSource(RemoteMediaOptions(rules: rules, cacheDirectory: o.urlCacheDirectory,
                                                        cacheBytes: o.urlCacheBytes, readTimeout: o.urlTimeout))
        }
        host = try Host(store: store, configuration: MediaConfiguration(mediaDirectories: o.mediaDirectories, hostDrives: o.hostDrives,
                                                                  openTimeout: o.openTimeout, remote: remote))
    } catch {
        Log.error(error.reason)
        remote?.shutdown()
        return 1
    }
    defer { remote?.shutdown() }
    for dir in o.mediaDirectories {
        var st = stat()
        if stat(dir, &st) != 0 || (st.st_mode & S_IFMT) != S_IFDIR { Log.warning("media directory \(dir) is not a directory") }
    }
    var iscsi: ISCSIServer?
    if let listen = o.iscsi {
        let (addr, port) = splitHostPort(listen)
        let server = ISCSIServer(provider: ISCSIBridge(host: host), host: addr, port: port)
        do {
            try server.start()
        } catch {
            Log.error("iSCSI: \(error)")
            return 1
        }
        Log.info("iSCSI target listening on \(addr):\(server.boundPort)")
        iscsi = server
    }
    defer { iscsi?.stop() }
    var redfish: RedfishService?
    if let listen = o.redfish {
        do throws(VMError) {
            redfish = try startRedfish(listen, o, host: host)
        } catch {
            Log.error("Redfish: \(error.reason)")
            return 1
        }
    }
    defer { redfish?.stop() }
    let fs = VMediaFileSystem(host: host, discIO: o.discIO, passthrough: o.passthrough)
    let session: FuseSession
    do {
        var sessionOptions = SessionOptions()
        if let k = o.readaheadKiB { sessionOptions.readaheadKiB = k }
        sessionOptions.maxRead = o.maxRead
        // `media` tells "echo x > media" (an open with O_TRUNC, then a write: a swap) from
        // ": > media" (an eject) only if O_TRUNC comes with the open, not as a SETATTR first.
        sessionOptions.truncateAtOpen = true
        sessionOptions.layer = o.layer
        sessionOptions.passthrough = o.passthrough
        sessionOptions.ioUring = o.ioUring
        session = try FuseSession(fileSystem: fs, mountpoint: o.mountpoint, arguments: o.fuseArguments, options: sessionOptions)
        // Before the mount: a SIGTERM that arrives as soon as the mount is seen must end the
        // loop cleanly, not kill the process and leave a dead mount.
        session.installSignalHandlers()
        try session.mount()
    } catch {
        Log.error("\(error)")
        return 1
    }
    Log.info("mounted on \(o.mountpoint) (state \(o.resolvedStatePath); FUSE: \(session.layer == .own ? "own wire layer" : "libfuse")\(o.passthrough ? ", passthrough asked for" : ""))")
    if let device = session.deviceNumber { host.mounted(device: device) }
    if let ready {
        var ok: UInt8 = 0
        _ = write(ready, &ok, 1)
        close(ready)
        _ = chdir("/")
        let null = open("/dev/null", O_RDWR)
        if null >= 0 { for fd in Int32(0)...2 { dup2(null, fd) }; if null > 2 { close(null) } }
        Log.useSyslog()
    }
    let rc = session.run(maxThreads: o.singleThreaded ? 1 : 16)
    session.unmount()
    Log.info("unmounted \(o.mountpoint)")
    return rc == 0 ? 0 : 1
}

/// Starts the Redfish service on `listen` with the options' users and TLS.
private func startRedfish(_ listen: String, _ o: DaemonOptions, host: Host) throws(VMError) -> RedfishService {
    let (addr, port) = splitHostPort(listen, defaultPort: 8000)
    guard let usersFile = o.redfishUsers else { throw VMError(EINVAL, "--redfish needs --redfish-users FILE") }
    let users = try RedfishUsers(file: usersFile)
    var tls: TLSConfiguration?
    if let cert = o.redfishCertificate, let key = o.redfishKey {
        do {
            tls = TLSConfiguration.makeServerConfiguration(certificateChain: try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) },
                                                           privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
        } catch {
            throw VMError(EINVAL, "cannot load the Redfish certificate \(cert) or key \(key): \(error)")
        }
    } else if !o.redfishPlainHTTP {
        let dir = o.stateDirectory
        let made = try SelfSignedCertificate.loadOrCreate(in: dir, address: addr)
        tls = made.tls
        Log.info("Redfish: \(made.created ? "made a" : "using the") self-signed certificate \(dir)/redfish.crt, SHA-256 fingerprint \(made.fingerprint)")
    } else if !["127.0.0.1", "::1", "localhost"].contains(addr) && !addr.hasPrefix("127.") {
        throw VMError(EINVAL, "plain HTTP Redfish is served only on a loopback address, not \(addr)")
    }
    let service = RedfishService(host: host, users: users)
    let bound: Int
    do { bound = try service.start(address: addr, port: port, tls: tls) } catch {
        throw VMError(EIO, "cannot serve on \(listen): \(error)")
    }
    Log.info("Redfish service on \(tls == nil ? "http" : "https")://\(addr):\(bound)/redfish/v1")
    return service
}

/// "ADDR:PORT", "[v6]:PORT" or "ADDR" (port 3260).
func splitHostPort(_ s: String, defaultPort: Int = 3260) -> (String, Int) {
    if s.hasPrefix("["), let close = s.firstIndex(of: "]") {
        let host = String(s[s.index(after: s.startIndex)..<close])
        let rest = s[s.index(after: close)...]
        return (host, rest.hasPrefix(":") ? Int(rest.dropFirst()) ?? defaultPort : defaultPort)
    }
    guard let colon = s.lastIndex(of: ":") else { return (s, defaultPort) }
    return (String(s[..<colon]), Int(s[s.index(after: colon)...]) ?? defaultPort)
}

/// Forks; the parent waits for the child's one-byte "mounted" report and exits 0, or with
/// the child's exit status if the child ended without reporting. Returns, in the child,
/// the descriptor to report on.
private func detachFromTerminal() -> Int32 {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { return -1 }
    let pid = fork()
    if pid < 0 { return -1 }
    if pid > 0 {
        close(fds[1])
        var byte: UInt8 = 1
        let n = read(fds[0], &byte, 1)
        if n == 1 && byte == 0 { exit(0) }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        exit((status >> 8) & 0xFF == 0 ? 1 : (status >> 8) & 0xFF)
    }
    close(fds[0])
    setsid()
    closeInheritedDescriptors(keeping: fds[1])
    return fds[1]
}

/// Closes every descriptor above 2 but `keep`: a daemon must not hold what its starter
/// left open (a test runner's or a mount helper's pipes and sockets would never see EOF).
private func closeInheritedDescriptors(keeping keep: Int32) {
    guard let dir = opendir("/proc/self/fd") else { return }
    var open: [Int32] = []
    while let ent = readdir(dir) {
        let name = withUnsafeBytes(of: ent.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        if let fd = Int32(name), fd > 2, fd != keep { open.append(fd) }
    }
    let own = dirfd(dir)
    closedir(dir)
    for fd in open where fd != own { close(fd) }
}
