import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import VirtualMedia

/// The Base registry messages the service answers with (DMTF Base 1.x).
enum BaseMessage: String {
    case resourceInUse = "ResourceInUse"
    case insufficientPrivilege = "InsufficientPrivilege"
    case resourceMissing = "ResourceMissingAtURI"
    case resourceNotFound = "ResourceNotFound"
    case actionParameterFormat = "ActionParameterValueFormatError"
    case actionParameterNotSupported = "ActionParameterNotSupported"
    case propertyMissing = "PropertyMissing"
    case propertyNotWritable = "PropertyNotWritable"
    case actionNotSupported = "ActionNotSupported"
    case noValidSession = "NoValidSession"
    case malformedJSON = "MalformedJSON"
    case generalError = "GeneralError"
}

extension RedfishService {
    // MARK: documents

    func serviceRoot() -> JSON {
        ["@odata.type": "#ServiceRoot.v1_15_0.ServiceRoot", "@odata.id": "\(Self.root)", "Id": "RootService",
         "Name": "vmediafs Redfish service", "RedfishVersion": "1.15.0", "UUID": .string(Self.serviceUUID),
         "Systems": ["@odata.id": "\(Self.root)/Systems"], "Managers": ["@odata.id": "\(Self.root)/Managers"],
         "SessionService": ["@odata.id": "\(Self.root)/SessionService"],
         "Links": ["Sessions": ["@odata.id": "\(Self.root)/SessionService/Sessions"]]]
    }

    /// One UUID per machine (from /etc/machine-id), so that clients see the same service after a restart.
    static let serviceUUID: String = {
        let id = ((try? String(contentsOfFile: "/etc/machine-id", encoding: .utf8)) ?? "vmediafs").trimmingWhitespace()
        let hex = Array((id + String(repeating: "0", count: 32)).prefix(32))
        let s = String(hex)
        func part(_ a: Int, _ b: Int) -> String { String(hex[a..<b]) }
        return s.count == 32 ? "\(part(0, 8))-\(part(8, 12))-\(part(12, 16))-\(part(16, 20))-\(part(20, 32))" : "00000000-0000-0000-0000-000000000000"
    }()

    func odata() -> JSON {
        ["@odata.context": "/redfish/v1/$metadata", "value": [
            ["name": "Service", "kind": "Singleton", "url": "/redfish/v1/"],
            ["name": "Systems", "kind": "Singleton", "url": "/redfish/v1/Systems"],
            ["name": "Managers", "kind": "Singleton", "url": "/redfish/v1/Managers"],
            ["name": "SessionService", "kind": "Singleton", "url": "/redfish/v1/SessionService"],
        ]]
    }

    func collection(_ id: String, type: String, name: String, members: [String]) -> JSON {
        ["@odata.type": .string("#\(type).\(type)"), "@odata.id": .string(id), "Name": .string(name),
         "Members@odata.count": .int(Int64(members.count)), "Members": .array(members.map { ["@odata.id": .string($0)] })]
    }

    func systems() -> JSON {
        collection("\(Self.root)/Systems", type: "ComputerSystemCollection", name: "Computer System Collection",
                   members: host.guests().map { "\(Self.root)/Systems/\(Self.escape($0.name))" })
    }

    func system(_ name: String, user: Credentials) -> Response {
        guard host.guest(named: name) != nil else { return Self.error(.notFound, .resourceNotFound, "no guest named \(name)") }
        let base = "\(Self.root)/Systems/\(Self.escape(name))"
        return Self.json(.ok, ["@odata.type": "#ComputerSystem.v1_20_0.ComputerSystem", "@odata.id": .string(base), "Id": .string(name),
                               "Name": .string(name), "SystemType": "Virtual", "Status": ["State": "Enabled", "Health": "OK"],
                               "VirtualMedia": ["@odata.id": .string(base + "/VirtualMedia")],
                               "Links": ["ManagedBy": [["@odata.id": .string("\(Self.root)/Managers/\(Self.manager)")]]]])
    }

