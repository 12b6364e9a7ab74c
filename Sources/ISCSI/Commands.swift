import NIOCore
import SCSI

/// A SCSI command received and not yet answered. Event-loop only.
final class CommandTask {
    let itt: UInt32
    let lunField: UInt64
    let lun: UInt64
    let cdb: [UInt8]
    let expectedLength: Int
    let readsData: Bool
    /// Sent without the I bit: it took a place in the CmdSN window.
    let tookCmdSN: Bool
    /// Write-direction data collected before the command runs (immediate data, then R2T/Data-Out),
    /// grown as it arrives: a queued command holds only the bytes it was sent.
    var dataOut: [UInt8] = []
    var received = 0
    var collecting = false
    /// The outstanding R2T's tag, if any (MaxOutstandingR2T is 1).
    var r2tTag: UInt32?
    var r2tSN: UInt32 = 0
    /// Aborted by task management: it finishes silently.
    var aborted = false

    init(itt: UInt32, lunField: UInt64, lun: UInt64, cdb: [UInt8], expectedLength: Int, readsData: Bool,
         tookCmdSN: Bool) {
        self.itt = itt
        self.lunField = lunField
        self.lun = lun
        self.cdb = cdb
        self.expectedLength = expectedLength
        self.readsData = readsData
        self.tookCmdSN = tookCmdSN
    }

    var waitingForData: Bool { collecting && received < expectedLength }
}

extension ISCSIConnection {
    /// Write-direction commands with an expected length up to this are collected (R2T) before
    /// they run; larger ones (no command of a CD drive writes that much: WRITE gets 07/27/00) run
    /// at once with only their immediate data, and are sent no R2T.
    static let collectLimit = 1_048_576

    /// SCSI Command (RFC 7143 11.3).
    func handleCommand(_ pdu: ISCSIPDU) {
        guard case .normal = kind else { return reject(pdu, RejectReason.protocolError) }
        guard acceptCmdSN(pdu) else { return }
        // Past the window and three more of immediate commands: a peer that ignores MaxCmdSN.
        guard tasks.count < 4 * services.limits.commandWindow else { return close() }
        let flags = pdu.flags
        let writes = flags & 0x20 != 0
        let expected = Int(pdu.u32(at: 20))
        guard let cdb = ISCSIConnection.cdb(of: pdu) else { return close() }  // malformed AHS
        let task = CommandTask(itt: pdu.initiatorTaskTag, lunField: pdu.lunField, lun: pdu.lun, cdb: cdb,
                               expectedLength: expected, readsData: flags & 0x40 != 0, tookCmdSN: !pdu.immediate)
        if !pdu.data.isEmpty {  // immediate data: only if negotiated, for writes, within FirstBurstLength
            guard parameters.immediateData, writes, pdu.data.count <= min(expected, parameters.firstBurstLength) else { return close() }
        }
        guard queuedDataBytes + pdu.data.count <= services.limits.maxQueuedData else { return answerBusy(task) }
        task.dataOut = pdu.data
        task.received = pdu.data.count
        task.collecting = writes && expected > 0 && expected <= ISCSIConnection.collectLimit
        tasks.append(task)
        pump()
    }

    /// Write data held by queued commands (immediate data and what was collected so far).
    var queuedDataBytes: Int { tasks.reduce(0) { $0 + $1.dataOut.count } }

    /// BUSY at once, for a command whose immediate data would take the connection past
    /// `maxQueuedData`: the initiator retries it later (SAM-5 5.3.1).
    private func answerBusy(_ task: CommandTask) {
        send(ResponseBuilder.scsiResponse(itt: task.itt, status: .busy, sense: [], produced: 0,
                                          expected: task.expectedLength, sn: nextStatus()))
    }

    /// A command's CDB: bytes 32-47 of the BHS, then those of an Extended CDB AHS (RFC 7143
    /// 11.2.2.3) when the first AHS is one. Its AHSLength counts a reserved byte plus the CDB bytes
    /// past 16, so it is at least 1 and fits in the AHS the PDU carries; nil when it does not.
    static func cdb(of pdu: ISCSIPDU) -> [UInt8]? {
        let base = Array(pdu.bhs[32..<48])
        guard pdu.ahs.count >= 4, pdu.ahs[2] == 0x01 else { return base }
        let length = Int(pdu.ahs[0]) << 8 | Int(pdu.ahs[1])
        guard length >= 1, 3 + length <= pdu.ahs.count else { return nil }
        return base + pdu.ahs[4..<3 + length]
    }

