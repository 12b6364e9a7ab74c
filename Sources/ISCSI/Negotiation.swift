/// Text keys: `key=value` pairs, each ended by a NUL byte (RFC 7143 6.1), order kept.
public enum TextKeys {
    /// Parses a text data segment. Nil when a pair has no `=` or a key is empty or longer than
    /// 63 bytes (RFC 7143 6.1); trailing NULs are ignored.
    public static func parse(_ data: [UInt8]) -> [(key: String, value: String)]? {
        var pairs: [(key: String, value: String)] = []
        for item in data.split(separator: 0, omittingEmptySubsequences: true) {
            guard let eq = item.firstIndex(of: UInt8(ascii: "=")) else { return nil }
            let key = String(decoding: item[item.startIndex..<eq], as: UTF8.self)
            let value = String(decoding: item[(eq + 1)...], as: UTF8.self)
            guard !key.isEmpty, key.utf8.count <= 63 else { return nil }
            pairs.append((key, value))
        }
        return pairs
    }

    /// Encodes pairs as `key=value\0...`.
    public static func encode(_ pairs: [(key: String, value: String)]) -> [UInt8] {
        var out: [UInt8] = []
        for (k, v) in pairs {
            out += Array(k.utf8)
            out.append(UInt8(ascii: "="))
            out += Array(v.utf8)
            out.append(0)
        }
        return out
    }
}

/// The operational parameters of a session (RFC 7143 13), as negotiated. Defaults are the
/// RFC's defaults, which apply to every key the initiator does not negotiate.
public struct SessionParameters: Sendable, Equatable {
    /// The initiator's MaxRecvDataSegmentLength: the largest data segment we may send it.
    public var initiatorMaxRecvDataSegmentLength = 8192
    /// Ours: the largest data segment it may send us (declared in the login response).
    public var targetMaxRecvDataSegmentLength = 262_144
    public var maxBurstLength = 262_144
    public var firstBurstLength = 65_536
    public var immediateData = true
    public var initialR2T = true
    public var headerDigest = false
    public var dataDigest = false
    public var maxConnections = 1
    public var errorRecoveryLevel = 0
    public var defaultTime2Wait = 2
    public var defaultTime2Retain = 20
    public var maxOutstandingR2T = 1
    public var dataPDUInOrder = true
    public var dataSequenceInOrder = true

    public init() {}
}

/// Answers the operational keys of the login (and of Text requests): one response pair per
/// key offered, following each key's result function (RFC 7143 6.2, 13).
///
/// What we offer: digests CRC32C or None (the initiator's first choice we support),
/// MaxConnections=1, ErrorRecoveryLevel=0, InitialR2T=Yes (so only immediate data arrives
/// unsolicited), ImmediateData=Yes, MaxBurstLength up to 1 MiB, FirstBurstLength up to 64 KiB,
/// MaxOutstandingR2T=1, in-order data. Unknown keys get NotUnderstood, bad values Reject.
public struct Negotiator: Sendable {
    public private(set) var parameters = SessionParameters()
    /// We declare our MaxRecvDataSegmentLength once, in the first operational response.
    private var declaredOurs = false

    static let maxBurstOffer = 1_048_576
    static let firstBurstOffer = 65_536
    static let time2RetainOffer = 20
    static let time2WaitOffer = 2

    public init(targetMaxRecvDataSegmentLength: Int = 262_144) {
        parameters.targetMaxRecvDataSegmentLength = targetMaxRecvDataSegmentLength
    }

    /// Keys the login itself handles (names, session type, authentication): not answered here.
    static let loginKeys: Set<String> = ["InitiatorName", "InitiatorAlias", "TargetName", "SessionType",
                                         "AuthMethod", "CHAP_A", "CHAP_I", "CHAP_C", "CHAP_N", "CHAP_R"]

    /// The response pairs for `offers` (login keys are skipped), and our declaration the first time.
    public mutating func respond(to offers: [(key: String, value: String)]) -> [(key: String, value: String)] {
        var out: [(key: String, value: String)] = []
        for (key, value) in offers where !Negotiator.loginKeys.contains(key) {
            if let answer = answer(key, value) { out.append((key, answer)) }
        }
        if !declaredOurs {
            declaredOurs = true
            out.append(("MaxRecvDataSegmentLength", String(parameters.targetMaxRecvDataSegmentLength)))
        }
        return out
    }

    /// The answer to one key, or nil for a declaration that needs none.
    private mutating func answer(_ key: String, _ value: String) -> String? {
        func number(_ range: ClosedRange<Int>) -> Int? {
            guard let n = Int(value), range.contains(n) else { return nil }
            return n
        }
        func bool() -> Bool? { value == "Yes" ? true : value == "No" ? false : nil }
        switch key {
        case "HeaderDigest", "DataDigest":
            let choice = value.split(separator: ",").first { $0 == "CRC32C" || $0 == "None" }
            guard let choice else { return "Reject" }
            if key == "HeaderDigest" { parameters.headerDigest = choice == "CRC32C" } else { parameters.dataDigest = choice == "CRC32C" }
            return String(choice)
        case "MaxRecvDataSegmentLength":
            guard let n = number(512...16_777_215) else { return "Reject" }
            parameters.initiatorMaxRecvDataSegmentLength = n
            return nil
        case "MaxBurstLength":
            guard let n = number(512...16_777_215) else { return "Reject" }
            parameters.maxBurstLength = min(n, Negotiator.maxBurstOffer)
            parameters.firstBurstLength = min(parameters.firstBurstLength, parameters.maxBurstLength)
            return String(parameters.maxBurstLength)
        case "FirstBurstLength":
            guard let n = number(512...16_777_215) else { return "Reject" }
            parameters.firstBurstLength = min(n, Negotiator.firstBurstOffer, parameters.maxBurstLength)
            return String(parameters.firstBurstLength)
        case "MaxConnections":
            guard number(1...65535) != nil else { return "Reject" }
            return "1"
        case "ErrorRecoveryLevel":
            guard number(0...2) != nil else { return "Reject" }
            parameters.errorRecoveryLevel = 0
            return "0"
        case "DefaultTime2Wait":
            guard let n = number(0...3600) else { return "Reject" }
            parameters.defaultTime2Wait = max(n, Negotiator.time2WaitOffer)
            return String(parameters.defaultTime2Wait)
        case "DefaultTime2Retain":
            guard let n = number(0...3600) else { return "Reject" }
            parameters.defaultTime2Retain = min(n, Negotiator.time2RetainOffer)
            return String(parameters.defaultTime2Retain)
        case "MaxOutstandingR2T":
            guard number(1...65535) != nil else { return "Reject" }
            return "1"
        case "InitialR2T":
            guard bool() != nil else { return "Reject" }
            parameters.initialR2T = true  // OR with our Yes
            return "Yes"
        case "ImmediateData":
            guard let b = bool() else { return "Reject" }
            parameters.immediateData = b  // AND with our Yes
            return b ? "Yes" : "No"
        case "DataPDUInOrder", "DataSequenceInOrder":
            guard bool() != nil else { return "Reject" }
            return "Yes"  // OR with our Yes
        case "IFMarker", "OFMarker":
            guard bool() != nil else { return "Reject" }
            return "No"  // AND with our No (markers are gone from RFC 7143)
        case "TargetAlias", "TargetAddress", "TargetPortalGroupTag":
            return "Irrelevant"  // the target declares these
        default:
            return "NotUnderstood"
        }
    }
}
