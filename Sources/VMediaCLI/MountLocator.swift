/// Finds the vmediafs mount to work on.
///
/// In order: `--mount DIR`, then `$VMEDIAFS_MOUNT`, then the single `fuse.vmediafs` entry of
/// `/proc/self/mountinfo`. None or several there is an error naming the option to use.
public enum MountLocator {
    /// The filesystem type the kernel shows for the daemon's mounts (`fuse.` + subtype).
    public static let filesystemType = "fuse.vmediafs"
    public static let environmentVariable = "VMEDIAFS_MOUNT"

    /// - Parameters:
    ///   - option: the `--mount` argument, if given.
    ///   - environment: the process environment (for `VMEDIAFS_MOUNT`).
    ///   - mountinfo: the text of `/proc/self/mountinfo`; read when nil.
    ///   - io: the file operations used to check the chosen directory.
    /// - Returns: the mount point, checked to look like a vmediafs tree (it has `guests/`).
    public static func locate(option: String?, environment: [String: String],
                              mountinfo: String? = nil, io: any TreeIO = POSIXTreeIO()) throws(VMediaError) -> String {
        let chosen: String
        if let option, !option.isEmpty {
            chosen = option
        } else if let fromEnvironment = environment[environmentVariable], !fromEnvironment.isEmpty {
            chosen = fromEnvironment
        } else {
            let text: String
            if let mountinfo {
                text = mountinfo
            } else {
                do { text = try io.read("/proc/self/mountinfo") } catch {
                    throw VMediaError("/proc/self/mountinfo", "\(error); name the mount with --mount DIR or \(environmentVariable)", exit: .notFound, errno: error)
                }
            }
            let found = mountPoints(in: text)
            guard found.count == 1 else {
                let reason = found.isEmpty
                    ? "no \(filesystemType) mount found in /proc/self/mountinfo; name one with --mount DIR or \(environmentVariable)=DIR"
                    : "several \(filesystemType) mounts (\(found.joined(separator: ", "))); choose one with --mount DIR or \(environmentVariable)=DIR"
                throw VMediaError("", reason, exit: .notFound)
            }
            chosen = found[0]
        }
        let root = Paths.normalized(chosen)
        do throws(Errno) {
            guard try io.info(Paths.join(root, "guests")).isDirectory else { throw Errno.notDirectory }
        } catch {
            throw VMediaError(root, "not a vmediafs mount (no guests/ directory): \(error)", exit: .notFound, errno: error)
        }
        return root
    }

    /// The mount points of every `fuse.vmediafs` line of a mountinfo text, in file order.
    ///
    /// A line is `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPER`;
    /// the mount point escapes space, tab, newline and backslash as `\040` `\011` `\012` `\134`.
    public static func mountPoints(in mountinfo: String) -> [String] {
        var result: [String] = []
        for line in mountinfo.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 7, let dash = fields.firstIndex(of: "-"), dash >= 6,
                  dash + 1 < fields.count, fields[dash + 1] == filesystemType else { continue }
            result.append(unescape(String(fields[4])))
        }
        return result
    }

    /// Undoes the kernel's octal escapes (`\040` → space).
    static func unescape(_ field: String) -> String {
        var bytes: [UInt8] = []
        let input = Array(field.utf8)
        var i = 0
        while i < input.count {
            if input[i] == UInt8(ascii: "\\"), i + 3 < input.count,
               let value = UInt8(String(decoding: input[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                bytes.append(value)
                i += 4
            } else {
                bytes.append(input[i])
                i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Path helpers; `vmedia` builds every path from the mount point and checked names.
public enum Paths {
    public static func join(_ parts: String...) -> String { join(parts) }

    public static func join(_ parts: [String]) -> String {
        var result = ""
        for part in parts where !part.isEmpty {
            if result.isEmpty || result.hasSuffix("/") {
                result += part
            } else {
                result += "/" + (part.hasPrefix("/") ? String(part.dropFirst()) : part)
            }
        }
        return result
    }

    /// Drops trailing slashes (but keeps `/`).
    public static func normalized(_ path: String) -> String {
        var p = path
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        return p
    }

    /// An absolute path for `path` as the caller means it: relative paths are taken from the
    /// caller's working directory, because the daemon's own is not the caller's.
    /// `.` components are dropped; `..` is left for the filesystem to resolve, since a
    /// symlink before it changes what it means.
    public static func absolute(_ path: String, from cwd: String) -> String {
        let full = path.hasPrefix("/") ? path : join(cwd, path)
        let parts = full.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        return "/" + parts.joined(separator: "/")
    }
}
