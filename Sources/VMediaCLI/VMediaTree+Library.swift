/// One row of `lsrep`: an image of the virtual media repository.
public struct LibraryEntry: Sendable, Equatable {
    public var name: String
    /// The image file's path, or its URL.
    public var path: String
    /// `file` or `url` (`library/NAME/kind`; `file` where a tree has no such file).
    public var kind: String = "file"
    /// Bytes; nil if `size` could not be read as a number.
    public var size: Int64?
    public var sharable: Bool
    /// The drives that have it loaded, as `GUEST/DRIVE`.
    public var users: [String]
}

extension VMediaTree {
    /// `lsrep [MEDIA]`: the repository (`library/`), or the entries matching MEDIA (a NAME
    /// or an image path).
    public func listLibrary(matching media: String? = nil) throws(VMediaError) -> [LibraryEntry] {
        let names: [String]
        do { names = try io.list(libraryPath).sorted(by: Names.naturalOrder) } catch {
            throw VMediaError.from(error, subject: libraryPath, operation: .read)
        }
        var result: [LibraryEntry] = []
        for name in names {
            let dir = libraryEntryPath(name)
            guard let path = try? readFact(Paths.join(dir, "path")) else { continue }  // gone meanwhile
            let size = (try? readFact(Paths.join(dir, "size"))).flatMap { Int64($0) }
            let sharable = (try? readFact(Paths.join(dir, "sharable"))) == "yes"
            let users = ((try? readFact(Paths.join(dir, "users"))) ?? "")
                .split(separator: "\n").map(String.init).filter { !$0.isEmpty }
            let kind = (try? readFact(Paths.join(dir, "kind"))) ?? "file"
            result.append(LibraryEntry(name: name, path: path, kind: kind, size: size, sharable: sharable, users: users))
        }
        guard let media else { return result }
        let wanted = media.contains("/") ? mediaArgument(media) : media
        let matching = result.filter { $0.name == wanted || $0.path == wanted }
        if matching.isEmpty {
            throw VMediaError(media, "no such media in the library", exit: .notFound, errno: .noSuchFile)
        }
        return matching
    }

    /// `share MEDIA yes|no`: writes `yes` or `no` into `library/NAME/sharable`. Only the
    /// owner of the image file may (the filesystem answers `EACCES`/`EPERM` otherwise).
    public func share(_ media: String, _ sharable: Bool) throws(VMediaError) {
        let name = try libraryName(for: media)
        let path = Paths.join(libraryEntryPath(name), "sharable")
        do { try io.writeControl(path, sharable ? "yes\n" : "no\n", create: false) } catch {
            throw VMediaError.from(error.errno, subject: name,
                                   reason: error.errno == .noSuchFile ? "no such media in the library" : nil,
                                   operation: .share)
        }
    }

    /// The library NAME for a NAME or an image path.
    func libraryName(for media: String) throws(VMediaError) -> String {
        // listLibrary(matching:) throws when nothing matches.
        if media.contains("/") { return try listLibrary(matching: media)[0].name }
        try Names.check(media, as: "media")
        return media
    }
}
