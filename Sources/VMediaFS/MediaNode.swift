import FuseKernel
import Glibc
import VirtualMedia

/// A drive's `media`: reads back the loaded image's path; writing a path inserts (or swaps)
/// it. Every way of ejecting through the tree ends here: `rm media`, truncating it to
/// nothing (`truncate -s 0`, or `: > media` closed with nothing written), and an editor's
/// save of an empty file onto it.
struct MediaNode: TreeNode, ControlTarget {
    let fs: VMediaFileSystem
    let driveID: Int64
    var key: NodeKey { .media(driveID) }

    func attributes() throws(FSError) -> FileAttributes {
        // Looked up only while loaded; but a `media` just created for an insert exists
        // (empty) for its writer until the insert completes.
        guard let d = fs.host.drive(id: driveID) else { throw FSError(ENOENT) }
        return fs.attributes(key, mode: S_IFREG | (d.owner.mode & 0o666), uid: d.owner.uid, gid: d.owner.gid,
                             size: d.loaded.map { UInt64($0.path.utf8.count + 1) } ?? 0,
                             time: d.loaded.map { Timestamp(nanos: $0.loadedAt) } ?? .now)
    }

    func timeouts(in parent: NodeKey?) -> (entry: Double, attributes: Double) {
        (VMediaFileSystem.volatileTimeout, VMediaFileSystem.volatileTimeout)
    }

    func open(flags: Int32, _ ctx: RequestContext) throws(FSError) -> OpenResult {
        if (flags & O_ACCMODE) != O_RDONLY {
            let w = ControlWriter(self, truncated: flags & O_TRUNC != 0, opener: ctx.credentials)
            return OpenResult(handle: w.retainForKernel(), directIO: true)
        }
        guard let m = fs.host.drive(id: driveID)?.loaded else { throw FSError(ENOENT) }
        return fs.openText(m.path + "\n")
    }

    /// `media` created by an open with O_CREAT (the drive is empty, or the kernel had not
    /// looked the name up): a writer as for an open with O_TRUNC.
    func createForWriting(_ ctx: RequestContext) -> (Entry, OpenResult) {
        let w = ControlWriter(self, truncated: true, opener: ctx.credentials)
        let attrs = FileAttributes(ino: fs.inodes.ino(key), mode: S_IFREG | 0o644, uid: ctx.uid, gid: ctx.gid,
                                   accessTime: .now, modificationTime: .now, changeTime: .now)
        return (Entry(attributes: attrs, entryTimeout: 0, attributeTimeout: 0), OpenResult(handle: w.retainForKernel(), directIO: true))
    }

    /// A truncation to 0: through an open writer it waits for that writer's close (an
    /// `echo new > media` is a swap, not an eject); on its own it ejects.
    func setAttributes(_ changes: AttributeChanges, handle: OpenHandle?, _ ctx: RequestContext) throws(VMError) {
        guard changes.size == 0 else { return }
        if let writer = handle as? ControlWriter { return writer.markTruncated() }
        try eject(ctx.credentials)
    }

    /// `rm media`.
    func remove(_ ctx: RequestContext) throws(VMError) { try eject(ctx.credentials) }

    /// An editor's save onto `media`: what it wrote is the request (an empty one ejects).
    func replace(with data: [UInt8], _ ctx: RequestContext) throws(VMError) {
        var request = data
        if request.last == 0x0A { request.removeLast() }
        if request.isEmpty { return try ejectIfLoaded(ctx.credentials) }
        try take(request, by: ctx.credentials)
    }

    func take(_ text: [UInt8], by user: Credentials) throws(VMError) {
        _ = try fs.host.insert(driveID: driveID, request: text, by: user)
    }

    /// `: > media`: opened with O_TRUNC and closed with nothing written.
    func truncatedEmpty(by user: Credentials) throws(VMError) { try ejectIfLoaded(user) }

    private func ejectIfLoaded(_ user: Credentials) throws(VMError) {
        if fs.host.drive(id: driveID)?.loaded != nil { try eject(user) }
    }

    private func eject(_ user: Credentials) throws(VMError) { try fs.host.eject(driveID: driveID, by: user) }
}
