import CFuseABI
import Glibc

// The requests the wire layer decodes: each turns the kernel's structure into the Swift
// values of `FileSystem` and a reply bound to the request's id. Opcodes vmediafs has no
// use for are answered ENOSYS (the kernel then stops sending most of them), as libfuse does.

extension KernelChannel {
    func dispatch(_ message: UnsafeRawBufferPointer, entry: RingEntry? = nil) {
        let h = message.loadUnaligned(as: fuse_in_header.self)
        let headerSize = MemoryLayout<fuse_in_header>.size
        let end = min(Int(h.len), message.count)
        let body = UnsafeRawBufferPointer(rebasing: message[headerSize..<max(headerSize, end)])
        let opcode = fuse_opcode(rawValue: h.opcode)
        if debug { log("request \(h.unique): opcode \(h.opcode) node \(h.nodeid) uid \(h.uid) pid \(h.pid)\(entry == nil ? "" : " (io_uring queue \(entry!.queue.qid))")") }
        let fs = box.fileSystem
        let unique = h.unique
        var request = KernelRequest(unique: unique, channel: self, entry: entry)
        request.node = h.nodeid
        func context(groups: Bool, umask: UInt32 = 0o022) -> RequestContext {
            RequestContext(uid: h.uid, gid: h.gid, pid: Int32(bitPattern: h.pid),
                           groups: groups ? callerGroups(pid: h.pid) : [], umask: umask)
        }
        /// The fixed part of the request, or nil (answered EINVAL) when the body is short.
        func arg<T>(_ type: T.Type) -> T? {
            guard body.count >= MemoryLayout<T>.size else { reply(request, error: EINVAL); return nil }
            return body.loadUnaligned(as: T.self)
        }
        /// The NUL-terminated names that follow `skip` bytes of fixed arguments.
        func names(after skip: Int, count: Int = 1) -> [String]? {
            guard body.count >= skip else { reply(request, error: EINVAL); return nil }
            var out: [String] = []
            var rest = body[(body.startIndex + skip)...]
            for _ in 0..<count {
                guard let nul = rest.firstIndex(of: 0) else { reply(request, error: EINVAL); return nil }
                out.append(String(decoding: UnsafeRawBufferPointer(rebasing: rest[..<nul]), as: UTF8.self))
                rest = rest[(nul + 1)...]
            }
            return out
        }

        switch opcode {
        case FUSE_INIT:
            guard let a = initArguments(body) else { return reply(request, error: EINVAL) }
            answerInit(request, a)
        case FUSE_LOOKUP:
            guard let n = names(after: 0) else { return }
            fs.lookup(context(groups: false), parent: h.nodeid, name: n[0], reply: EntryReply(request))
        case FUSE_FORGET, FUSE_BATCH_FORGET:
            break                                          // no answer; inodes are not counted
        case FUSE_GETATTR:
            guard let a = arg(fuse_getattr_in.self) else { return }
            let handle: UInt64? = a.getattr_flags & UInt32(FUSE_GETATTR_FH) != 0 ? a.fh : nil
            fs.getattr(context(groups: false), ino: h.nodeid, handle: handle, reply: AttributeReply(request))
        case FUSE_SETATTR:
            guard let a = arg(fuse_setattr_in.self) else { return }
            fs.setattr(context(groups: true), ino: h.nodeid, changes: changes(a), reply: AttributeReply(request))
        case FUSE_ACCESS:
            guard let a = arg(fuse_access_in.self) else { return }
            fs.access(context(groups: true), ino: h.nodeid, mask: Int32(bitPattern: a.mask), reply: StatusReply(request))
        case FUSE_READLINK:
            fs.readlink(context(groups: false), ino: h.nodeid, reply: LinkReply(request))
        case FUSE_MKDIR:
            guard let a = arg(fuse_mkdir_in.self), let n = names(after: MemoryLayout<fuse_mkdir_in>.size) else { return }
            fs.mkdir(context(groups: true, umask: a.umask), parent: h.nodeid, name: n[0], mode: a.mode, reply: EntryReply(request))
        case FUSE_MKNOD, FUSE_SYMLINK, FUSE_LINK:
            reply(request, error: EPERM)
        case FUSE_UNLINK:
            guard let n = names(after: 0) else { return }
            fs.unlink(context(groups: true), parent: h.nodeid, name: n[0], reply: StatusReply(request))
        case FUSE_RMDIR:
            guard let n = names(after: 0) else { return }
            fs.rmdir(context(groups: true), parent: h.nodeid, name: n[0], reply: StatusReply(request))
        case FUSE_RENAME:
            guard let a = arg(fuse_rename_in.self), let n = names(after: MemoryLayout<fuse_rename_in>.size, count: 2) else { return }
            fs.rename(context(groups: true), parent: h.nodeid, name: n[0], newParent: a.newdir, newName: n[1], flags: 0,
                      reply: StatusReply(request))
        case FUSE_RENAME2:
            guard let a = arg(fuse_rename2_in.self), let n = names(after: MemoryLayout<fuse_rename2_in>.size, count: 2) else { return }
            fs.rename(context(groups: true), parent: h.nodeid, name: n[0], newParent: a.newdir, newName: n[1], flags: a.flags,
                      reply: StatusReply(request))
        case FUSE_CREATE:
            guard let a = arg(fuse_create_in.self), let n = names(after: MemoryLayout<fuse_create_in>.size) else { return }
            fs.create(context(groups: true, umask: a.umask), parent: h.nodeid, name: n[0], mode: a.mode,
                      flags: Int32(bitPattern: a.flags), reply: CreateReply(request))
        case FUSE_OPEN:
            guard let a = arg(fuse_open_in.self) else { return }
            let flags = Int32(bitPattern: a.flags)
            fs.open(context(groups: flags & O_ACCMODE != O_RDONLY), ino: h.nodeid, flags: flags, reply: OpenReply(request))
        case FUSE_READ:
            guard let a = arg(fuse_read_in.self) else { return }
            fs.read(context(groups: false), ino: h.nodeid, handle: a.fh, offset: a.offset, size: Int(a.size),
                    flags: Int32(bitPattern: a.flags), reply: DataReply(request))
        case FUSE_WRITE:
            guard let a = arg(fuse_write_in.self) else { return }
            let fixed = MemoryLayout<fuse_write_in>.size
            guard body.count >= fixed + Int(a.size) else { reply(request, error: EINVAL); return }
            let data = UnsafeRawBufferPointer(rebasing: body[(body.startIndex + fixed)..<(body.startIndex + fixed + Int(a.size))])
            fs.write(context(groups: true), ino: h.nodeid, handle: a.fh, offset: a.offset, data: data, reply: WriteReply(request))
        case FUSE_FLUSH:
            guard let a = arg(fuse_flush_in.self) else { return }
            fs.flush(context(groups: true), ino: h.nodeid, handle: a.fh, reply: StatusReply(request))
        case FUSE_RELEASE:
            guard let a = arg(fuse_release_in.self) else { return }
            released(handle: a.fh)
            fs.release(context(groups: false), ino: h.nodeid, handle: a.fh, flags: Int32(bitPattern: a.flags), reply: StatusReply(request))
        case FUSE_FSYNC, FUSE_FSYNCDIR:
            reply(request, error: 0)
        case FUSE_OPENDIR:
            do throws(FSError) {
                guard let opened = try box.openDirectory(context(groups: false), ino: h.nodeid) else { return reply(request, error: ENOSYS) }
                let flags = opened.keep ? UInt32(FOPEN_CACHE_DIR) | UInt32(FOPEN_KEEP_CACHE) : 0
                reply(request, value: WireFormat.open(handle: opened.handle, flags: flags))
            } catch {
                reply(request, error: error.errno)
            }
        case FUSE_READDIR:
            guard let a = arg(fuse_read_in.self) else { return }
            do throws(FSError) {
                let items = try box.directoryItems(context(groups: false), ino: h.nodeid, handle: a.fh, offset: Int(a.offset))
                reply(request, WireFormat.directory(items, from: Int(a.offset), size: Int(a.size)))
            } catch {
                reply(request, error: error.errno)
            }
        case FUSE_RELEASEDIR:
            guard let a = arg(fuse_release_in.self) else { return }
            box.releaseDirectory(a.fh)
            reply(request, error: 0)
        case FUSE_STATFS:
            fs.statfs(context(groups: false), ino: h.nodeid, reply: StatfsReply(request))
        case FUSE_POLL:
            guard let a = arg(fuse_poll_in.self) else { return }
            let wake = a.flags & UInt32(FUSE_POLL_SCHEDULE_NOTIFY) != 0 ? PollHandle(channel: self, kernelHandle: a.kh) : nil
            fs.poll(context(groups: false), ino: h.nodeid, handle: a.fh, wake: wake, reply: PollReply(request))
        case FUSE_INTERRUPT:
            guard let a = arg(fuse_interrupt_in.self) else { return }
            interrupt(a.unique)                            // no answer
        case FUSE_DESTROY:
            reply(request, error: 0)
        default:
            reply(request, error: ENOSYS)
        }
    }

