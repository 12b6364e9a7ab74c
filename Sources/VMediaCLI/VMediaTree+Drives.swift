/// One row of `lsvopt`: a drive and its parsed `status`.
public struct DriveInfo: Sendable, Equatable {
    public var ref: DriveRef
    public var status: DriveStatus
}

extension VMediaTree {
    /// `mkvopt GUEST [NAME]`: `mkdir guests/GUEST/NAME`.
    ///
    /// Without a name, takes the lowest `vtoptN` not used on the whole host. Another
    /// administrator may take the same name between the look and the `mkdir`, and drives in
    /// guests the caller cannot list are invisible; `EEXIST` then means "taken": the next
    /// number is tried.
    /// - Returns: the name of the new drive.
    @discardableResult
    public func makeDrive(guest: String, name: String? = nil) throws(VMediaError) -> String {
        try Names.check(guest, as: "guest")
        if let name {
            try Names.check(name, as: "drive")
            try makeDriveDirectory(DriveRef(guest: guest, drive: name))
            return name
        }
        var taken = Set<String>()
        for _ in 0..<1000 {
            taken.formUnion(allDriveNames())
            let candidate = Names.lowestFreeDriveName(taken: taken)
            do {
                try makeDriveDirectory(DriveRef(guest: guest, drive: candidate))
                return candidate
            } catch where error.errno == .exists {
                taken.insert(candidate)
            }
        }
        throw VMediaError(guest, "no free vtoptN drive name found", exit: .refused, errno: .exists)
    }

    private func makeDriveDirectory(_ ref: DriveRef) throws(VMediaError) {
        do { try io.makeDirectory(drivePath(ref), mode: 0o777) } catch {
            let noGuest = error == .noSuchFile
            throw VMediaError.from(error, subject: noGuest ? ref.guest : ref.description,
                                   reason: noGuest ? "no such guest" : nil, operation: .makeDrive)
        }
    }

    /// Every drive name the caller can see, over all guests.
    func allDriveNames() -> Set<String> {
        var names = Set<String>()
        for guest in (try? guestNames()) ?? [] {
            names.formUnion((try? driveNames(of: guest)) ?? [])
        }
        return names
    }

    /// `rmvopt DRIVE`: `rmdir guests/GUEST/DRIVE`; the filesystem refuses with `EBUSY` while
    /// media is loaded.
    public func removeDrive(_ spec: String) throws(VMediaError) {
        let ref = try findDrive(spec)
        do { try io.removeDirectory(drivePath(ref)) } catch {
            throw VMediaError.from(error, subject: ref.description, operation: .removeDrive)
        }
    }

    /// `lsvopt [GUEST]`: every drive (of one guest, or of all) with its `status`.
    public func listDrives(guest: String? = nil) throws(VMediaError) -> [DriveInfo] {
        let guests: [String]
        if let guest {
            try Names.check(guest, as: "guest")
            guests = [guest]
        } else {
            guests = try guestNames()
        }
        var result: [DriveInfo] = []
        for g in guests {
            let drives: [String]
            do { drives = try driveNames(of: g) } catch {
                if guest == nil { continue }  // gone meanwhile, or not ours to list
                throw VMediaError.from(error, subject: g, reason: error == .noSuchFile ? "no such guest" : nil,
                                       operation: .read)
            }
            for d in drives {
                let ref = DriveRef(guest: g, drive: d)
                do {
                    result.append(DriveInfo(ref: ref, status: DriveStatus(parsing: try io.read(statusPath(ref)))))
                } catch where error == .noSuchFile {
                    continue  // removed between the listing and the read
                } catch {
                    throw VMediaError.from(error, subject: ref.description, operation: .read)
                }
            }
        }
        return result
    }
}
