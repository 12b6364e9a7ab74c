import NIOCore
import NIOPosix
import SCSI
import Synchronization

/// What the target needs from the host: which guests (targets) exist, who may log in, and their
/// drives (LUNs).
///
/// Threading rule: every method may be called from any event-loop or thread-pool thread, several
/// at once. They must be quick and must not block on I/O (they run between PDUs of a connection),
/// and must not call back into `ISCSIServer.stop()`.
public protocol ISCSIProvider: AnyObject, Sendable {
    /// Target names this initiator may see in SendTargets discovery (only those it may log in to).
    func discoverableTargets(initiator: String) -> [String]
    /// nil: the initiator may not log in to the target. Otherwise whether CHAP is required and with what.
    func loginPolicy(target: String, initiator: String) -> LoginPolicy?
    /// The target's LUNs now (drives come and go while sessions are up); looked up per command.
    func lun(_ lun: UInt64, of target: String) -> OpticalDrive?
    func luns(of target: String) -> [UInt64]
    /// Both at once, for each command (a provider may answer them with one look-up).
    func unit(_ lun: UInt64, of target: String) -> (drive: OpticalDrive?, luns: [UInt64])
    /// Told when sessions log in or out (for `status`: logged-in initiators). `initiators` is the
    /// sorted, de-duplicated list of initiator names with a session to `target` now.
    func sessionsChanged(target: String, initiators: [String])
}

extension ISCSIProvider {
    public func unit(_ lun: UInt64, of target: String) -> (drive: OpticalDrive?, luns: [UInt64]) {
        (self.lun(lun, of: target), luns(of: target))
    }
}

/// Who may log in to a target: anyone the provider let through, or only with CHAP.
public enum LoginPolicy: Sendable, Equatable {
    case open
    case chap(user: String, secret: String)
}

/// Why the server could not start.
public enum ISCSIServerError: Error, CustomStringConvertible, Sendable {
    case bindFailed(host: String, port: Int, reason: String)
    case alreadyStarted

    public var description: String {
        switch self {
        case .bindFailed(let host, let port, let reason): return "cannot listen on \(host):\(port): \(reason)"
        case .alreadyStarted: return "the iSCSI server is already started"
        }
    }
}

/// Limits of the server, fixed at init.
struct ServerLimits: Sendable {
    var maxConnections: Int
    /// Our MaxRecvDataSegmentLength: the largest data segment an initiator may send us.
    var maxRecvDataSegmentLength = 262_144
    /// CmdSN window (MaxCmdSN - ExpCmdSN + 1) when nothing is queued.
    var commandWindow = 64
    /// A connection not in full feature phase after this long is closed.
    var loginTimeout: TimeAmount = .seconds(30)
    /// Write data that queued commands may hold at once (immediate data and the first command's
    /// collected Data-Out); a command that would pass it is answered BUSY.
    var maxQueuedData = 1_048_576
    /// Writes of a READ's data are made in chunks of about this many bytes.
    var readChunk = 1_048_576
    /// How long a last response (login refusal, Logout Response) may take to reach a peer that
    /// is not reading before the connection is closed without it.
    var closeGrace: TimeAmount = .seconds(5)
    /// Idle time after which we ping the initiator, and then close if it stays silent as long.
    var pingInterval: TimeAmount = .seconds(30)
}

/// What every connection shares: the provider, the session registry, the thread pool, limits.
final class ServerServices: Sendable {
    let provider: any ISCSIProvider
    let pool: NIOThreadPool
    let limits: ServerLimits
    let registry = SessionRegistry()
    private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])

    init(provider: any ISCSIProvider, pool: NIOThreadPool, limits: ServerLimits) {
        self.provider = provider
        self.pool = pool
        self.limits = limits
    }

    /// Registers a new connection; false when the server is full (the caller closes it).
    func admit(_ channel: any Channel) -> Bool {
        channels.withLock { c in
            guard c.count < limits.maxConnections else { return false }
            c[ObjectIdentifier(channel)] = channel
            return true
        }
    }

    func forget(_ channel: any Channel) {
        _ = channels.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    var openChannels: [any Channel] { channels.withLock { Array($0.values) } }
}

/// The logged-in sessions, for `sessionsChanged`, session handles (TSIH) and reinstatement.
final class SessionRegistry: Sendable {
    struct Entry: Sendable {
        let target: String
        let initiator: String
        let isid: [UInt8]
        /// Closes the session's connection (used when the same initiator and ISID log in again).
        let close: @Sendable () -> Void
    }
    private struct State {
        var sessions: [UInt16: Entry] = [:]
        var nextTSIH: UInt16 = 1
    }
    private let state = Mutex(State())
    /// Held while one report is read and delivered (lock order: this, then `state`).
    private let reporting = Mutex(())

    /// Tells the provider `target`'s initiators as they are when this runs. Reports are
    /// delivered one at a time, each reading the registry afresh, so the last one the provider
    /// hears is the latest state; before, a list computed at login could overtake the logout's
    /// on the other pool thread and stay in `status`. Called on the thread pool.
    func report(_ target: String, to provider: any ISCSIProvider) {
        reporting.withLock { _ in
            let now = state.withLock { SessionRegistry.initiators(of: target, $0.sessions) }
            provider.sessionsChanged(target: target, initiators: now)
        }
    }