    /// INIT's arguments: kernels before 7.36 send only the first 16 bytes (no flags2), the
    /// rest read as zeros.
    private func initArguments(_ body: UnsafeRawBufferPointer) -> fuse_init_in? {
        guard body.count >= 16 else { return nil }
        var a = fuse_init_in()
        let count = min(body.count, MemoryLayout<fuse_init_in>.size)
        withUnsafeMutableBytes(of: &a) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: body[body.startIndex..<(body.startIndex + count)])) }
        return a
    }

    private func changes(_ a: fuse_setattr_in) -> AttributeChanges {
        var ch = AttributeChanges()
        let valid = a.valid
        func has(_ bit: Int32) -> Bool { valid & UInt32(bit) != 0 }
        if has(FATTR_MODE) { ch.mode = a.mode }
        if has(FATTR_UID) { ch.uid = a.uid }
        if has(FATTR_GID) { ch.gid = a.gid }
        if has(FATTR_SIZE) { ch.size = a.size }
        if has(FATTR_ATIME_NOW) { ch.accessTime = .now } else if has(FATTR_ATIME) {
            ch.accessTime = Timestamp(seconds: Int64(bitPattern: a.atime), nanoseconds: Int64(a.atimensec))
        }
        if has(FATTR_MTIME_NOW) { ch.modificationTime = .now } else if has(FATTR_MTIME) {
            ch.modificationTime = Timestamp(seconds: Int64(bitPattern: a.mtime), nanoseconds: Int64(a.mtimensec))
        }
        if has(FATTR_FH) { ch.handle = a.fh }
        return ch
    }
}

/// The supplementary groups of process `pid`, from the "Groups:" line of its status in
/// /proc (what libfuse's `fuse_req_getgroups` reads); empty if the process is gone.
func callerGroups(pid: UInt32) -> [UInt32] {
    let fd = open("/proc/\(pid)/task/\(pid)/status", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return [] }
    defer { close(fd) }
    var bytes = [UInt8](repeating: 0, count: 4096)
    var used = 0
    while used < bytes.count {
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + used, $0.count - used) }
        if n <= 0 { break }
        used += n
    }
    let text = String(decoding: bytes[0..<used], as: UTF8.self)
    guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Groups:") }) else { return [] }
    return line.dropFirst(7).split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { UInt32($0) }
}
