import FuseKernel
import Glibc
import SCSI
import VirtualMedia

extension VMediaFileSystem {
    public func open(_ ctx: RequestContext, ino: UInt64, flags: Int32, reply: consuming OpenReply) {
        guard let key = inodes.key(ino) else { return reply.fail(ESTALE) }
        let writing = (flags & O_ACCMODE) != O_RDONLY
        switch key {
        case .root, .guests, .library, .guest, .drive, .libraryItem, .contentsRoot:
            return reply.fail(EISDIR)
        case .events:
            guard !writing else { return reply.fail(EACCES) }
            // Seekable: a read below what this reader was handed reads it again (bash's `read`
            // seeks back), any other offset takes the next bytes (docs/contract.md, events).
            let h = EventsHandle(fs: self)
            reply.opened(OpenResult(handle: h.retainForKernel(), directIO: true))
        case .disc:
            guard !writing else { return reply.fail(EROFS) }
            do throws(FSError) {
                let h = try openDisc(key)
                reply.opened(discIO == .direct ? OpenResult(handle: h.retainForKernel(), directIO: true, noFlush: true)
                                               : OpenResult(handle: h.retainForKernel(), keepCache: true, noFlush: true))
            } catch { reply.fail(error.errno) }
        case .media(let id):
            if writing {
                let h = ControlWriter(target: .media(id), truncated: flags & O_TRUNC != 0, opener: credentials(ctx))
                reply.opened(OpenResult(handle: h.retainForKernel(), directIO: true))
            } else {
                guard let m = host.drive(id: id)?.loaded else { return reply.fail(ENOENT) }
                reply.opened(OpenResult(handle: TextHandle(m.path + "\n").retainForKernel(), directIO: true))
            }
        case .initiators(let gid), .chap(let gid):
            guard let g = host.guest(id: gid) else { return reply.fail(ENOENT) }
            if writing {
                do throws(FSError) {
                    reply.opened(OpenResult(handle: try accessWriter(key, flags: flags, ctx).retainForKernel(), directIO: true))
                } catch { reply.fail(error.errno) }
            } else {
                // The CHAP secret is never read back, not even by its owner.
                guard case .initiators = key else { return reply.fail(EACCES) }
                reply.opened(OpenResult(handle: TextHandle(initiatorsText(g)).retainForKernel(), directIO: true))
            }
        case .status(let id):
            guard !writing else { return reply.fail(EACCES) }
            guard let text = host.status(driveID: id) else { return reply.fail(ENOENT) }
            reply.opened(OpenResult(handle: TextHandle(text).retainForKernel(), directIO: true))
        case .libraryFile(let name, let field):
            guard let item = host.libraryItem(named: name) else { return reply.fail(ENOENT) }
            if writing {
                guard field == .sharable else { return reply.fail(EACCES) }
                guard ctx.uid == 0 || ctx.uid == item.uid else { return reply.fail(EACCES) }
                reply.opened(OpenResult(handle: ControlWriter(target: .sharable(name), truncated: false, opener: credentials(ctx)).retainForKernel(), directIO: true))
            } else {
                reply.opened(OpenResult(handle: TextHandle(libraryText(item, field)).retainForKernel(), directIO: true))
            }
        case .contents(let id, let gen, let node):
            guard !writing else { return reply.fail(EROFS) }
            do throws(FSError) {
                let h = try contents.open(drive: id, generation: gen, node: node)
                reply.opened(OpenResult(handle: h.retainForKernel(), keepCache: true, noFlush: true))
            } catch { reply.fail(error.errno) }
        case .temporary:
            guard let f = temporaries.withLock({ $0[key] }) else { return reply.fail(ENOENT) }
            if flags & O_TRUNC != 0 { f.lock.withLock { $0.data.removeAll() } }
            reply.opened(OpenResult(handle: TemporaryHandle(f).retainForKernel(), directIO: true))
        }
    }

    public func read(_ ctx: RequestContext, ino: UInt64, handle: UInt64, offset: UInt64, size: Int, flags: Int32,
                     reply: consuming DataReply) {
        guard let h = OpenHandle.from(handle) else { return reply.fail(EBADF) }
        switch h {
        case let d as DiscHandle:
            readDisc(d, offset: offset, size: size, reply: reply)
        case let c as ContentsHandle:
            contents.read(c, offset: offset, size: size, reply: reply)
        case let t as TextHandle:
            let start = Int(min(UInt64(t.bytes.count), offset))
            let end = min(t.bytes.count, start + size)
            reply.data(Array(t.bytes[start..<end]))
        case let t as TemporaryHandle:
            let bytes = t.file.lock.withLock { d -> [UInt8] in
                let start = Int(min(UInt64(d.data.count), offset))
                return Array(d.data[start..<min(d.data.count, start + size)])
            }
            reply.data(bytes)
        case let e as EventsHandle:
            e.read(offset: offset, size: size, nonBlocking: flags & O_NONBLOCK != 0, reply: reply)
        default:
            reply.fail(EBADF)
        }
    }