    func mediaCollection(guest name: String, user: Credentials) -> Response {
        guard let g = host.guest(named: name) else { return Self.error(.notFound, .resourceNotFound, "no guest named \(name)") }
        let base = "\(Self.root)/Systems/\(Self.escape(name))/VirtualMedia"
        return Self.json(.ok, collection(base, type: "VirtualMediaCollection", name: "Virtual Media of \(name)",
                                         members: host.drives(ofGuest: g.id).map { "\(base)/\(Self.escape($0.name))" }))
    }

    func managerDocument() -> JSON {
        let base = "\(Self.root)/Managers/\(Self.manager)"
        return ["@odata.type": "#Manager.v1_19_0.Manager", "@odata.id": .string(base), "Id": .string(Self.manager),
                "Name": "vmediafs", "ManagerType": "Service", "Status": ["State": "Enabled", "Health": "OK"],
                "VirtualMedia": ["@odata.id": .string(base + "/VirtualMedia")],
                "Links": ["ManagerForServers": .array(host.guests().map { ["@odata.id": .string("\(Self.root)/Systems/\(Self.escape($0.name))")] })]]
    }

    func managerMediaCollection(user: Credentials) -> Response {
        let base = "\(Self.root)/Managers/\(Self.manager)/VirtualMedia"
        let drives = host.guests().flatMap { host.drives(ofGuest: $0.id) }.map(\.name).sorted()
        return Self.json(.ok, collection(base, type: "VirtualMediaCollection", name: "Virtual Media",
                                         members: drives.map { "\(base)/\(Self.escape($0))" }))
    }

    func sessionService() -> JSON {
        ["@odata.type": "#SessionService.v1_1_9.SessionService", "@odata.id": "\(Self.root)/SessionService", "Id": "SessionService",
         "Name": "Session Service", "ServiceEnabled": true, "SessionTimeout": .int(Int64(SessionTable.timeout)),
         "Sessions": ["@odata.id": "\(Self.root)/SessionService/Sessions"]]
    }

    func sessionDocument(id: String, name: String) -> JSON {
        ["@odata.type": "#Session.v1_7_0.Session", "@odata.id": .string("\(Self.root)/SessionService/Sessions/\(id)"),
         "Id": .string(id), "Name": "User Session", "UserName": .string(name)]
    }

    /// A drive as a VirtualMedia resource, under its system (`guest` given) or the manager.
    func mediaDocument(_ d: DriveRecord, guest: String, underSystem: Bool) -> JSON {
        let base = underSystem ? "\(Self.root)/Systems/\(Self.escape(guest))/VirtualMedia/\(Self.escape(d.name))"
                               : "\(Self.root)/Managers/\(Self.manager)/VirtualMedia/\(Self.escape(d.name))"
        let loaded = d.loaded
        let image: JSON = loaded.map { .string($0.path) } ?? .null
        let imageName: JSON = loaded.map { .string(String($0.path.split(separator: "/").last ?? "")) } ?? .null
        var protocolType: JSON = .null
        if let m = loaded, m.kind == .url { protocolType = .string(m.path.lowercased().hasPrefix("https:") ? "HTTPS" : "HTTP") }
        return ["@odata.type": "#VirtualMedia.v1_6_0.VirtualMedia", "@odata.id": .string(base), "Id": .string(d.name),
                "Name": .string("Virtual CD/DVD \(d.name) of \(guest)"), "MediaTypes": ["CD", "DVD"],
                "Image": image, "ImageName": imageName, "Inserted": .bool(loaded != nil), "WriteProtected": true,
                "ConnectedVia": loaded == nil ? "NotConnected" : "URI", "TransferMethod": "Stream",
                "TransferProtocolType": protocolType, "Status": ["State": "Enabled", "Health": "OK"],
                "Actions": ["#VirtualMedia.InsertMedia": ["target": .string(base + "/Actions/VirtualMedia.InsertMedia")],
                            "#VirtualMedia.EjectMedia": ["target": .string(base + "/Actions/VirtualMedia.EjectMedia")]]]
    }

    // MARK: VirtualMedia: read, insert, eject, PATCH

