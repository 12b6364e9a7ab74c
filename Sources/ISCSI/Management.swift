import NIOCore
import SCSI

/// The non-SCSI requests of the full feature phase: NOP-Out, Task Management, Text (SendTargets)
/// and Logout (RFC 7143 11.5, 11.10, 11.14, 11.18).
extension ISCSIConnection {
    /// NOP-Out: a ping (ITT set) is answered with a NOP-In echoing its data; a NOP-Out with the
    /// reserved ITT only updates ExpStatSN and gets no answer.
    func handleNopOut(_ pdu: ISCSIPDU) {
        guard acceptCmdSN(pdu) else { return }
        guard pdu.initiatorTaskTag != ISCSIPDU.reservedTag else {
            if pdu.u32(at: 20) == outstandingPing { outstandingPing = nil }  // the answer to our ping
            return
        }
        var p = ISCSIPDU(opcode: .nopIn, flags: 0x80)
        p.lunField = pdu.lunField
        p.initiatorTaskTag = pdu.initiatorTaskTag
        p.setU32(ISCSIPDU.reservedTag, at: 20)
        p.stamp(nextStatus())
        p.data = Array(pdu.data.prefix(parameters.initiatorMaxRecvDataSegmentLength))
        send(p)
    }

    /// Dead-peer detection: every `pingInterval` without a PDU from the initiator we send a
    /// NOP-In ping (RFC 7143 11.19, TTT set, ITT reserved); if the next interval passes with
    /// still nothing heard, the connection is closed, which detaches the session's nexuses (so a
    /// vanished guest does not keep its drives locked).
    func startPinging() {
        guard let context else { return }
        let interval = services.limits.pingInterval
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        pingTimer = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            loopBound.value.checkAlive()
        }
    }

    func checkAlive() {
        guard phase == .fullFeature else { return }
        if heardFromInitiator {
            heardFromInitiator = false
            return
        }
        if outstandingPing != nil { return close() }
        let tag = makeTargetTransferTag()
        outstandingPing = tag
        var p = ISCSIPDU(opcode: .nopIn, flags: 0x80)
        p.lunField = 0
        p.initiatorTaskTag = ISCSIPDU.reservedTag
        p.setU32(tag, at: 20)
        p.stamp(sequence)  // StatSN not advanced with the reserved ITT
        send(p)
    }

    /// Task management function codes (11.5.1) and responses (11.6.1).
    enum TMF {
        static let abortTask: UInt8 = 1, abortTaskSet: UInt8 = 2, clearACA: UInt8 = 3, clearTaskSet: UInt8 = 4
        static let lunReset: UInt8 = 5, targetWarmReset: UInt8 = 6, targetColdReset: UInt8 = 7, taskReassign: UInt8 = 8
        static let complete: UInt8 = 0, taskDoesNotExist: UInt8 = 1, lunDoesNotExist: UInt8 = 2
        static let reassignmentNotSupported: UInt8 = 4, notSupported: UInt8 = 5
    }

    /// Task Management. Commands run one at a time and quickly, so an abort usually finds the task
    /// already answered. A queued task is dropped; the running one finishes without a response.
    /// LUN RESET and TARGET WARM RESET reset this session's nexuses (locks released, 06/29/00 next);
    /// TARGET COLD RESET also closes the connection after the response.
    func handleTaskManagement(_ pdu: ISCSIPDU) {
        guard case .normal(let target) = kind else { return reject(pdu, RejectReason.protocolError) }
        guard acceptCmdSN(pdu) else { return }
        let function = pdu.flags & 0x7F
        let lun = pdu.lun
        let lunExists = services.provider.lun(lun, of: target) != nil
        var response = TMF.complete
        switch function {
        case TMF.abortTask:
            let referenced = pdu.u32(at: 20)
            if let task = tasks.first(where: { $0.itt == referenced }) {
                abort([task])
            } else {
                // Not found: complete if the referenced command was received before this request (11.5.1).
                let refCmdSN = pdu.u32(at: 32)
                response = serialLess(refCmdSN, pdu.u32(at: 24)) && !serialLess(refCmdSN, expCmdSN &- 0x8000_0000)
                    ? TMF.complete : TMF.taskDoesNotExist
            }
        case TMF.abortTaskSet, TMF.clearTaskSet:
            if lunExists { abort(tasks.filter { $0.lun == lun }) } else { response = TMF.lunDoesNotExist }
        case TMF.lunReset:
            if lunExists {
                abort(tasks.filter { $0.lun == lun })
                resetNexus([lun])
            } else {
                response = TMF.lunDoesNotExist
            }
        case TMF.targetWarmReset, TMF.targetColdReset:
            abort(tasks)
            resetNexus(nexus.attachedLUNs)
        case TMF.clearACA:
            response = TMF.notSupported
        case TMF.taskReassign:
            response = TMF.reassignmentNotSupported
        default:
            response = TMF.notSupported
        }
        var p = ISCSIPDU(opcode: .taskManagementResponse, flags: 0x80)
        p.bhs[2] = response
        p.initiatorTaskTag = pdu.initiatorTaskTag
        p.stamp(nextStatus())
        send(p)
        if function == TMF.targetColdReset && response == TMF.complete { close() }
    }

    private func abort(_ victims: [CommandTask]) {
        for task in victims {
            task.aborted = true
            if !(running && tasks.first === task) {
                tasks.removeAll { $0 === task }
            }
        }
        if !running { pump() }
    }

    private func resetNexus(_ luns: [UInt64]) {
        let nexus = self.nexus
        services.pool.submit { _ in for lun in luns { nexus.reset(lun: lun) } }
    }

    /// Text Request: SendTargets (Appendix C) and nothing else. A response longer than the
    /// initiator's MaxRecvDataSegmentLength goes in pieces (C bit, our Target Transfer Tag).
    func handleText(_ pdu: ISCSIPDU) {
        guard acceptCmdSN(pdu) else { return }
        let ttt = pdu.u32(at: 20)
        if let pending = pendingText, ttt == pending.ttt {
            return sendText(pdu, pending.data)
        }
        pendingText = nil
        textRequestBuffer += pdu.data
        guard textRequestBuffer.count <= 65_536 else { return close() }
        if pdu.flags & 0x40 != 0 {  // C: more request text follows
            return sendText(pdu, [], continuing: true)
        }
        guard let pairs = TextKeys.parse(textRequestBuffer) else {
            textRequestBuffer = []
            return reject(pdu, RejectReason.invalidPDUField)
        }
        textRequestBuffer = []
        var answer: [(key: String, value: String)] = []
        for (key, value) in pairs {
            if key == "SendTargets" {
                answer += sendTargets(value)
            } else {
                answer.append((key, "NotUnderstood"))
            }
        }
        sendText(pdu, TextKeys.encode(answer))
    }

    private func sendText(_ request: ISCSIPDU, _ data: [UInt8], continuing: Bool = false) {
        let limit = parameters.initiatorMaxRecvDataSegmentLength
        var p = ISCSIPDU(opcode: .textResponse)
        p.lunField = request.lunField
        p.initiatorTaskTag = request.initiatorTaskTag
        if continuing {
            p.setU32(makeTargetTransferTag(), at: 20)
        } else if data.count > limit {
            let tag = makeTargetTransferTag()
            p.flags = 0x40  // C: more follows
            p.setU32(tag, at: 20)
            p.data = Array(data[0..<limit])
            pendingText = (tag, Array(data[limit...]))
        } else {
            p.flags = 0x80
            p.setU32(ISCSIPDU.reservedTag, at: 20)
            p.data = data
            pendingText = nil
        }
        p.stamp(nextStatus())
        send(p)
    }

    /// SendTargets=All: every target the initiator may reach; =NAME: that one if it may;
    /// empty (normal session): the session's own target.
    private func sendTargets(_ value: String) -> [(key: String, value: String)] {
        let allowed = services.provider.discoverableTargets(initiator: initiatorName)
        let names: [String]
        switch value {
        case "All": names = allowed
        case "": if case .normal(let t) = kind { names = [t] } else { names = [] }
        default: names = allowed.contains(value) ? [value] : []
        }
        let address = portalAddress()
        return names.flatMap { [("TargetName", $0), ("TargetAddress", address)] }
    }

    /// "host:port,1" of the address the initiator connected to (IPv6 in brackets).
    private func portalAddress() -> String {
        guard let local = context?.channel.localAddress, let ip = local.ipAddress, let port = local.port else {
            return "127.0.0.1:3260,1"
        }
        if case .v6 = local { return "[\(ip)]:\(port),1" }
        return "\(ip):\(port),1"
    }

    /// Logout: answered at once, then the connection closes (which detaches the session's nexuses).
    func handleLogout(_ pdu: ISCSIPDU) {
        _ = acceptCmdSN(pdu)
        var p = ISCSIPDU(opcode: .logoutResponse, flags: 0x80)
        p.bhs[2] = 0  // connection or session closed successfully
        p.initiatorTaskTag = pdu.initiatorTaskTag
        p.stamp(nextStatus())
        p.setU16(0, at: 40)  // Time2Wait
        p.setU16(0, at: 42)  // Time2Retain
        sendLastAndClose(p)
    }
}
