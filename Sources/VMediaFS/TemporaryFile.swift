import FuseKernel
import Glibc
import Synchronization
import VirtualMedia

/// An in-memory file an editor created in a drive directory, to save `media` by writing
/// it and renaming it over `media`. It lives until that rename, its removal, or unmount.
final class TemporaryFile: @unchecked Sendable {
    let lock = Mutex<(data: [UInt8], mode: UInt32, uid: UInt32, gid: UInt32)>(([], 0o644, 0, 0))
    init(mode: UInt32, uid: UInt32, gid: UInt32) { lock.withLock { $0 = ([], mode, uid, gid) } }

    func truncate() { lock.withLock { $0.data.removeAll() } }
}

/// An editor's temporary file, as a node of its drive directory.
struct TemporaryNode: TreeNode {
    let fs: VMediaFileSystem
    let driveID: Int64
    let name: String
    var key: NodeKey { .temporary(driveID, name) }

    func attributes() throws(FSError) -> FileAttributes {
        guard let f = fs.temporaryFile(key) else { throw FSError(ENOENT) }
        let (size, mode, uid, gid) = f.lock.withLock { (UInt64($0.data.count), $0.mode, $0.uid, $0.gid) }
        return fs.attributes(key, mode: S_IFREG | mode, uid: uid, gid: gid, size: size)
    }

    func timeouts(in parent: NodeKey?) -> (entry: Double, attributes: Double) {
        (VMediaFileSystem.volatileTimeout, VMediaFileSystem.volatileTimeout)
    }

    func open(flags: Int32, _ ctx: RequestContext) throws(FSError) -> OpenResult {
        guard let f = fs.temporaryFile(key) else { throw FSError(ENOENT) }
        if flags & O_TRUNC != 0 { f.truncate() }
        return OpenResult(handle: TemporaryHandle(f).retainForKernel(), directIO: true)
    }

    /// As for any file of the user's: truncate or extend, chmod, chown.
    func setAttributes(_ changes: AttributeChanges, handle: OpenHandle?, _ ctx: RequestContext) throws(VMError) {
        guard let f = fs.temporaryFile(key) else { throw VMError(ENOENT, "gone") }
        f.lock.withLock { t in
            if let s = changes.size { t.data = Array(t.data.prefix(Int(s))) + [UInt8](repeating: 0, count: max(0, Int(s) - t.data.count)) }
            if let m = changes.mode { t.mode = m & 0o777 }
            if let u = changes.uid { t.uid = u }
            if let g = changes.gid { t.gid = g }
        }
    }
}

final class TemporaryHandle: OpenHandle, @unchecked Sendable {
    let file: TemporaryFile
    init(_ file: TemporaryFile) { self.file = file }

    override func read(offset: UInt64, size: Int, flags: Int32, reply: consuming DataReply) {
        let bytes = file.lock.withLock { d -> [UInt8] in
            let start = Int(min(UInt64(d.data.count), offset))
            return Array(d.data[start..<min(d.data.count, start + size)])
        }
        reply.data(bytes)
    }

    override func write(offset: UInt64, data: UnsafeRawBufferPointer, _ ctx: RequestContext, reply: consuming WriteReply) {
        file.lock.withLock { f in
            let end = Int(offset) + data.count
            if f.data.count < end { f.data += [UInt8](repeating: 0, count: end - f.data.count) }
            f.data.replaceSubrange(Int(offset)..<end, with: data)
        }
        reply.written(data.count)
    }
}

extension VMediaFileSystem {
    func temporaryFile(_ key: NodeKey) -> TemporaryFile? { temporaries.withLock { $0[key] } }

    /// The names of a drive's temporary files.
    func temporaryNames(drive: Int64) -> [String] {
        temporaries.withLock { t in
            t.keys.compactMap { if case .temporary(drive, let name) = $0 { name } else { nil } }
        }
    }

    func addTemporary(_ key: NodeKey, mode: UInt32, _ ctx: RequestContext) -> TemporaryFile {
        let file = TemporaryFile(mode: mode, uid: ctx.uid, gid: ctx.gid)
        temporaries.withLock { $0[key] = file }
        return file
    }

    /// Removes a temporary file and its inode number; false when there was none.
    func removeTemporary(_ key: NodeKey) -> Bool {
        guard temporaries.withLock({ $0.removeValue(forKey: key) }) != nil else { return false }
        if let d = key.driveID { inodes.purge(drive: d) { $0 == key } }
        return true
    }

    /// Gives a temporary file a new name (replacing a temporary file of that name).
    func renameTemporary(_ key: NodeKey, to newKey: NodeKey) {
        temporaries.withLock { t in
            let file = t.removeValue(forKey: key)
            t[newKey] = file
        }
        if let d = key.driveID { inodes.purge(drive: d) { $0 == key } }
    }
}
