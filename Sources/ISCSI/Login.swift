/// Login status classes and details (RFC 7143 11.13.5).
public enum LoginStatus: UInt16, Sendable {
    case success = 0x0000
    case initiatorError = 0x0200
    case authenticationFailure = 0x0201
    case authorizationFailure = 0x0202
    case notFound = 0x0203
    case unsupportedVersion = 0x0205
    case missingParameter = 0x0207
    case sessionDoesNotExist = 0x020A
    case invalidDuringLogin = 0x020B
    case targetError = 0x0300
}

/// What kind of session a login opens.
enum SessionKind: Equatable {
    case normal(target: String)
    case discovery
}

/// The result of one Login Request.
struct LoginStep {
    var response: ISCSIPDU
    var outcome: Outcome

    enum Outcome: Equatable {
        /// More login PDUs follow.
        case proceed
        /// The login phase is over: full feature phase from the next PDU on.
        case fullFeature
        /// Refused: send the response and close the connection.
        case refused(LoginStatus)
    }
}

/// The login phase of one connection (RFC 7143 6.3): security negotiation with CHAP when the
/// policy requires it, then operational negotiation, then the full feature phase.
///
/// Runs on the connection's event loop; the provider is asked `loginPolicy` once, when the first
/// PDU names the initiator and target.
struct LoginMachine {
    /// Stage codes (CSG/NSG).
    static let security: UInt8 = 0, operational: UInt8 = 1, fullFeature: UInt8 = 3

    private(set) var initiatorName: String?
    private(set) var kind: SessionKind?
    private(set) var isid: [UInt8] = []
    private(set) var negotiator: Negotiator
    private(set) var authenticated = false
    private var stage: UInt8 = 0
    private var started = false
    private var policy: LoginPolicy = .open
    private var chap: ChapStep = .notStarted
    private var sentPortalGroup = false
    private var pendingText: [UInt8] = []

    private enum ChapStep {
        case notStarted, awaitingAlgorithm
        case awaitingResponse(identifier: UInt8, challenge: [UInt8])
    }

    init(targetMaxRecvDataSegmentLength: Int) {
        negotiator = Negotiator(targetMaxRecvDataSegmentLength: targetMaxRecvDataSegmentLength)
    }

    /// Handles one Login Request. `tsih` is the session handle to hand out on success. The
    /// response's sequence numbers are the connection's to stamp.
    mutating func handle(_ request: ISCSIPDU, provider: any ISCSIProvider, tsih: UInt16) -> LoginStep {
        let transit = request.flags & 0x80 != 0
        let proceedWithText = request.flags & 0x40 != 0
        let csg = (request.flags >> 2) & 3
        let nsg = request.flags & 3
        if !started {
            started = true
            isid = Array(request.bhs[8..<14])
            stage = csg
        }
        func reply(_ pairs: [(key: String, value: String)], transit: Bool, next: UInt8, status: LoginStatus = .success) -> ISCSIPDU {
            var p = ISCSIPDU(opcode: .loginResponse)
            p.flags = (transit ? 0x80 : 0) | (stage << 2) | (transit ? next : 0)
            p.bhs[2] = 0; p.bhs[3] = 0
            p.bhs.replaceSubrange(8..<14, with: isid)
            p.initiatorTaskTag = request.initiatorTaskTag
            p.bhs[36] = UInt8(status.rawValue >> 8)
            p.bhs[37] = UInt8(status.rawValue & 0xFF)
            if transit && next == LoginMachine.fullFeature { p.setU16(tsih, at: 14) }
            p.data = TextKeys.encode(pairs)
            return p
        }
        func refuse(_ status: LoginStatus, _ pairs: [(key: String, value: String)] = []) -> LoginStep {
            LoginStep(response: reply(pairs, transit: false, next: 0, status: status), outcome: .refused(status))
        }

        if request.bhs[3] > 0 { return refuse(.unsupportedVersion) }  // VersionMin above 0
        if request.u16(at: 14) != 0 { return refuse(.sessionDoesNotExist) }  // no added connections
        if csg != stage || csg == 2 || csg == LoginMachine.fullFeature { return refuse(.initiatorError) }
        if transit && proceedWithText { return refuse(.initiatorError) }
        if transit && (nsg <= csg || nsg == 2) { return refuse(.initiatorError) }

        pendingText += request.data
        if proceedWithText {  // more text follows: acknowledge with an empty response
            if pendingText.count > 65_536 { return refuse(.initiatorError) }
            return LoginStep(response: reply([], transit: false, next: 0), outcome: .proceed)
        }
        guard let offers = TextKeys.parse(pendingText) else { return refuse(.initiatorError) }
        pendingText = []
        func value(_ key: String) -> String? { offers.last { $0.key == key }?.value }

        if kind == nil {  // the first complete request names who logs in to what
            guard let name = value("InitiatorName"), !name.isEmpty else { return refuse(.missingParameter) }
            initiatorName = name
            if value("SessionType") == "Discovery" {
                kind = .discovery
                policy = .open
            } else {
                guard let target = value("TargetName"), !target.isEmpty else { return refuse(.missingParameter) }
                guard let p = provider.loginPolicy(target: target, initiator: name) else {
                    return refuse(.authorizationFailure)
                }
                kind = .normal(target: target)
                policy = p
            }
        }

        var pairs: [(key: String, value: String)] = []
        if case .normal(let target) = kind, !sentPortalGroup {
            sentPortalGroup = true
            pairs.append(("TargetPortalGroupTag", "1"))
            if let alias = target.split(separator: ":").last { pairs.append(("TargetAlias", String(alias))) }
        }

        if stage == LoginMachine.security {
            switch securityStep(offers, &pairs) {
            case .failed(let status): return refuse(status, pairs)
            case .more: return LoginStep(response: reply(pairs, transit: false, next: 0), outcome: .proceed)
            case .done: break
            }
        } else {
            if case .chap = policy, !authenticated { return refuse(.authenticationFailure) }
            pairs += negotiator.respond(to: offers)
        }

        guard transit else { return LoginStep(response: reply(pairs, transit: false, next: 0), outcome: .proceed) }
        let response = reply(pairs, transit: true, next: nsg)
        stage = nsg
        return LoginStep(response: response, outcome: nsg == LoginMachine.fullFeature ? .fullFeature : .proceed)
    }

