import FuseKernel
import Glibc
import VirtualMedia

/// A drive's `status`: its state as `key=value` lines, taken at open (contract 2.3).
struct StatusNode: TreeNode {
    let fs: VMediaFileSystem
    let driveID: Int64
    var key: NodeKey { .status(driveID) }

    func attributes() throws(FSError) -> FileAttributes {
        guard let d = fs.host.drive(id: driveID), let text = fs.host.status(driveID: driveID) else { throw FSError(ENOENT) }
        return fs.attributes(key, mode: S_IFREG | 0o444, uid: d.owner.uid, gid: d.owner.gid, size: UInt64(text.utf8.count), time: .now)
    }

    func timeouts(in parent: NodeKey?) -> (entry: Double, attributes: Double) {
        (VMediaFileSystem.volatileTimeout, VMediaFileSystem.volatileTimeout)
    }

    func open(flags: Int32, _ ctx: RequestContext) throws(FSError) -> OpenResult {
        guard (flags & O_ACCMODE) == O_RDONLY else { throw FSError(EACCES) }
        guard let text = fs.host.status(driveID: driveID) else { throw FSError(ENOENT) }
        return fs.openText(text)
    }
}