    public func write(_ ctx: RequestContext, ino: UInt64, handle: UInt64, offset: UInt64, data: UnsafeRawBufferPointer,
                      reply: consuming WriteReply) {
        guard let h = OpenHandle.from(handle) else { return reply.fail(EBADF) }
        switch h {
        case let w as ControlWriter:
            for line in w.append(data) {
                do throws(VMError) { try complete(w, line, ctx) } catch { return reply.fail(error.errno) }
            }
            reply.written(data.count)
        case let t as TemporaryHandle:
            t.file.lock.withLock { f in
                let end = Int(offset) + data.count
                if f.data.count < end { f.data += [UInt8](repeating: 0, count: end - f.data.count) }
                f.data.replaceSubrange(Int(offset)..<end, with: data)
            }
            reply.written(data.count)
        default:
            reply.fail(EBADF)
        }
    }

    /// Carries out one completed line written to a control file.
    private func complete(_ w: ControlWriter, _ line: [UInt8], _ ctx: RequestContext) throws(VMError) {
        switch w.target {
        case .media(let id):
            _ = try host.insert(driveID: id, request: line, by: credentials(ctx))
        case .sharable(let name):
            try host.setSharable(name: name, try ControlText.sharable(line), by: credentials(ctx))
        case .initiators(let gid):
            try host.setInitiators(guestID: gid, text: line, by: credentials(ctx))
        case .chap(let gid):
            try host.setChap(guestID: gid, text: line, by: credentials(ctx))
        }
    }

    /// What a close still has to do: an unterminated path, or the eject of `: > media`.
    private func finish(_ w: ControlWriter, _ ctx: RequestContext, atRelease: Bool) throws(VMError) {
        switch w.takePending(atRelease: atRelease) {
        case .nothing: return
        case .line(let line): try complete(w, line, ctx)
        case .truncate:
            if case .media(let id) = w.target, host.drive(id: id)?.loaded != nil {
                try host.eject(driveID: id, by: credentials(ctx))
            }
        }
    }

    public func flush(_ ctx: RequestContext, ino: UInt64, handle: UInt64, reply: consuming StatusReply) {
        guard let w = OpenHandle.from(handle) as? ControlWriter else { return reply.ok() }
        do throws(VMError) { try finish(w, ctx, atRelease: false) } catch { return reply.fail(error.errno) }
        reply.ok()
    }

    public func release(_ ctx: RequestContext, ino: UInt64, handle: UInt64, flags: Int32, reply: consuming StatusReply) {
        let h = OpenHandle.release(handle)
        switch h {
        case let w as ControlWriter:
            // Errors here reach no caller (close has returned); the refusal is still
            // recorded in status, the log and events by the host.
            try? finish(w, RequestContext(uid: w.opener.uid, gid: w.opener.gid, pid: 0, groups: w.opener.groups),
                        atRelease: true)
        case let d as DiscHandle:
            // Its initiator is detached with its reader, once no READ in flight holds it.
            d.reader.runtime.openers.add(-1, ordering: .relaxed)
        case let e as EventsHandle:
            e.close()
        default:
            break
        }
        reply.ok()
    }

    // MARK: creating, removing and renaming files

    /// A writer of a guest's `initiators` or `chap`, for its owner (or root) only.
    private func accessWriter(_ key: NodeKey, flags: Int32, _ ctx: RequestContext) throws(FSError) -> ControlWriter {
        let gid: Int64, target: ControlWriter.Target
        switch key {
        case .initiators(let id): (gid, target) = (id, .initiators(id))
        case .chap(let id): (gid, target) = (id, .chap(id))
        default: throw FSError(EACCES)
        }
        guard let g = host.guest(id: gid) else { throw FSError(ENOENT) }
        guard ctx.uid == 0 || ctx.uid == g.owner.uid else { throw FSError(EACCES) }
        return ControlWriter(target: target, truncated: flags & O_TRUNC != 0, opener: credentials(ctx))
    }

