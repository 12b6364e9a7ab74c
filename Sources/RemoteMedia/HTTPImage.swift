import AsyncHTTPClient
import CPosixShims
import Dispatch
import Glibc
import NIOCore
import NIOHTTP1
import SCSI
import Synchronization
import VirtualMedia

/// One image on an http(s) server, read in chunks with range requests into its file in the
/// `BlockCache`. A chunk several readers need is fetched once (they wait for the same fetch);
/// a read that follows the previous one starts fetching the chunks after it (readahead).
///
/// Every response is checked against what the server said at insert: a 206 whose
/// Content-Range covers the chunk of an image of the same size, with the same validator. Any
/// other answer about the image itself (200: no ranges now; another ETag; 404) marks the image
/// changed for good (`changeReason`). Transient failures (no connection, 5xx, no answer) are
/// retried with backoff until the read's time is up, and then reported as a retryable
/// 02/04/01; for a while after that, reads that need the network fail at once instead of each
/// waiting out the time again, so a dead server cannot tie up every FUSE worker.
final class HTTPImage: RemoteImage, @unchecked Sendable {
    let url: String
    let byteCount: UInt64
    let validator: String
    static let chunkSize = 1 << 20

    private let source: HTTPMediaSource
    private let cacheFD: Int32
    private let cachePath: String
    private let chunkCount: Int

    /// A fetch of one chunk that readers wait for.
    final class Fetch: Sendable {
        let done = DispatchGroup()
        let outcome = Mutex<MediumError??>(nil)   // nil: running; .some(nil): done; .some(e): failed
        init() { done.enter() }
        func finish(_ error: MediumError?) {
            outcome.withLock { $0 = .some(error) }
            done.leave()
        }
    }

    private struct State {
        var present: [Bool]
        var inflight: [Int: Fetch] = [:]
        /// Readers copying or splicing from a chunk: the cache does not drop it meanwhile.
        var pins: [Int: Int] = [:]
        var lastChunk = -1
        /// Until when (CLOCK_MONOTONIC ns) reads that need the network fail at once.
        var stalledUntil: UInt64 = 0
        var changeReason: String?
    }
    private let state: Mutex<State>

    init(url: String, size: UInt64, validator: String, source: HTTPMediaSource, cacheFile: (fd: Int32, path: String)) {
        self.url = url; byteCount = size; self.validator = validator; self.source = source
        cacheFD = cacheFile.fd; cachePath = cacheFile.path
        chunkCount = Int((size + UInt64(Self.chunkSize) - 1) / UInt64(Self.chunkSize))
        state = Mutex(State(present: [Bool](repeating: false, count: chunkCount)))
    }

    deinit {
        close(cacheFD)
        unlink(cachePath)
    }

    var changeReason: String? { state.withLock { $0.changeReason } }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(MediumError) -> Int {
        guard offset < byteCount, buffer.count > 0 else { return 0 }
        let count = Int(min(UInt64(buffer.count), byteCount - offset))
        let chunks = try pin(at: offset, count: count)
        defer { unpin(chunks) }
        try copy(into: buffer, count: count, at: offset)
        return count
    }

    /// The bytes in the cache file, pinned there until the lease ends (a reply splices them).
    func lease(at offset: UInt64, count: Int) throws(MediumError) -> ByteLease? {
        guard count > 0, offset < byteCount, UInt64(count) <= byteCount - offset else { return nil }
        let chunks = try pin(at: offset, count: count)
        return ByteLease(descriptor: cacheFD, offset: offset) { [self] in unpin(chunks) }
    }

    /// Fetches the chunks that hold `count` bytes at `offset` (or waits for the fetches under
    /// way) and pins them in the cache file; the caller unpins them.
    private func pin(at offset: UInt64, count: Int) throws(MediumError) -> ClosedRange<Int> {
        let chunks = Int(offset / UInt64(Self.chunkSize))...Int((offset + UInt64(count) - 1) / UInt64(Self.chunkSize))
        let deadline = monotonicNanos() + UInt64(source.readTimeout * 1e9)
        for _ in 0..<8 {
            let (waits, started, sequential) = try plan(chunks)
            for fetch in started { run(fetch.1, chunk: fetch.0, deadline: deadline, attempt: 0) }
            for fetch in waits { try wait(fetch, until: deadline) }
            let pinned = state.withLock { s in
                guard chunks.allSatisfy({ s.present[$0] }) else { return false }
                for c in chunks { s.pins[c, default: 0] += 1 }
                return true
            }
            guard pinned else { continue }   // dropped again before it could be pinned: fetch it again
            source.cache.used(self, chunks: chunks, hit: waits.isEmpty)
            if sequential { readAhead(after: chunks.upperBound) }
            return chunks
        }
        throw MediumError(reason: "\(url): the block cache is too small for the reads in flight", sense: .becomingReady)
    }

