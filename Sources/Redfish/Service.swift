import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import VirtualMedia

/// A DMTF Redfish service for the host's drives: the service root, `Systems/{guest}` with
/// `VirtualMedia/{drive}`, one `Managers/vmediafs` whose `VirtualMedia` holds every drive
/// (clients look in either place), and `SessionService`. Every action is the file operation
/// the tree does (`Host.insert`, `Host.eject`), with the same checks, for the local user the
/// Redfish user is mapped to; its errno becomes a Base registry message.
///
/// Served by Hummingbird 2 with one `HTTPResponder` of ours (the resource paths are few and
/// fixed). Host calls, which may wait for an image's file system or a URL's server, run on a
/// thread pool, not on the server's event loops.
public final class RedfishService: HTTPResponder, Sendable {
    public typealias Context = BasicRequestContext
    let host: VirtualMedia.Host
    let users: RedfishUsers
    let sessions = SessionTable()
    private let task = Mutex<Task<Void, Never>?>(nil)
    static let root = "/redfish/v1"
    static let manager = "vmediafs"

    public init(host: VirtualMedia.Host, users: RedfishUsers) {
        self.host = host
        self.users = users
    }

    /// Starts serving on `address:port` (HTTPS with `tls`, else plain HTTP); returns the port
    /// bound (for port 0) once the server listens, or throws why it could not.
    public func start(address: String, port: Int, tls: TLSConfiguration?) throws -> Int {
        let bound = Mutex<Result<Int, any Error>?>(nil)
        let ready = DispatchSemaphore(value: 0)
        let server: HTTPServerBuilder
        if let tls { server = try .tls(.http1(), tlsConfiguration: tls) } else { server = .http1() }
        let app = Application(responder: self, server: server,
                              configuration: .init(address: .hostname(address, port: port), serverName: "vmediafs"),
                              onServerRunning: { channel in
                                  bound.withLock { $0 = .success(channel.localAddress?.port ?? port) }
                                  ready.signal()
                              })
        let running = Task.detached {
            do { try await app.run() } catch {
                bound.withLock { if $0 == nil { $0 = .failure(error) } }
                ready.signal()
            }
        }
        task.withLock { $0 = running }
        guard ready.wait(timeout: .now() + 10) == .success, let result = bound.withLock({ $0 }) else {
            running.cancel()
            throw VMError(EIO, "the Redfish server did not start within 10 s")
        }
        return try result.get()
    }

    public func stop() {
        task.withLock { $0?.cancel(); $0 = nil }
    }

    // MARK: dispatch

    public func respond(to request: Request, context: Context) async throws -> Response {
        var response = try await answer(request)
        // What every answer carries (Redfish specification, response headers).
        response.headers[.cacheControl] = "no-cache"
        response.headers[HTTPField.Name("OData-Version")!] = "4.0"
        if request.method == .head { response.body = .init() }
        return response
    }

    private func answer(_ request: Request) async throws -> Response {
        var request = request
        let path = request.uri.path.split(separator: "/").map { String($0).removingPercentEncoding ?? String($0) }
        if let version = request.headers[HTTPField.Name("OData-Version")!], version != "4.0" {
            return Self.error(.preconditionFailed, .generalError, "OData-Version \(version) is not supported; 4.0 is")
        }
        let reading = request.method == .get || request.method == .head
        guard path.first == "redfish", path.count == 1 || path[1] == "v1" else { return Self.error(.notFound, .resourceMissing, "no such resource") }
        // The documents anyone may read: /redfish, the service root, odata and $metadata.
        if path.count <= 2 || (path.count == 3 && (path[2] == "odata" || path[2] == "$metadata")) {
            guard reading else { return Self.methodNotAllowed("GET, HEAD") }
            if path.count == 1 { return Self.json(.ok, ["v1": "/redfish/v1/"], allow: "GET, HEAD") }
            if path.count == 2 { return Self.json(.ok, serviceRoot(), allow: "GET, HEAD") }
            if path[2] == "odata" { return Self.json(.ok, odata(), allow: "GET, HEAD") }
            return Self.metadata()
        }
        let rest = Array(path.dropFirst(2))
        // A login: POST to the Sessions collection (or its Members property, which Redfish allows).
        if rest.first == "SessionService", rest.count == 2 || rest.count == 3 && rest[2] == "Members",
           rest[1] == "Sessions", request.method == .post {
            let body = try await request.collectBody(upTo: 64 << 10)
            return login(Data(buffer: body))
        }
        guard let user = authenticate(request.headers) else {
            var h = HTTPFields()
            h[.wwwAuthenticate] = "Basic realm=\"vmediafs\""
            return Self.error(.unauthorized, .noValidSession, "log in first: HTTP Basic or a session's X-Auth-Token", headers: h)
        }
        let body: Data
        if request.method == .post || request.method == .patch {
            body = Data(buffer: try await request.collectBody(upTo: 64 << 10))
        } else {
            body = Data()
        }
        let method: HTTPRequest.Method = request.method == .head ? .get : request.method
        let headers = request.headers
        return try await NIOThreadPool.singleton.runIfActive { [self] in
            route(method, rest, body: body, user: user, headers: headers)
        }
    }

