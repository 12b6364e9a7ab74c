import NIOCore
import SCSI
import Synchronization

/// One TCP connection, which (with MaxConnections=1) is one session: the login phase, then the
/// full feature phase (RFC 7143 4, 6, 7).
///
/// Threading rule: every property is touched only on the connection's event loop. SCSI commands
/// go to the thread pool with Sendable copies of what they need and come back to the loop. The
/// session's I_T nexuses live in `nexus`, which is the only state shared with the pool.
final class ISCSIConnection: ChannelInboundHandler {
    typealias InboundIn = ISCSIPDU
    typealias OutboundOut = ISCSIPDU

    enum Phase { case login, fullFeature, closed }

    let framing: FramingState
    let services: ServerServices
    var context: ChannelHandlerContext?
    var phase = Phase.login
    var login: LoginMachine
    var parameters = SessionParameters()
    var kind = SessionKind.discovery
    var initiatorName = ""
    var tsih: UInt16 = 0
    var registered = false
    let nexus = NexusTable()

    // Sequence numbers (RFC 7143 4.2.2): StatSN per connection, CmdSN per session.
    var statSN: UInt32 = 1
    var expCmdSN: UInt32 = 0
    /// Commands received and not yet answered, in CmdSN order; the first one runs.
    var tasks: [CommandTask] = []
    var running = false
    var nextTargetTransferTag: UInt32 = 1
    /// The rest of a Text Response longer than the initiator's MaxRecvDataSegmentLength.
    var pendingText: (ttt: UInt32, data: [UInt8])?
    var textRequestBuffer: [UInt8] = []
    var loginTimer: Scheduled<Void>?
    /// Closes the connection if its last response is not written within `closeGrace`.
    var closeTimer: Scheduled<Void>?
    var sawLoginRequest = false
    /// Set by every PDU received; the ping timer clears it (see `checkAlive`).
    var heardFromInitiator = true
    var pingTimer: RepeatedTask?
    var outstandingPing: UInt32?

    /// Connection handlers alive in this process, for leak tests.
    static let alive = Atomic<Int>(0)

    deinit { ISCSIConnection.alive.subtract(1, ordering: .relaxed) }

    init(framing: FramingState, services: ServerServices) {
        ISCSIConnection.alive.add(1, ordering: .relaxed)
        self.framing = framing
        self.services = services
        self.login = LoginMachine(targetMaxRecvDataSegmentLength: services.limits.maxRecvDataSegmentLength)
    }

    /// The numbers every response carries. MaxCmdSN shrinks the window by the commands that
    /// took a CmdSN and wait, down to a closed window (MaxCmdSN = ExpCmdSN - 1) when `commandWindow`
    /// of them wait, so a peer that keeps to it queues at most that many and one running. It never
    /// decreases: each command accepted raises ExpCmdSN as it adds one waiting; immediate
    /// commands take no CmdSN and are not counted (`handleCommand` caps them).
    var sequence: SequenceNumbers {
        let window = UInt32(services.limits.commandWindow)
        return SequenceNumbers(statSN: statSN, expCmdSN: expCmdSN,
                               maxCmdSN: expCmdSN &+ window &- 1 &- UInt32(waitingInWindow))
    }

    /// Commands that took a CmdSN and have not started (the running one is not counted: its
    /// response, which carries the numbers, frees its place).
    var waitingInWindow: Int {
        tasks.indices.reduce(0) { n, k in n + (tasks[k].tookCmdSN && !(running && k == 0) ? 1 : 0) }
    }

    /// The numbers for a response that carries status: StatSN is used, then advanced.
    func nextStatus() -> SequenceNumbers {
        let sn = sequence
        statSN &+= 1
        return sn
    }

    // MARK: channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    /// Breaks the handler <-> context reference cycle when the pipeline lets go of us.
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        guard services.admit(context.channel) else {
            context.close(promise: nil)
            return
        }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        loginTimer = context.eventLoop.scheduleTask(in: services.limits.loginTimeout) {
            if loopBound.value.phase == .login { loopBound.value.close() }
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        teardown()
        context.fireChannelInactive()
    }

