import CFuse3
import Glibc
import Synchronization

// The C trampolines: each turns libfuse's arguments into Swift values, finds the
// filesystem through the request's userdata, and hands it a typed reply.

private func context(_ req: OpaquePointer, withGroups: Bool) -> RequestContext {
    let c = fuse_req_ctx(req)!.pointee
    var groups: [UInt32] = []
    if withGroups {
        var list = [gid_t](repeating: 0, count: 64)
        var n = fuse_req_getgroups(req, Int32(list.count), &list)
        if n > list.count {
            list = [gid_t](repeating: 0, count: Int(n))
            n = fuse_req_getgroups(req, Int32(list.count), &list)
        }
        if n > 0 { groups = Array(list.prefix(Int(n))) }
    }
    return RequestContext(uid: c.uid, gid: c.gid, pid: c.pid, groups: groups, umask: UInt32(c.umask))
}

private func fs(_ req: OpaquePointer) -> any FileSystem { sessionBox(req)!.fileSystem }
private func str(_ p: UnsafePointer<CChar>?) -> String { p.map { String(cString: $0) } ?? "" }
private func ts(_ t: timespec) -> Timestamp { Timestamp(seconds: Int64(t.tv_sec), nanoseconds: Int64(t.tv_nsec)) }

/// The INIT answer's capabilities for `options`, from what the kernel offers (`capable`).
/// Returns whether directories are opened without OPENDIR/RELEASEDIR from now on.
func negotiate(_ conn: inout fuse_conn_info, _ options: SessionOptions) -> Bool {
    if options.truncateAtOpen { conn.want |= UInt32(FUSE_CAP_ATOMIC_O_TRUNC) & conn.capable }
    if options.splice { conn.want |= UInt32(FUSE_CAP_SPLICE_WRITE) & conn.capable }
    if options.maxRead > 0 { conn.max_read = options.maxRead }
    // Directories opened without a round trip: ls -R of a large host would otherwise pay
    // OPENDIR and RELEASEDIR for every guest and drive directory. The kernel then keeps
    // every listing; it checks a kept listing against the directory's mtime at each listing
    // from the start only with auto_inval_data, so both or neither.
    let both = UInt32(FUSE_CAP_NO_OPENDIR_SUPPORT) | UInt32(FUSE_CAP_AUTO_INVAL_DATA)
    guard options.skipOpendir, conn.capable & both == both else { return false }
    conn.want |= both
    return true
}

