// libFuzzer harness: the parsers of what users write into control files
// (Sources/VirtualMedia/ControlText.swift), compiled into the VirtualMedia module (fuzz/build.sh).
//
// Input: byte 0 picks the parser (0 media, 1 sharable, 2 initiators, 3 chap, 4 guest/drive
// names; anything else: all of them), the rest is what was written.
// Oracles: a refusal carries the errno the contract names; what is accepted is accepted again,
// unchanged, when written back as read (idempotence), and keeps the documented properties.

import Glibc

func refused(_ error: VMError, _ allowed: Set<Int32>, _ what: String) {
    precondition(allowed.contains(error.errno), "\(what): errno \(error.errno) (\(error.reason))")
    precondition(!error.reason.isEmpty && !error.reason.contains("\n"), "\(what): the reason is not one line")
}

func media(_ bytes: ArraySlice<UInt8>) {
    do {
        let path = try ControlText.mediaRequest(bytes)
        precondition(!path.isEmpty && path.utf8.count < Int(PATH_MAX), "media: accepted an empty or long path")
        precondition(!path.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }), "media: accepted a control character")
        precondition((try? ControlText.mediaRequest(Array(path.utf8) + [0x0A])) == path, "media: not idempotent")
    } catch {
        refused(error, [EINVAL, ENAMETOOLONG], "media")
    }
}

func sharable(_ bytes: ArraySlice<UInt8>) {
    do {
        let yes = try ControlText.sharable(bytes)
        precondition((try? ControlText.sharable(Array((yes ? "yes\n" : "no\n").utf8))) == yes, "sharable: not idempotent")
    } catch {
        refused(error, [EINVAL], "sharable")
    }
}

func initiators(_ bytes: ArraySlice<UInt8>) {
    do {
        let names = try ControlText.initiators(bytes)
        for name in names {
            precondition(ISCSINames.isValidInitiator(name), "initiators: accepted \(name)")
        }
        precondition(Set(names.map { $0.lowercased() }).count == names.count, "initiators: duplicates kept")
        let written = names.map { $0 + "\n" }.joined()
        precondition((try? ControlText.initiators(Array(written.utf8))) == names, "initiators: not idempotent")
    } catch {
        refused(error, [EINVAL], "initiators")
    }
}

func chap(_ bytes: ArraySlice<UInt8>) {
    do {
        let line = try ControlText.chap(bytes)
        if !line.isEmpty {
            precondition(line.contains(":") && !line.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }), "chap: accepted \(line)")
        }
        precondition((try? ControlText.chap(Array((line + "\n").utf8))) == line, "chap: not idempotent")
    } catch {
        refused(error, [EINVAL], "chap")
    }
}

func names(_ bytes: ArraySlice<UInt8>) {
    let name = String(decoding: bytes, as: UTF8.self)
    do {
        try Names.validate(name, what: "guest")
        precondition((1...64).contains(name.utf8.count) && !name.hasPrefix("."), "names: accepted \(name)")
    } catch {
        refused(error, [EINVAL, ENAMETOOLONG], "names")
    }
    do { try ControlText.checkPrintable(bytes, what: "the name") } catch { refused(error, [EINVAL], "checkPrintable") }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzControlText(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let text = input[1...]
    switch input[0] {
    case 0: media(text)
    case 1: sharable(text)
    case 2: initiators(text)
    case 3: chap(text)
    case 4: names(text)
    default:
        media(text); sharable(text); initiators(text); chap(text); names(text)
    }
    return 0
}