    func media(_ method: HTTPRequest.Method, guest: String?, drive: String, action: String?, body: Data, user: Credentials) -> Response {
        guard let d = host.drive(named: drive), let g = host.guest(id: d.guestID), guest == nil || guest == g.name else {
            return Self.error(.notFound, .resourceNotFound, "no drive named \(drive)\(guest.map { " in \($0)" } ?? "")")
        }
        // As the tree: search on the guest's and the drive's directory to see it, write to change its media.
        guard user.may(1, g.owner), user.may(1, d.owner) else {
            return Self.error(.forbidden, .insufficientPrivilege, "uid \(user.uid) may not reach \(g.name)/\(d.name)")
        }
        let underSystem = guest != nil
        switch (method, action) {
        case (.get, nil): return Self.json(.ok, mediaDocument(d, guest: g.name, underSystem: underSystem))
        case (.post, "VirtualMedia.InsertMedia"):
            guard let json = Self.decode(body) else { return Self.error(.badRequest, .malformedJSON, "the body is not JSON") }
            guard let image = json["Image"]?.string, !image.isEmpty else {
                return Self.error(.badRequest, .propertyMissing, "InsertMedia needs Image")
            }
            if json["WriteProtected"] == .bool(false) {
                return Self.error(.badRequest, .actionParameterNotSupported, "the media of an optical drive are always write-protected")
            }
            if json["Inserted"] == .bool(false) {
                return Self.error(.badRequest, .actionParameterNotSupported, "an image is always inserted (Inserted=false is not supported)")
            }
            return change(d, guest: g, insert: image, user: user, underSystem: underSystem)
        case (.post, "VirtualMedia.EjectMedia"): return change(d, guest: g, insert: nil, user: user, underSystem: underSystem)
        case (.patch, nil):
            guard let json = Self.decode(body) else { return Self.error(.badRequest, .malformedJSON, "the body is not JSON") }
            if json["WriteProtected"] == .bool(false) {
                return Self.error(.badRequest, .propertyNotWritable, "the media of an optical drive are always write-protected")
            }
            let image = json["Image"]
            if image == .null || json["Inserted"] == .bool(false) {
                return change(d, guest: g, insert: nil, user: user, underSystem: underSystem)
            }
            guard let text = image?.string, !text.isEmpty else { return Self.error(.badRequest, .propertyMissing, "PATCH needs Image") }
            return change(d, guest: g, insert: text, user: user, underSystem: underSystem)
        case (_, nil): return Self.methodNotAllowed("GET, HEAD, PATCH")
        default: return Self.error(.notFound, .actionNotSupported, "no action \(action ?? "")")
        }
    }

    /// Inserts `image` (nil: ejects) as the tree's `media` file would, for `user`.
    private func change(_ d: DriveRecord, guest g: GuestRecord, insert image: String?, user: Credentials, underSystem: Bool) -> Response {
        guard user.may(2 | 1, d.owner) else {
            return Self.error(.forbidden, .insufficientPrivilege, "uid \(user.uid) may not change the media of \(g.name)/\(d.name)")
        }
        do throws(VMError) {
            if let image {
                _ = try host.insert(driveID: d.id, text: image, by: user)
            } else if d.loaded != nil {
                try host.eject(driveID: d.id, by: user)
            }
        } catch {
            return Self.error(for: error)
        }
        return Response(status: .noContent)
    }

    // MARK: answers

    static func decode(_ body: Data) -> JSON? {
        if body.isEmpty { return .object([]) }
        return try? JSONDecoder().decode(JSON.self, from: body)
    }

    static func escape(_ name: String) -> String {
        name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? name
    }