    private func unpin(_ chunks: ClosedRange<Int>) {
        state.withLock { s in
            for c in chunks {
                let left = (s.pins[c] ?? 1) - 1
                s.pins[c] = left > 0 ? left : nil
            }
        }
    }

    /// Under the lock: which fetches the read waits for, which it starts, and whether it
    /// follows the previous read.
    private func plan(_ chunks: ClosedRange<Int>) throws(MediumError) -> ([Fetch], [(Int, Fetch)], Bool) {
        let now = monotonicNanos()
        return try state.withLock { (s: inout State) throws(MediumError) -> ([Fetch], [(Int, Fetch)], Bool) in
            if let why = s.changeReason { throw MediumError(reason: why) }
            var waits: [Fetch] = []
            var started: [(Int, Fetch)] = []
            if s.stalledUntil > now, chunks.contains(where: { !s.present[$0] && s.inflight[$0] == nil }) {
                throw MediumError(reason: "\(url): the server did not answer in time; retry later", sense: .becomingReady)
            }
            for c in chunks where !s.present[c] {
                if let f = s.inflight[c] { waits.append(f); continue }
                let f = Fetch()
                s.inflight[c] = f
                waits.append(f)
                started.append((c, f))
            }
            let sequential = chunks.lowerBound == s.lastChunk || chunks.lowerBound == s.lastChunk + 1
            s.lastChunk = chunks.upperBound
            return (waits, started, sequential)
        }
    }

    private func wait(_ fetch: Fetch, until deadline: UInt64) throws(MediumError) {
        let left = deadline > monotonicNanos() ? deadline - monotonicNanos() : 0
        if fetch.done.wait(timeout: .now() + .nanoseconds(Int(min(left, UInt64(Int.max))))) == .timedOut {
            throw MediumError(reason: "\(url): the server did not answer within \(source.readTimeout) s", sense: .becomingReady)
        }
        if case .some(.some(let error)) = fetch.outcome.withLock({ $0 }) { throw error }
    }