    private func route(_ method: HTTPRequest.Method, _ p: [String], body: Data, user: Credentials, headers: HTTPFields) -> Response {
        switch (method, p.count, p.first) {
        case (.get, 1, "Systems"): return Self.json(.ok, systems())
        case (.get, 2, "Systems"): return system(p[1], user: user)
        case (.get, 3, "Systems") where p[2] == "VirtualMedia": return mediaCollection(guest: p[1], user: user)
        case (_, 4, "Systems") where p[2] == "VirtualMedia": return media(method, guest: p[1], drive: p[3], action: nil, body: body, user: user)
        case (.post, 6, "Systems") where p[2] == "VirtualMedia" && p[4] == "Actions":
            return media(.post, guest: p[1], drive: p[3], action: p[5], body: body, user: user)
        case (.get, 1, "Managers"):
            return Self.json(.ok, collection("\(Self.root)/Managers", type: "ManagerCollection", name: "Manager Collection",
                                             members: ["\(Self.root)/Managers/\(Self.manager)"]))
        case (.get, 2, "Managers") where p[1] == Self.manager: return Self.json(.ok, managerDocument())
        case (.get, 3, "Managers") where p[1] == Self.manager && p[2] == "VirtualMedia": return managerMediaCollection(user: user)
        case (_, 4, "Managers") where p[1] == Self.manager && p[2] == "VirtualMedia":
            return media(method, guest: nil, drive: p[3], action: nil, body: body, user: user)
        case (.post, 6, "Managers") where p[1] == Self.manager && p[2] == "VirtualMedia" && p[4] == "Actions":
            return media(.post, guest: nil, drive: p[3], action: p[5], body: body, user: user)
        case (.get, 1, "SessionService"): return Self.json(.ok, sessionService())
        case (_, _, "SessionService"): return sessionRequest(method, p, user: user, token: headers[Self.authToken])
        default:
            return Self.error(p.isEmpty ? .methodNotAllowed : .notFound, .resourceMissing, "no such resource: /redfish/v1/\(p.joined(separator: "/"))")
        }
    }

    // MARK: authentication

    static let authToken = HTTPField.Name("X-Auth-Token")!

    private func authenticate(_ headers: HTTPFields) -> Credentials? {
        if let token = headers[Self.authToken] { return sessions.user(token: token) }
        guard let value = headers[.authorization], value.lowercased().hasPrefix("basic "),
              let decoded = Data(base64Encoded: String(value.dropFirst(6)).trimmingWhitespace()),
              let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":") else { return nil }
        return users.authenticate(String(text[..<colon]), String(text[text.index(after: colon)...]))
    }

    private func login(_ body: Data) -> Response {
        guard let json = try? JSONDecoder().decode(JSON.self, from: body), let name = json["UserName"]?.string,
              let password = json["Password"]?.string else {
            return Self.error(.badRequest, .propertyMissing, "a session needs UserName and Password")
        }
        guard let user = users.authenticate(name, password) else {
            return Self.error(.unauthorized, .noValidSession, "wrong user name or password")
        }
        let (id, token) = sessions.open(name: name, user: user)
        var h = HTTPFields()
        h[Self.authToken] = token
        h[.location] = "\(Self.root)/SessionService/Sessions/\(id)"
        return Self.json(.created, sessionDocument(id: id, name: name), headers: h)
    }

    private func sessionRequest(_ method: HTTPRequest.Method, _ p: [String], user: Credentials, token: String?) -> Response {
        guard p.count >= 2, p[1] == "Sessions" else { return Self.error(.notFound, .resourceMissing, "no such resource") }
        if p.count == 2, method == .get {
            return Self.json(.ok, collection("\(Self.root)/SessionService/Sessions", type: "SessionCollection", name: "Session Collection",
                                             members: sessions.ids(visibleTo: user).map { "\(Self.root)/SessionService/Sessions/\($0)" }))
        }
        guard p.count == 3, let session = sessions.session(id: p[2]), user.uid == 0 || session.user.uid == user.uid else {
            return Self.error(.notFound, .resourceMissing, "no such session")
        }
        switch method {
        case .get: return Self.json(.ok, sessionDocument(id: p[2], name: session.name))
        case .delete:
            sessions.close(id: p[2])
            return Response(status: .noContent)
        default: return Self.error(.methodNotAllowed, .actionNotSupported, "sessions can be read and deleted")
        }
    }
}

/// The logged-in sessions: a random token each, ended by DELETE or after 30 minutes unused.
final class SessionTable: Sendable {
    struct Session: Sendable { let name: String; let user: Credentials; let token: String; var lastUse: Date }
    private let table = Mutex<[String: Session]>([:])
    static let timeout: TimeInterval = 1800

    func open(name: String, user: Credentials) -> (id: String, token: String) {
        var rng = SystemRandomNumberGenerator()
        let token = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
        let id = (0..<8).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
        table.withLock { $0[id] = Session(name: name, user: user, token: token, lastUse: Date()) }
        return (id, token)
    }

    func user(token: String) -> Credentials? {
        table.withLock { t in
            let now = Date()
            t = t.filter { now.timeIntervalSince($0.value.lastUse) < Self.timeout }
            guard let (id, s) = t.first(where: { $0.value.token == token }) else { return nil }
            t[id]?.lastUse = now
            return s.user
        }
    }

    func session(id: String) -> Session? { table.withLock { $0[id] } }
    func close(id: String) { table.withLock { $0[id] = nil } }
    func ids(visibleTo user: Credentials) -> [String] {
        table.withLock { t in t.filter { user.uid == 0 || $0.value.user.uid == user.uid }.keys.sorted() }
    }
}