    public func create(_ ctx: RequestContext, parent: UInt64, name: String, mode: UInt32, flags: Int32, reply: consuming CreateReply) {
        guard let pk = inodes.key(parent) else { return reply.fail(ESTALE) }
        // The kernel sends CREATE for an O_CREAT open of a name it has not cached, even if
        // the name exists: answer as an open of the existing node would.
        if name != "media", let existing = child(of: pk, named: name) {
            if flags & O_EXCL != 0 { return reply.fail(EEXIST) }
            switch existing {
            case .disc: return reply.fail(EROFS)
            case .initiators, .chap:
                do throws(FSError) {
                    let h = try accessWriter(existing, flags: flags, ctx)
                    return reply.created(try entry(existing), OpenResult(handle: h.retainForKernel(), directIO: true))
                } catch { return reply.fail(error.errno) }
            case .temporary:
                guard let f = temporaries.withLock({ $0[existing] }) else { return reply.fail(ENOENT) }
                if flags & O_TRUNC != 0 { f.lock.withLock { $0.data.removeAll() } }
                do throws(FSError) {
                    return reply.created(try entry(existing), OpenResult(handle: TemporaryHandle(f).retainForKernel(), directIO: true))
                } catch { return reply.fail(error.errno) }
            case .guests, .library, .guest, .drive, .contents, .contentsRoot, .libraryItem: return reply.fail(EISDIR)
            default: return reply.fail(EACCES)
            }
        }
        guard case .drive(let id) = pk, host.drive(id: id) != nil else {
            return reply.fail(EPERM)
        }
        if name == "media" {
            let h = ControlWriter(target: .media(id), truncated: true, opener: credentials(ctx))
            let attrs = FileAttributes(ino: inodes.ino(.media(id)), mode: S_IFREG | 0o644, uid: ctx.uid, gid: ctx.gid,
                                       accessTime: .now, modificationTime: .now, changeTime: .now)
            return reply.created(Entry(attributes: attrs, entryTimeout: 0, attributeTimeout: 0),
                                 OpenResult(handle: h.retainForKernel(), directIO: true))
        }
        guard !Names.reserved.contains(name), !name.contains("/"), name.utf8.count <= 255 else { return reply.fail(EPERM) }
        let key = NodeKey.temporary(id, name)
        let file = TemporaryFile(mode: mode & ~ctx.umask & 0o777, uid: ctx.uid, gid: ctx.gid)
        temporaries.withLock { $0[key] = file }
        do throws(FSError) {
            reply.created(try entry(key), OpenResult(handle: TemporaryHandle(file).retainForKernel(), directIO: true))
        } catch { reply.fail(error.errno) }
    }

    public func unlink(_ ctx: RequestContext, parent: UInt64, name: String, reply: consuming StatusReply) {
        guard case .drive(let id)? = inodes.key(parent) else { return reply.fail(EPERM) }
        if name == "media" {
            do throws(VMError) {
                try host.eject(driveID: id, by: credentials(ctx))
                return reply.ok()
            } catch { return reply.fail(error.errno) }
        }
        let key = NodeKey.temporary(id, name)
        guard temporaries.withLock({ $0.removeValue(forKey: key) }) != nil else {
            return reply.fail(Names.reserved.contains(name) ? EPERM : ENOENT)
        }
        inodes.purge(drive: id) { $0 == key }
        reply.ok()
    }

    /// Only an editor's save is a rename here: a temporary file renamed onto `media` inserts
    /// what it holds.
    public func rename(_ ctx: RequestContext, parent: UInt64, name: String, newParent: UInt64, newName: String,
                       flags: UInt32, reply: consuming StatusReply) {
        guard case .drive(let id)? = inodes.key(parent), parent == newParent else { return reply.fail(EPERM) }
        let key = NodeKey.temporary(id, name)
        guard let file = temporaries.withLock({ $0[key] }) else { return reply.fail(Names.reserved.contains(name) ? EPERM : ENOENT) }
        if newName == "media" {
            var request = file.lock.withLock { $0.data }
            if request.last == 0x0A { request.removeLast() }
            do throws(VMError) {
                if request.isEmpty {
                    if host.drive(id: id)?.loaded != nil { try host.eject(driveID: id, by: credentials(ctx)) }
                } else {
                    _ = try host.insert(driveID: id, request: request, by: credentials(ctx))
                }
            } catch { return reply.fail(error.errno) }
            _ = temporaries.withLock { $0.removeValue(forKey: key) }
            inodes.purge(drive: id) { $0 == key }
            return reply.ok()
        }
        guard !Names.reserved.contains(newName) else { return reply.fail(EPERM) }
        temporaries.withLock { t in
            t[key] = nil
            t[.temporary(id, newName)] = file
        }
        inodes.purge(drive: id) { $0 == key }
        reply.ok()
    }

    public func readlink(_ ctx: RequestContext, ino: UInt64, reply: consuming LinkReply) {
        guard case .contents(let d, let gen, let node)? = inodes.key(ino) else { return reply.fail(EINVAL) }
        do throws(FSError) { reply.target(try contents.linkTarget(drive: d, generation: gen, node: node)) } catch { reply.fail(error.errno) }
    }

    public func poll(_ ctx: RequestContext, ino: UInt64, handle: UInt64, wake: PollHandle?, reply: consuming PollReply) {
        guard let e = OpenHandle.from(handle) as? EventsHandle else { return reply.events(UInt32(POLLIN | POLLRDNORM)) }
        reply.events(e.poll(wake))
    }

    public func interrupted(requestID: UInt64) {
        // Only event reads wait; the id is the handle's number.
        (OpenHandle.from(requestID) as? EventsHandle)?.interrupt()
    }
}