    private func copy(into buffer: UnsafeMutableRawBufferPointer, count: Int, at offset: UInt64) throws(MediumError) {
        var done = 0
        while done < count {
            let n = pread(cacheFD, buffer.baseAddress! + done, count - done, off_t(offset) + off_t(done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw MediumError(reason: "\(url): reading the block cache: \(String(cString: strerror(errno)))") }
            done += n
        }
    }

    /// Starts fetching the chunks after `chunk` that are neither here nor on their way.
    private func readAhead(after chunk: Int) {
        let now = monotonicNanos()
        let window = source.readaheadChunks
        let started: [(Int, Fetch)] = state.withLock { s in
            guard s.changeReason == nil, s.stalledUntil <= now else { return [] }
            var out: [(Int, Fetch)] = []
            for c in (chunk + 1)..<min(chunkCount, chunk + 1 + window) where !s.present[c] && s.inflight[c] == nil {
                let f = Fetch()
                s.inflight[c] = f
                out.append((c, f))
            }
            return out
        }
        let deadline = now + UInt64(source.readTimeout * 1e9)
        for (c, f) in started { run(f, chunk: c, deadline: deadline, attempt: 0) }
    }

    /// Sends the range request for `chunk`, checks the answer, stores it; retries transient
    /// failures with backoff (50 ms doubling, at most 1 s apart) until `deadline`.
    private func run(_ fetch: Fetch, chunk: Int, deadline: UInt64, attempt: Int) {
        let start = UInt64(chunk) * UInt64(Self.chunkSize)
        let end = min(byteCount, start + UInt64(Self.chunkSize)) - 1
        let now = monotonicNanos()
        guard now < deadline else {
            return finish(fetch, chunk: chunk, .transient("the server did not answer within \(source.readTimeout) s"))
        }
        let future = source.get(url, range: start...end, deadline: .now() + .nanoseconds(Int64(deadline - now)))
        future.whenComplete { [self] result in
            let verdict: Verdict
            switch result {
            case .failure(let error): verdict = .transient(HTTPMediaSource.describe(error))
            case .success(let response): verdict = check(response, start: start, end: end)
            }
            guard case .transient = verdict, monotonicNanos() < deadline else { return finish(fetch, chunk: chunk, verdict) }
            let backoff = min(1_000_000_000, 50_000_000 << min(attempt, 5))
            future.eventLoop.scheduleTask(in: .nanoseconds(Int64(backoff))) { [self] in
                run(fetch, chunk: chunk, deadline: deadline, attempt: attempt + 1)
            }
        }
    }

    enum Verdict { case stored(Int), changed(String), transient(String) }

    private func check(_ response: HTTPClient.Response, start: UInt64, end: UInt64) -> Verdict {
        switch response.status.code {
        case 206: break
        case 200: return .changed("\(url): the server no longer answers range requests")
        case 404, 410: return .changed("\(url): the image is gone from the server (\(response.status.code))")
        case 401, 403: return .changed("\(url): the server refuses access now (\(response.status.code))")
        case 416: return .changed("\(url): the image on the server is shorter than the \(byteCount) bytes loaded")
        case 500...599, 408, 429: return .transient("the server answered \(response.status.code)")
        default: return .changed("\(url): unexpected answer \(response.status.code) to a range request")
        }
        if let now = HTTPMediaSource.validator(of: response.headers), now != validator {
            return .changed("\(url): the image changed on the server (validator \(validator) -> \(now))")
        }
        guard let range = HTTPMediaSource.contentRange(response.headers), range.total == byteCount else {
            return .changed("\(url): the image on the server is no longer \(byteCount) bytes")
        }
        guard range.first == start, range.last == end, var body = response.body, body.readableBytes == Int(end - start + 1) else {
            return .transient("the server sent another range than asked (\(start)-\(end))")
        }
        let written = body.readWithUnsafeReadableBytes { raw -> Int in
            var done = 0
            while done < raw.count {
                let n = pwrite(cacheFD, raw.baseAddress! + done, raw.count - done, off_t(start) + off_t(done))
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return -1 }
                done += n
            }
            return done
        }
        guard written >= 0 else { return .transient("writing the block cache: \(String(cString: strerror(errno)))") }
        return .stored(written)
    }

    private func finish(_ fetch: Fetch, chunk: Int, _ verdict: Verdict) {
        let error: MediumError?
        let stored: Int?
        switch verdict {
        case .stored(let bytes): error = nil; stored = bytes
        case .changed(let why): error = MediumError(reason: why); stored = nil
        case .transient(let why):
            error = MediumError(reason: "\(url): \(why)", sense: .becomingReady); stored = nil
        }
        let hold = monotonicNanos() + UInt64(min(source.readTimeout, 5) * 1e9)
        state.withLock { s in
            s.inflight[chunk] = nil
            switch verdict {
            case .stored: s.present[chunk] = true; s.stalledUntil = 0
            case .changed(let why): if s.changeReason == nil { s.changeReason = why }
            case .transient: s.stalledUntil = hold
            }
        }
        if let stored { source.cache.added(self, chunk: chunk, bytes: stored) }
        fetch.finish(error)
    }

    /// The cache drops `chunk` (called under the cache's lock): punches it out of the file,
    /// unless a reader holds it pinned (then false, and it stays). The hole is made under the
    /// image's lock, so that a fetch of the same chunk cannot land first and be punched out.
    func forget(chunk: Int) -> Bool {
        state.withLock { s in
            guard s.pins[chunk] == nil else { return false }
            s.present[chunk] = false
            let start = off_t(chunk) * off_t(Self.chunkSize)
            _ = vmfs_punch_hole(cacheFD, Int64(start), Int64(Self.chunkSize))
            return true
        }
    }
}

func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
