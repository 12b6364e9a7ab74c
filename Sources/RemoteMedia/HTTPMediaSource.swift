import AsyncHTTPClient
import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import VirtualMedia

/// How URL media are fetched and kept (`--media-url`, `-o url_cache=`, `-o url_timeout=`).
public struct RemoteMediaOptions: Sendable {
    public var rules: URLRules
    /// Where the cache files live (made 0700, emptied at start).
    public var cacheDirectory: String
    /// The most bytes of all URL images kept on disk.
    public var cacheBytes: UInt64
    /// How long a read may wait for the server, retries included, before the guest gets
    /// 02/04/01 and a file reader EIO.
    public var readTimeout: Double
    /// Chunks (1 MiB) fetched ahead of a sequential reader.
    public var readaheadChunks: Int
    public init(rules: URLRules, cacheDirectory: String, cacheBytes: UInt64 = 1 << 30, readTimeout: Double = 10,
                readaheadChunks: Int = 8) {
        self.rules = rules; self.cacheDirectory = cacheDirectory; self.cacheBytes = cacheBytes
        self.readTimeout = readTimeout; self.readaheadChunks = readaheadChunks
    }
}

/// URL media over HTTP/1.1 and HTTPS with async-http-client: TLS verified against the
/// system's CAs, no redirects followed (a redirect could leave the allowed prefixes), no
/// compression asked for (ranges are of the image's own bytes).
public final class HTTPMediaSource: RemoteMediaSource, @unchecked Sendable {
    let rules: URLRules
    let cache: BlockCache
    let readTimeout: Double
    let readaheadChunks: Int
    private let group: MultiThreadedEventLoopGroup
    private let client: HTTPClient
    /// The images alive now, by URL and validator: two drives holding one URL, or one URL
    /// inserted again while its chunks are cached, share one image and its cache.
    private let images = Mutex<[String: WeakImage]>([:])
    private struct WeakImage { weak var image: HTTPImage? }

    public init(_ options: RemoteMediaOptions) {
        rules = options.rules
        cache = BlockCache(directory: options.cacheDirectory, limit: options.cacheBytes)
        readTimeout = options.readTimeout
        readaheadChunks = options.readaheadChunks
        group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(Int64(max(1, min(options.readTimeout, 30)))), read: .seconds(Int64(max(1, options.readTimeout)))),
            connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 8),
            decompression: .disabled)
        configuration.httpVersion = .http1Only
        client = HTTPClient(eventLoopGroup: group, configuration: configuration)
    }

    /// Ends the client's connections and threads (at daemon exit).
    public func shutdown() {
        try? client.syncShutdown()
        try? group.syncShutdownGracefully()
    }

    /// Bytes held in the cache, reads served from it, reads that fetched.
    public var cacheStatistics: (bytes: UInt64, hits: UInt64, misses: UInt64) { cache.statistics }

    public func open(_ url: String, timeout: Double) throws(VMError) -> any RemoteImage {
        let checked = try rules.check(url)
        let response: HTTPClient.Response
        do {
            response = try get(checked, range: 0...0, deadline: .now() + .milliseconds(Int64(timeout * 1000))).wait()
        } catch {
            throw VMError(EIO, "\(checked): \(Self.describe(error))")
        }
        switch response.status.code {
        case 206: break
        case 200: throw VMError(EINVAL, "\(checked): the server does not support range requests")
        case 416: throw VMError(EINVAL, "\(checked) is empty, not an image")
        case 404, 410: throw VMError(ENOENT, "\(checked): no such image on the server (\(response.status.code))")
        case 401, 403: throw VMError(EACCES, "\(checked): the server refuses access (\(response.status.code))")
        case 300...399:
            let location = response.headers.first(name: "location") ?? "?"
            throw VMError(EINVAL, "\(checked): the server redirects to \(location); insert that URL")
        default: throw VMError(EIO, "\(checked): the server answered \(response.status.code)")
        }
        guard let range = Self.contentRange(response.headers), range.first == 0, range.total > 0 else {
            throw VMError(EINVAL, "\(checked): the server's answer to a range request has no usable Content-Range")
        }
        guard let validator = Self.validator(of: response.headers) else {
            throw VMError(EINVAL, "\(checked): the server sends neither ETag nor Last-Modified, so a change of the image could not be noticed")
        }
        return try image(checked, size: range.total, validator: validator)
    }

    public func reopen(_ url: String, size: UInt64, validator: String) throws(VMError) -> any RemoteImage {
        try image(try rules.check(url), size: size, validator: validator)
    }

    private func image(_ url: String, size: UInt64, validator: String) throws(VMError) -> HTTPImage {
        let key = "\(validator) \(size) \(url)"
        return try images.withLock { (live: inout [String: WeakImage]) throws(VMError) -> HTTPImage in
            if let existing = live[key]?.image { return existing }
            live = live.filter { $0.value.image != nil }
            guard let file = cache.makeFile(size: size) else {
                throw VMError(EIO, "cannot create a cache file in \(cache.directory): \(String(cString: strerror(errno)))")
            }
            let made = HTTPImage(url: url, size: size, validator: validator, source: self, cacheFile: file)
            live[key] = WeakImage(image: made)
            return made
        }
    }

    /// A GET of `range` (bytes, inclusive) of `url`, with the credentials of its prefix.
    func get(_ url: String, range: ClosedRange<UInt64>, deadline: NIODeadline) -> EventLoopFuture<HTTPClient.Response> {
        var headers = HTTPHeaders([("Range", "bytes=\(range.lowerBound)-\(range.upperBound)"), ("Accept-Encoding", "identity")])
        if let auth = rules.authorization(for: url) { headers.add(name: "Authorization", value: auth) }
        do {
            let request = try HTTPClient.Request(url: url, method: .GET, headers: headers)
            return client.execute(request: request, deadline: deadline)
        } catch {
            return group.next().makeFailedFuture(error)
        }
    }

    /// The ETag if there is one, else Last-Modified (a strong ETag, `W/"..."` or a date).
    static func validator(of headers: HTTPHeaders) -> String? {
        headers.first(name: "etag") ?? headers.first(name: "last-modified")
    }

    /// `Content-Range: bytes FIRST-LAST/TOTAL`.
    static func contentRange(_ headers: HTTPHeaders) -> (first: UInt64, last: UInt64, total: UInt64)? {
        guard let value = headers.first(name: "content-range"), value.hasPrefix("bytes ") else { return nil }
        let parts = value.dropFirst(6).split(separator: "/")
        guard parts.count == 2, let total = UInt64(parts[1]) else { return nil }
        let bounds = parts[0].split(separator: "-")
        guard bounds.count == 2, let first = UInt64(bounds[0]), let last = UInt64(bounds[1]), first <= last, last < total else { return nil }
        return (first, last, total)
    }

    /// One line for an HTTP client failure.
    static func describe(_ error: any Error) -> String {
        if let e = error as? HTTPClientError {
            switch e {
            case .deadlineExceeded, .readTimeout: return "the server did not answer in time"
            case .connectTimeout: return "no connection to the server in time"
            case .remoteConnectionClosed: return "the server closed the connection"
            default: return "HTTP client: \(e)"
            }
        }
        if let e = error as? IOError { return "cannot reach the server: \(String(cString: strerror(e.errnoCode)))" }
        let text = "\(error)"
        if text.contains("CERTIFICATE_VERIFY_FAILED") { return "TLS: the server's certificate is not signed by a trusted CA or does not name it" }
        return text
    }
}
