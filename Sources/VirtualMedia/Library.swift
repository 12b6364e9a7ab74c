import Glibc

/// One image in the virtual media repository (`library/NAME/`): a file in a media folder,
/// or a URL that a drive holds or that was made sharable.
public struct LibraryItem: Sendable, Equatable {
    public var name: String
    /// The file's path, or the URL.
    public var path: String
    /// `.file` or `.url`.
    public var kind: MediaKind = .file
    public var size: UInt64
    public var uid: UInt32
    public var gid: UInt32
    public var modificationTime: Nanos
}

extension Host {
    /// The images directly in the media folders: regular, non-empty files whose names do not
    /// start with "."; a name found in two folders is taken from the first. Then the URLs
    /// some drive holds or that were made sharable (`urlItems`).
    public func library() -> [LibraryItem] {
        var seen = Set<String>()
        var items: [LibraryItem] = []
        for root in policy.mediaRoots {
            guard let dir = opendir(root) else { continue }
            defer { closedir(dir) }
            while let ent = readdir(dir) {
                let name = withUnsafeBytes(of: ent.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                guard !name.hasPrefix("."), !seen.contains(name), let item = libraryEntry(root: root, name: name) else { continue }
                seen.insert(name)
                items.append(item)
            }
        }
        return (items + urlItems(besides: seen)).sorted { $0.name < $1.name }
    }

    /// URL images as library entries. A URL's NAME is its last path segment (its host if it
    /// has none); when that is taken by a file or another URL, `~` and 8 hex digits of the
    /// URL's hash follow, so a name never changes with what else is listed. The owner is the
    /// user who loaded it into the lowest-numbered drive holding it, else root.
    private func urlItems(besides fileNames: Set<String>) -> [LibraryItem] {
        let urls: [String: (size: UInt64, uid: UInt32, time: Nanos)] = state.withLock { st in
            var out: [String: (UInt64, UInt32, Nanos)] = [:]
            for d in st.drives.values.sorted(by: { $0.id > $1.id }) {
                guard let m = d.loaded, m.kind == .url else { continue }
                out[m.path] = (m.identity.size, m.loadedBy, m.loadedAt)
            }
            for (path, _) in st.sharable where MediaConfiguration.isURL(path) && out[path] == nil { out[path] = (0, 0, 0) }
            return out
        }
        var byName: [String: [String]] = [:]
        for url in urls.keys { byName[Self.urlName(url), default: []].append(url) }
        return urls.map { url, facts in
            var name = Self.urlName(url)
            if fileNames.contains(name) || byName[name]!.count > 1 {
                let hash = ImageIdentity(url: url, size: 0, validator: "").inode
                name += "~" + String(String(hash, radix: 16).suffix(8))
            }
            return LibraryItem(name: name, path: url, kind: .url, size: facts.size, uid: facts.uid, gid: 0, modificationTime: facts.time)
        }
    }

    /// The last path segment of a URL, else its host; never empty, `.`-led or holding `/`.
    static func urlName(_ url: String) -> String {
        let noQuery = url.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let afterScheme = noQuery.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        let host = afterScheme.count > 2 ? String(afterScheme[2].split(separator: "/").first ?? "url") : "url"
        let last = noQuery.split(separator: "/").last.map(String.init) ?? host
        let name = noQuery.split(separator: "/").count > 2 ? last : host
        return name.hasPrefix(".") ? "_" + name : name
    }

    /// What changes whenever `library()` would answer differently: the newest mtime (whole
    /// seconds) of the media folders, and a fingerprint of the names the listing holds
    /// (a listing can change without a folder's mtime moving: an empty file grows).
    public func libraryVersion() -> (newestFolderSeconds: Int64, fingerprint: UInt64) {
        var newest: Int64 = 0
        for root in policy.mediaRoots {
            var st = stat()
            if stat(root, &st) == 0 { newest = max(newest, Int64(st.st_mtim.tv_sec)) }
        }
        var hash = FNV1a()   // over the names, '/' between them
        for item in library() {
            hash.add(item.name.utf8)
            hash.add(CollectionOfOne(UInt8(ascii: "/")))
        }
        return (newest, hash.value)
    }

    /// The repository image called `name`, if there is one.
    public func libraryItem(named name: String) -> LibraryItem? {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != "..", !name.hasPrefix(".") else { return nil }
        for root in policy.mediaRoots {
            if let item = libraryEntry(root: root, name: name) { return item }
        }
        return library().first { $0.kind == .url && $0.name == name }
    }

    private func libraryEntry(root: String, name: String) -> LibraryItem? {
        let path = root + name
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size > 0 else { return nil }
        return LibraryItem(name: name, path: path, size: UInt64(st.st_size), uid: st.st_uid, gid: st.st_gid,
                           modificationTime: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
    }

    /// `GUEST/DRIVE` of every drive that has `path` loaded.
    public func users(of path: String) -> [String] {
        state.withLock { st in
            st.drives.values.filter { $0.loaded?.path == path }.map { st.label($0) }.sorted()
        }
    }

    public func isSharable(_ path: String) -> Bool { state.withLock { $0.sharable[path] ?? false } }

    /// Sets whether an image may be loaded in several drives at once. Only the image file's
    /// owner (or root) may. Turning sharing off leaves current users loaded.
    public func setSharable(name: String, _ value: Bool, by user: Credentials) throws(VMError) {
        guard let item = libraryItem(named: name) else { throw VMError(ENOENT, "no library image named \(name)") }
        guard user.uid == 0 || user.uid == item.uid else { throw VMError(EACCES, "only the owner of \(item.path) may change sharing") }
        try state.withLock { (st: inout HostState) throws(VMError) in
            try store.setSharable(path: item.path, value,
                                  history: HistoryEvent(time: nowNanos(), kind: "share", guest: "", drive: "", uid: user.uid,
                                                        detail: "\(item.path) sharable=\(value ? "yes" : "no")"))
            st.sharable[item.path] = value
        }
        events.post("share", "", [("media", item.path), ("sharable", value ? "yes" : "no"), ("uid", String(user.uid))])
        Log.info("\(item.path) sharable=\(value ? "yes" : "no") by uid \(user.uid)")
    }
}