    /// Sends an R2T for the next burst of `task`'s data (RFC 7143 11.8).
    func requestData(_ task: CommandTask) {
        let length = min(task.expectedLength - task.received, parameters.maxBurstLength)
        guard length > 0 else { return }
        let ttt = makeTargetTransferTag()
        task.r2tTag = ttt
        var p = ISCSIPDU(opcode: .readyToTransfer, flags: 0x80)
        p.lunField = task.lunField
        p.initiatorTaskTag = task.itt
        p.setU32(ttt, at: 20)
        p.stamp(sequence)  // StatSN is the next one, not advanced
        p.setU32(task.r2tSN, at: 36)
        p.setU32(UInt32(task.received), at: 40)
        p.setU32(UInt32(length), at: 44)
        task.r2tSN &+= 1
        send(p)
    }

    /// SCSI Data-Out (RFC 7143 11.7), only ever solicited: we negotiate InitialR2T=Yes and ask
    /// only the first queued command for its data, so one command collects at a time. Data for a
    /// task or burst we no longer have is dropped; unsolicited data, or data not at the next
    /// offset (DataPDUInOrder=Yes) or past the expected length, is a protocol error that closes
    /// the connection.
    func handleDataOut(_ pdu: ISCSIPDU) {
        let ttt = pdu.u32(at: 20)
        guard ttt != ISCSIPDU.reservedTag else { return close() }
        guard let task = tasks.first(where: { $0.itt == pdu.initiatorTaskTag }), task.collecting,
              ttt == task.r2tTag else { return }
        let offset = Int(pdu.u32(at: 40))
        guard offset == task.received, offset + pdu.data.count <= task.expectedLength else { return close() }
        task.dataOut += pdu.data
        task.received += pdu.data.count
        guard pdu.final else { return }
        task.r2tTag = nil  // the burst is over: the next R2T, or the command, follows
        pump()
    }

    /// Starts the first queued command if none is running and its data is complete; asks for
    /// the data (R2T) when it is not. While the connection's output is above its watermark
    /// nothing starts (`channelWritabilityChanged` calls again), so a peer that does not read
    /// holds at most one command's answer here.
    func pump() {
        guard !running, phase == .fullFeature, let task = tasks.first else { return }
        if task.aborted { tasks.removeFirst(); return pump() }
        if task.waitingForData {
            if task.r2tTag == nil { requestData(task) }
            return
        }
        guard case .normal(let target) = kind, let context, context.channel.isWritable else { return }
        running = true
        let prefetch = task.readsData ? min(task.expectedLength, services.limits.readChunk) : 0
        let request = CommandRequest(target: target, lun: task.lun, cdb: task.cdb, dataOut: task.dataOut,
                                     prefetch: prefetch, expected: task.expectedLength)
        let provider = services.provider
        let nexus = self.nexus
        services.pool.runIfActive(eventLoop: context.eventLoop) {
            SCSIDispatch.execute(request, provider: provider, nexus: nexus)
        }.assumeIsolated().whenComplete { result in
            guard self.phase == .fullFeature else { return }
            switch result {
            case .success(let outcome?): self.answer(task, outcome)
            case .success(nil): return
            case .failure: self.close()
            }
        }
    }

    /// Answers a finished command: GOOD with data as Data-In (status in the last one), anything
    /// else as a SCSI Response.
    private func answer(_ task: CommandTask, _ executed: ExecutedCommand) {
        let result = executed.result
        if task.aborted { return finish(task) }
        guard result.status == .good, result.data.count > 0 else {
            send(ResponseBuilder.scsiResponse(itt: task.itt, status: result.status, sense: result.senseBytes,
                                              produced: result.data.count, expected: task.expectedLength,
                                              sn: nextStatus()))
            return finish(task)
        }
        let total = result.data.count
        let toSend = task.readsData ? min(total, task.expectedLength) : 0
        guard toSend > 0 else {
            send(ResponseBuilder.scsiResponse(itt: task.itt, status: .good, sense: [], produced: total,
                                              expected: task.expectedLength, sn: nextStatus()))
            return finish(task)
        }
        var stream = DataInStream(task: task, total: total, toSend: toSend,
                                  segment: min(parameters.initiatorMaxRecvDataSegmentLength, 262_144),
                                  burst: parameters.maxBurstLength)
        switch result.data {
        case .bytes(let bytes):
            stream.emit(bytes[0..<toSend], last: true, on: self)
            finish(task)
        case .blocks(let range):
            if let bytes = executed.prefetched, bytes.count >= toSend {
                stream.emit(bytes[0..<toSend], last: true, on: self)
                finish(task)
            } else {
                sendBlocks(range, stream: stream)
            }
        case .none:
            finish(task)
        }
    }