    /// Output drained below the watermark: the next command may run (see `pump`).
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { pump() }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        close()  // framing errors, resets: this connection only
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard phase != .closed else { return }
        heardFromInitiator = true
        let pdu = unwrapInboundIn(data)
        switch phase {
        case .login: handleLogin(pdu)
        case .fullFeature: handleFullFeature(pdu)
        case .closed: break
        }
    }

    /// Sends a last response and closes the connection once it is written, or after
    /// `closeGrace` if the peer does not take it (a peer that stopped reading cannot keep the
    /// connection, and the session's locks, that way). Nothing is received meanwhile.
    func sendLastAndClose(_ pdu: ISCSIPDU) {
        guard let context else { return }
        phase = .closed
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(pdu)).whenComplete { _ in loopBound.value.close(promise: nil) }
        closeTimer = context.eventLoop.scheduleTask(in: services.limits.closeGrace) {
            loopBound.value.close(promise: nil)
        }
    }

    /// Closes the connection; `teardown` follows from channelInactive.
    func close() {
        guard phase != .closed else { return }
        phase = .closed
        context?.close(promise: nil)
    }

    /// Once, when the connection is gone: detaches every nexus (on the pool, because a detach
    /// may complete a pending eject and call the drive's delegate), unregisters the session.
    private func teardown() {
        phase = .closed
        loginTimer?.cancel()
        closeTimer?.cancel()
        pingTimer?.cancel()
        tasks.removeAll()
        if let channel = context?.channel { services.forget(channel) }
        let nexus = self.nexus
        let provider = services.provider
        let registry = services.registry
        let removed = registered ? registry.remove(tsih) : nil
        registered = false
        services.pool.submit { _ in  // runs even when the pool is shutting down (state .cancelled)
            nexus.closeAndDetach()
            if let removed { registry.report(removed, to: provider) }
        }
    }

    func send(_ pdu: ISCSIPDU, flush: Bool = true) {
        guard let context, phase != .closed || pdu.opcode == .loginResponse else { return }
        context.write(wrapOutboundOut(pdu), promise: nil)
        if flush { context.flush() }
    }

    // MARK: login phase

    private func handleLogin(_ pdu: ISCSIPDU) {
        guard pdu.opcode == .loginRequest else { return close() }  // nothing else before login ends
        if !sawLoginRequest {
            sawLoginRequest = true
            expCmdSN = pdu.u32(at: 24)  // login is immediate: the first command reuses this CmdSN
        }
        let step = login.handle(pdu, provider: services.provider, tsih: tsih == 0 ? allocateTSIH() : tsih)
        var response = step.response
        response.stamp(nextStatus())
        switch step.outcome {
        case .proceed:
            send(response)
        case .refused:
            sendLastAndClose(response)
        case .fullFeature:
            send(response)
            enterFullFeature()
        }
    }

    private func allocateTSIH() -> UInt16 {
        tsih = services.registry.allocateTSIH()
        return tsih
    }

    private func enterFullFeature() {
        phase = .fullFeature
        loginTimer?.cancel()
        parameters = login.negotiator.parameters
        kind = login.kind ?? .discovery
        initiatorName = login.initiatorName ?? ""
        framing.headerDigest = parameters.headerDigest
        framing.dataDigest = parameters.dataDigest
        framing.maxDataSegment = parameters.targetMaxRecvDataSegmentLength
        startPinging()
        guard case .normal(let target) = kind, let context else { return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loop = context.eventLoop
        let entry = SessionRegistry.Entry(target: target, initiator: initiatorName, isid: login.isid) {
            loop.execute { loopBound.value.close() }
        }
        let registry = services.registry
        let replaced = registry.add(tsih, entry)
        registered = true
        for old in replaced { old.close() }  // session reinstatement (RFC 7143 6.3.5)
        let provider = services.provider
        services.pool.submit { _ in registry.report(target, to: provider) }
    }

    // MARK: full feature phase

    private func handleFullFeature(_ pdu: ISCSIPDU) {
        switch pdu.opcode {
        case .scsiCommand: handleCommand(pdu)
        case .dataOut: handleDataOut(pdu)
        case .nopOut: handleNopOut(pdu)
        case .taskManagementRequest: handleTaskManagement(pdu)
        case .textRequest: handleText(pdu)
        case .logoutRequest: handleLogout(pdu)
        case .loginRequest: reject(pdu, RejectReason.protocolError)
        case .snackRequest: reject(pdu, 0x03)  // SNACK Reject: ErrorRecoveryLevel is 0
        default: reject(pdu, RejectReason.commandNotSupported)
        }
    }

    func reject(_ pdu: ISCSIPDU, _ reason: UInt8) {
        send(.reject(reason: reason, of: pdu.bhs, nextStatus()))
    }

    /// Takes a request's CmdSN (RFC 7143 4.2.2.1): immediate requests leave ExpCmdSN alone;
    /// others must be in the window [ExpCmdSN, MaxCmdSN] and advance ExpCmdSN. False: outside the
    /// window, silently ignored.
    func acceptCmdSN(_ pdu: ISCSIPDU) -> Bool {
        let cmdSN = pdu.u32(at: 24)
        if pdu.immediate { return true }
        let sn = sequence
        guard !serialLess(cmdSN, sn.expCmdSN), !serialLess(sn.maxCmdSN, cmdSN) else { return false }
        expCmdSN = cmdSN &+ 1
        return true
    }

    func makeTargetTransferTag() -> UInt32 {
        defer {
            nextTargetTransferTag &+= 1
            if nextTargetTransferTag == ISCSIPDU.reservedTag { nextTargetTransferTag = 1 }
        }
        return nextTargetTransferTag
    }
}

/// Serial number arithmetic (RFC 1982, 32 bits): a < b.
func serialLess(_ a: UInt32, _ b: UInt32) -> Bool {
    a != b && Int32(bitPattern: a &- b) < 0
}
