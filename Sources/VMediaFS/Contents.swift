import FuseKernel
import Glibc
import VirtualMedia

/// An open file of `contents/`.
final class ContentsHandle: OpenHandle, @unchecked Sendable {}

/// A child of a `contents/` directory.
struct ContentsChild {
    var name: String
    var node: UInt64
    var type: UInt32
}

/// The loaded discs' own file trees, per drive and media generation.
/// (Empty until the disc-format reader is wired in.)
final class ContentsCache: Sendable {
    static let rootNode: UInt64 = 0
    let host: Host
    init(host: Host) { self.host = host }

    func isEmpty(drive: Int64, generation: UInt64) -> Bool { true }
    func child(drive: Int64, generation: UInt64, node: UInt64, name: String) -> UInt64? { nil }
    func children(drive: Int64, generation: UInt64, node: UInt64) throws(FSError) -> [ContentsChild] { [] }
    func attributes(drive: Int64, generation: UInt64, node: UInt64, ino: UInt64) throws(FSError) -> FileAttributes { throw FSError(ENOENT) }
    func open(drive: Int64, generation: UInt64, node: UInt64) throws(FSError) -> ContentsHandle { throw FSError(EISDIR) }
    func read(_ h: ContentsHandle, offset: UInt64, size: Int, reply: consuming DataReply) { reply.fail(EIO) }
    func close(_ h: ContentsHandle) {}
    func linkTarget(drive: Int64, generation: UInt64, node: UInt64) throws(FSError) -> String { throw FSError(EINVAL) }
}