    /// A READ's data, read on the pool a chunk at a time; the next chunk is read once the
    /// previous one is written (so a slow reader holds one chunk, not the whole transfer).
    private func sendBlocks(_ range: BlockRange, stream: DataInStream) {
        guard let context else { return }
        let from = stream.offset
        let chunk = stream.chunkSize(services.limits.readChunk)
        let count = min(chunk, stream.toSend - from)
        services.pool.runIfActive(eventLoop: context.eventLoop) { () -> Result<[UInt8], MediumError> in
            do throws(MediumError) { return .success(try SCSIDispatch.readChunk(range, from: from, count: count)) }
            catch { return .failure(error) }
        }.assumeIsolated().whenComplete { result in
            guard self.phase == .fullFeature else { return }
            let task = stream.task
            switch result {
            case .success(.success(let bytes)):
                var stream = stream
                let last = from + count >= stream.toSend
                let written = stream.emit(bytes[...], last: last, on: self)
                if last || task.aborted { return self.finish(task) }
                written.assumeIsolated().whenComplete { _ in
                    guard self.phase == .fullFeature else { return }
                    self.sendBlocks(range, stream: stream)
                }
            case .success(.failure(let error)):
                let sense = CommandResult.checkCondition(error.sense).senseBytes
                self.send(ResponseBuilder.scsiResponse(itt: task.itt, status: .checkCondition, sense: sense,
                                                       produced: 0, expected: task.expectedLength,
                                                       sn: self.nextStatus()))
                self.finish(task)
            case .failure:
                self.close()
            }
        }
    }

    func finish(_ task: CommandTask) {
        if let i = tasks.firstIndex(where: { $0 === task }) { tasks.remove(at: i) }
        running = false
        pump()
    }
}

/// Cuts one command's data-in into Data-In PDUs: each at most the initiator's
/// MaxRecvDataSegmentLength, F at the end of every MaxBurstLength sequence, status (S) and
/// residual in the very last one (RFC 7143 11.7).
struct DataInStream {
    let task: CommandTask
    let total: Int
    let toSend: Int
    let segment: Int
    let burst: Int
    var offset = 0
    var dataSN: UInt32 = 0
    var burstLeft: Int

    init(task: CommandTask, total: Int, toSend: Int, segment: Int, burst: Int) {
        self.task = task
        self.total = total
        self.toSend = toSend
        self.segment = max(512, segment)
        self.burst = max(512, burst)
        self.burstLeft = self.burst
    }

    /// A chunk size that is a whole number of segments, about `target` bytes.
    func chunkSize(_ target: Int) -> Int { max(1, target / segment) * segment }

    /// Writes PDUs for `bytes` (the next bytes of the stream); returns the last write's future.
    @discardableResult
    /// Sends `bytes` as Data-In PDUs of at most a segment each (a slice: the caller's
    /// buffer is not copied whole first).
    mutating func emit(_ bytes: ArraySlice<UInt8>, last: Bool, on connection: ISCSIConnection) -> EventLoopFuture<Void> {
        var pos = 0
        var future: EventLoopFuture<Void>?
        while pos < bytes.count {
            let n = min(segment, bytes.count - pos, burstLeft)
            burstLeft -= n
            let end = last && pos + n == bytes.count
            let sequenceEnd = end || burstLeft == 0
            if burstLeft == 0 { burstLeft = burst }
            let sn = end ? connection.nextStatus() : connection.sequence
            let pdu = ResponseBuilder.dataIn(itt: task.itt, lunField: task.lunField, data: Array(bytes[bytes.startIndex + pos ..< bytes.startIndex + pos + n]),
                                             offset: offset, dataSN: dataSN, final: sequenceEnd,
                                             status: end ? (total, task.expectedLength) : nil, sn: sn)
            future = connection.write(pdu)
            pos += n
            offset += n
            dataSN &+= 1
        }
        connection.context?.flush()
        return future ?? connection.context!.eventLoop.makeSucceededVoidFuture()
    }
}

extension ISCSIConnection {
    /// Writes without flushing; the future completes when the PDU is on the wire.
    func write(_ pdu: ISCSIPDU) -> EventLoopFuture<Void> {
        context!.write(wrapOutboundOut(pdu))
    }
}