func makeOperations() -> fuse_lowlevel_ops {
    var ops = fuse_lowlevel_ops()
    ops.`init` = { userdata, conn in
        guard let userdata, let conn else { return }
        let box = Unmanaged<SessionBox>.fromOpaque(userdata).takeUnretainedValue()
        let skipped = negotiate(&conn.pointee, box.options)
        box.opendirSkipped.store(skipped, ordering: .relaxed)
        // The kernel applies min(bdi window, answer) when this INIT is answered: raise the
        // bdi's window first, then answer with the same value.
        if box.options.readaheadKiB > 0, setReadahead(mountpoint: box.mountpoint, kib: box.options.readaheadKiB) {
            conn.pointee.max_readahead = box.options.readaheadKiB * 1024
        }
    }
    ops.lookup = { req, parent, name in
        guard let req else { return }
        fs(req).lookup(context(req, withGroups: false), parent: parent, name: str(name), reply: EntryReply(req))
    }
    ops.forget = { req, _, _ in fuse_reply_none(req) }
    ops.forget_multi = { req, _, _ in fuse_reply_none(req) }
    ops.getattr = { req, ino, fi in
        guard let req else { return }
        fs(req).getattr(context(req, withGroups: false), ino: ino, handle: fi?.pointee.fh, reply: AttributeReply(req))
    }
    ops.setattr = { req, ino, attr, toSet, fi in
        guard let req, let attr else { return }
        var ch = AttributeChanges()
        let a = attr.pointee
        if toSet & FUSE_SET_ATTR_MODE != 0 { ch.mode = UInt32(a.st_mode) }
        if toSet & FUSE_SET_ATTR_UID != 0 { ch.uid = a.st_uid }
        if toSet & FUSE_SET_ATTR_GID != 0 { ch.gid = a.st_gid }
        if toSet & FUSE_SET_ATTR_SIZE != 0 { ch.size = UInt64(max(0, a.st_size)) }
        if toSet & FUSE_SET_ATTR_ATIME_NOW != 0 { ch.accessTime = .now } else if toSet & FUSE_SET_ATTR_ATIME != 0 { ch.accessTime = ts(a.st_atim) }
        if toSet & FUSE_SET_ATTR_MTIME_NOW != 0 { ch.modificationTime = .now } else if toSet & FUSE_SET_ATTR_MTIME != 0 { ch.modificationTime = ts(a.st_mtim) }
        ch.handle = fi?.pointee.fh
        fs(req).setattr(context(req, withGroups: true), ino: ino, changes: ch, reply: AttributeReply(req))
    }
    ops.access = { req, ino, mask in
        guard let req else { return }
        fs(req).access(context(req, withGroups: true), ino: ino, mask: mask, reply: StatusReply(req))
    }
    ops.readlink = { req, ino in
        guard let req else { return }
        fs(req).readlink(context(req, withGroups: false), ino: ino, reply: LinkReply(req))
    }
    ops.mkdir = { req, parent, name, mode in
        guard let req else { return }
        fs(req).mkdir(context(req, withGroups: true), parent: parent, name: str(name), mode: UInt32(mode), reply: EntryReply(req))
    }
    ops.mknod = { req, _, _, _, _ in fuse_reply_err(req, EPERM) }
    ops.symlink = { req, _, _, _ in fuse_reply_err(req, EPERM) }
    ops.link = { req, _, _, _ in fuse_reply_err(req, EPERM) }
    ops.unlink = { req, parent, name in
        guard let req else { return }
        fs(req).unlink(context(req, withGroups: true), parent: parent, name: str(name), reply: StatusReply(req))
    }
    ops.rmdir = { req, parent, name in
        guard let req else { return }
        fs(req).rmdir(context(req, withGroups: true), parent: parent, name: str(name), reply: StatusReply(req))
    }
    ops.rename = { req, parent, name, newParent, newName, flags in
        guard let req else { return }
        fs(req).rename(context(req, withGroups: true), parent: parent, name: str(name), newParent: newParent,
                       newName: str(newName), flags: flags, reply: StatusReply(req))
    }
    ops.create = { req, parent, name, mode, fi in
        guard let req, let fi else { return }
        fs(req).create(context(req, withGroups: true), parent: parent, name: str(name), mode: UInt32(mode),
                       flags: fi.pointee.flags, reply: CreateReply(req))
    }
    ops.open = { req, ino, fi in
        guard let req, let fi else { return }
        let flags = fi.pointee.flags
        let writing = (flags & O_ACCMODE) != O_RDONLY
        fs(req).open(context(req, withGroups: writing), ino: ino, flags: flags, reply: OpenReply(req))
    }
    ops.read = { req, ino, size, off, fi in
        guard let req, let fi else { return }
        fs(req).read(context(req, withGroups: false), ino: ino, handle: fi.pointee.fh, offset: UInt64(max(0, off)),
                     size: size, flags: fi.pointee.flags, reply: DataReply(req))
    }
    ops.write = { req, ino, buf, size, off, fi in
        guard let req, let fi else { return }
        let data = UnsafeRawBufferPointer(start: buf, count: size)
        fs(req).write(context(req, withGroups: true), ino: ino, handle: fi.pointee.fh, offset: UInt64(max(0, off)),
                      data: data, reply: WriteReply(req))
    }
    ops.flush = { req, ino, fi in
        guard let req, let fi else { return }
        fs(req).flush(context(req, withGroups: true), ino: ino, handle: fi.pointee.fh, reply: StatusReply(req))
    }
    ops.release = { req, ino, fi in
        guard let req, let fi else { return }
        fs(req).release(context(req, withGroups: false), ino: ino, handle: fi.pointee.fh, flags: fi.pointee.flags,
                        reply: StatusReply(req))
    }
    ops.fsync = { req, _, _, _ in fuse_reply_err(req, 0) }
    ops.opendir = { req, ino, fi in
        guard let req, let fi, let box = sessionBox(req) else { return }
        do throws(FSError) {
            // nil: ENOSYS tells the kernel never to send OPENDIR again (agreed at INIT).
            guard let opened = try box.openDirectory(context(req, withGroups: false), ino: ino) else { fuse_reply_err(req, ENOSYS); return }
            fi.pointee.fh = opened.handle
            if opened.keep {
                fi.pointee.cache_readdir = 1
                fi.pointee.keep_cache = 1
            }
            fuse_reply_open(req, fi)
        } catch {
            fuse_reply_err(req, error.errno)
        }
    }
    ops.readdir = { req, ino, size, off, fi in
        guard let req, let fi, let box = sessionBox(req) else { return }
        do throws(FSError) {
            let items = try box.directoryItems(context(req, withGroups: false), ino: ino, handle: fi.pointee.fh, offset: Int(off))
            replyDirectory(req, items: items, size: size, offset: Int(off))
        } catch {
            fuse_reply_err(req, error.errno)
        }
    }
    ops.releasedir = { req, _, fi in
        guard let req, let fi, let box = sessionBox(req) else { return }
        box.releaseDirectory(fi.pointee.fh)
        fuse_reply_err(req, 0)
    }
    ops.fsyncdir = { req, _, _, _ in fuse_reply_err(req, 0) }
    ops.statfs = { req, ino in
        guard let req else { return }
        fs(req).statfs(context(req, withGroups: false), ino: ino, reply: StatfsReply(req))
    }
    ops.poll = { req, ino, fi, ph in
        guard let req, let fi else { return }
        fs(req).poll(context(req, withGroups: false), ino: ino, handle: fi.pointee.fh,
                     wake: ph.map { PollHandle($0) }, reply: PollReply(req))
    }
    return ops
}

/// Packs directory items from `offset` into one reply of at most `size` bytes.
private func replyDirectory(_ req: OpaquePointer, items: [DirectoryItem], size: Int, offset: Int) {
    let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: size)
    defer { buffer.deallocate() }
    var used = 0
    var index = max(0, offset)
    while index < items.count {
        let item = items[index]
        var st = stat()
        st.st_ino = ino_t(item.ino)
        st.st_mode = mode_t(item.type)
        let need = fuse_add_direntry(req, buffer + used, size - used, item.name, &st, off_t(index + 1))
        if need > size - used { break }
        used += need
        index += 1
    }
    fuse_reply_buf(req, buffer, used)
}