    private enum SecurityResult { case done, more, failed(LoginStatus) }

    /// One step of security negotiation; appends our keys to `pairs`.
    private mutating func securityStep(_ offers: [(key: String, value: String)],
                                       _ pairs: inout [(key: String, value: String)]) -> SecurityResult {
        if authenticated { return .done }
        func value(_ key: String) -> String? { offers.last { $0.key == key }?.value }
        let methods = value("AuthMethod").map { $0.split(separator: ",").map(String.init) }
        switch policy {
        case .open:
            if let methods {
                guard methods.contains("None") else {
                    pairs.append(("AuthMethod", "Reject"))
                    return .failed(.authenticationFailure)
                }
                pairs.append(("AuthMethod", "None"))
            }
            authenticated = true
            return .done
        case .chap(let user, let secret):
            switch chap {
            case .notStarted:
                guard let methods, methods.contains("CHAP") else {
                    pairs.append(("AuthMethod", "Reject"))
                    return .failed(.authenticationFailure)
                }
                pairs.append(("AuthMethod", "CHAP"))
                chap = .awaitingAlgorithm
                return .more
            case .awaitingAlgorithm:
                guard let algorithms = value("CHAP_A")?.split(separator: ","),
                      algorithms.contains(Substring(CHAP.md5Algorithm)) else {
                    pairs.append(("CHAP_A", "Reject"))
                    return .failed(.authenticationFailure)
                }
                let (id, challenge) = CHAP.makeChallenge()
                pairs += [("CHAP_A", CHAP.md5Algorithm), ("CHAP_I", String(id)), ("CHAP_C", CHAP.hex(challenge))]
                chap = .awaitingResponse(identifier: id, challenge: challenge)
                return .more
            case .awaitingResponse(let id, let challenge):
                // Mutual CHAP (the initiator's own CHAP_I/CHAP_C) is not offered.
                guard value("CHAP_I") == nil, value("CHAP_C") == nil,
                      let name = value("CHAP_N"), let encoded = value("CHAP_R"),
                      let answer = CHAP.decodeBinary(encoded) else { return .failed(.authenticationFailure) }
                let nameOK = CHAP.constantTimeEqual(Array(name.utf8), Array(user.utf8))
                let answerOK = CHAP.verify(response: answer, identifier: id, secret: Array(secret.utf8), challenge: challenge)
                guard nameOK && answerOK else { return .failed(.authenticationFailure) }
                authenticated = true
                return .done
            }
        }
    }
}