    /// A session handle not in use (never 0).
    func allocateTSIH() -> UInt16 {
        state.withLock { s in
            while s.nextTSIH == 0 || s.sessions[s.nextTSIH] != nil { s.nextTSIH &+= 1 }
            defer { s.nextTSIH &+= 1 }
            return s.nextTSIH
        }
    }

    /// Adds a session; returns the sessions it reinstates (same initiator, ISID and target).
    func add(_ tsih: UInt16, _ entry: Entry) -> [Entry] {
        state.withLock { s in
            let old = s.sessions.filter { $0.value.initiator == entry.initiator && $0.value.isid == entry.isid
                && $0.value.target == entry.target }
            s.sessions[tsih] = entry
            return Array(old.values)
        }
    }

    /// Removes a session; returns its target (nil if it was not registered).
    func remove(_ tsih: UInt16) -> String? {
        state.withLock { s in s.sessions.removeValue(forKey: tsih)?.target }
    }

    var count: Int { state.withLock { $0.sessions.count } }

    private static func initiators(of target: String, _ sessions: [UInt16: Entry]) -> [String] {
        Array(Set(sessions.values.filter { $0.target == target }.map(\.initiator))).sorted()
    }
}

/// An iSCSI target portal (RFC 7143) serving the provider's targets over TCP.
///
/// Threading rule: connections live on `eventLoops` NIO event loops; each connection's protocol
/// state is touched only on its own loop. SCSI commands (which may read files) run on a small
/// thread pool, one command at a time per connection, in CmdSN order. `start()` and `stop()` block
/// and must not be called from an event loop or thread-pool thread.
public final class ISCSIServer: Sendable {
    private let services: ServerServices
    private let group: MultiThreadedEventLoopGroup
    private let host: String
    private let port: Int
    private let listener = Mutex<(any Channel)?>(nil)

    /// - Parameters:
    ///   - maxConnections: connections beyond this are closed at once (login or not).
    public convenience init(provider: any ISCSIProvider, host: String = "127.0.0.1", port: Int = 3260,
                            eventLoops: Int = 1, maxConnections: Int = 1024) {
        self.init(provider: provider, host: host, port: port, eventLoops: eventLoops,
                  limits: ServerLimits(maxConnections: maxConnections))
    }

    init(provider: any ISCSIProvider, host: String, port: Int, eventLoops: Int, limits: ServerLimits) {
        self.host = host
        self.port = port
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, eventLoops))
        self.services = ServerServices(provider: provider, pool: NIOThreadPool(numberOfThreads: 2), limits: limits)
    }

    /// Binds and starts accepting; throws `ISCSIServerError.bindFailed` (e.g. the port is taken).
    public func start() throws {
        if listener.withLock({ $0 != nil }) { throw ISCSIServerError.alreadyStarted }
        services.pool.start()
        let services = self.services
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.so_keepalive), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let framing = FramingState()
                    let ops = channel.pipeline.syncOperations
                    // Stops reading from a peer while its connection cannot take more output
                    // (above the write watermark), so a peer that sends and never reads makes us
                    // hold a bounded amount: one read's worth of PDUs, one READ chunk.
                    try ops.addHandler(BackPressureHandler())
                    try ops.addHandler(ByteToMessageHandler(PDUDecoder(state: framing)))
                    try ops.addHandler(MessageToByteHandler(PDUEncoder(state: framing)))
                    try ops.addHandler(ISCSIConnection(framing: framing, services: services))
                }
            }
        do {
            let channel = try bootstrap.bind(host: host, port: port).wait()
            listener.withLock { $0 = channel }
        } catch {
            throw ISCSIServerError.bindFailed(host: host, port: port, reason: "\(error)")
        }
    }

    /// The port actually bound (useful with port 0); 0 before `start()`.
    public var boundPort: Int {
        listener.withLock { $0?.localAddress?.port } ?? 0
    }

    /// Stops listening and closes every connection; each session's I_T nexuses are detached
    /// (their locks released) before this returns. The server cannot be started again.
    public func stop() {
        if let channel = listener.withLock({ c -> (any Channel)? in defer { c = nil }; return c }) {
            try? channel.close().wait()
        }
        for channel in services.openChannels {
            try? channel.close().wait()
        }
        // channelInactive (which queues each session's detach) runs on the loops: let it finish.
        for loop in group.makeIterator() {
            try? loop.submit {}.wait()
        }
        try? services.pool.syncShutdownGracefully()  // runs the detaches still queued
        try? group.syncShutdownGracefully()
    }

    /// Bytes written to connections and not yet taken by the kernel, over all connections (for
    /// tests: what a peer that stops reading makes us hold).
    var bufferedOutboundBytes: Int {
        services.openChannels.reduce(0) { $0 + ((try? $1.getOption(.bufferedWritableBytes).wait()) ?? 0) }
    }

    /// Open connections and logged-in sessions, for tests and `status`.
    public var counts: (connections: Int, sessions: Int) {
        (services.openChannels.count, services.registry.count)
    }
}