    /// A JSON answer; a resource (one with `@odata.type`) also names its schema in a `Link`
    /// header and the methods it takes in `Allow` (GET and HEAD unless told).
    static func json(_ status: HTTPResponse.Status, _ doc: JSON, headers: HTTPFields = HTTPFields(), allow: String? = nil) -> Response {
        var h = headers
        h[.contentType] = "application/json; charset=utf-8"
        if let type = doc["@odata.type"]?.string, type.hasPrefix("#") {
            let schema = type.dropFirst().split(separator: ".").dropLast().joined(separator: ".")
            h[HTTPField.Name("Link")!] = "<https://redfish.dmtf.org/schemas/v1/\(schema).json>; rel=describedby"
        }
        if status == .ok { h[.allow] = allow ?? Self.allowed(for: doc["@odata.type"]?.string ?? "") }
        return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: Array(doc.rendered()))))
    }

    /// The methods a resource of `type` takes.
    static func allowed(for type: String) -> String {
        if type.contains("VirtualMedia.v") { return "GET, HEAD, PATCH" }
        if type.contains("SessionCollection") { return "GET, HEAD, POST" }
        if type.contains("Session.v") { return "GET, HEAD, DELETE" }
        return "GET, HEAD"
    }

    static func methodNotAllowed(_ allow: String) -> Response {
        var h = HTTPFields()
        h[.allow] = allow
        return error(.methodNotAllowed, .actionNotSupported, "this resource takes \(allow)", headers: h)
    }

    /// The OData metadata document: the schemas the resources use, by reference to DMTF's
    /// published CSDL, and the service's entity container.
    static func metadata() -> Response {
        let schemas = ["ServiceRoot": "v1_15_0", "ComputerSystemCollection": nil, "ComputerSystem": "v1_20_0",
                       "VirtualMediaCollection": nil, "VirtualMedia": "v1_6_0", "ManagerCollection": nil, "Manager": "v1_19_0",
                       "SessionService": "v1_1_9", "SessionCollection": nil, "Session": "v1_7_0", "Message": "v1_1_1"]
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        xml += "<edmx:Edmx xmlns:edmx=\"http://docs.oasis-open.org/odata/ns/edmx\" Version=\"4.0\">\n"
        for (name, version) in schemas.sorted(by: { $0.key < $1.key }) {
            xml += "  <edmx:Reference Uri=\"http://redfish.dmtf.org/schemas/v1/\(name)_v1.xml\">\n"
            xml += "    <edmx:Include Namespace=\"\(name)\"/>\n"
            if let version { xml += "    <edmx:Include Namespace=\"\(name).\(version)\"/>\n" }
            xml += "  </edmx:Reference>\n"
        }
        xml += """
              <edmx:DataServices>
                <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="Service">
                  <EntityContainer Name="Service" Extends="ServiceRoot.v1_15_0.ServiceContainer"/>
                </Schema>
              </edmx:DataServices>
            </edmx:Edmx>

            """
        var h = HTTPFields()
        h[.contentType] = "application/xml; charset=utf-8"
        h[.allow] = "GET, HEAD"
        return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(string: xml)))
    }

    /// A Redfish error body with one Base message.
    static func error(_ status: HTTPResponse.Status, _ message: BaseMessage, _ text: String, headers: HTTPFields = HTTPFields()) -> Response {
        let id = "Base.1.18.\(message.rawValue)"
        return json(status, ["error": ["code": .string(id), "message": .string(text),
                                       "@Message.ExtendedInfo": [["@odata.type": "#Message.v1_1_1.Message", "MessageId": .string(id),
                                                                  "Message": .string(text), "Severity": "Warning",
                                                                  "MessageSeverity": "Warning", "Resolution": "See the message."]]]],
                    headers: headers)
    }

    /// An insert's or eject's errno as the Redfish answer: EBUSY ResourceInUse (409), EACCES
    /// and EPERM InsufficientPrivilege (403), ENOENT/EINVAL/ENAMETOOLONG a bad Image (400),
    /// anything else GeneralError (500). The message is the tree's `last_error`.
    static func error(for e: VMError) -> Response {
        switch e.errno {
        case EBUSY: return error(.conflict, .resourceInUse, e.reason)
        case EACCES, EPERM: return error(.forbidden, .insufficientPrivilege, e.reason)
        case ENOENT, EINVAL, ENAMETOOLONG, EOPNOTSUPP: return error(.badRequest, .actionParameterFormat, e.reason)
        default: return error(.internalServerError, .generalError, e.reason)
        }
    }
}
