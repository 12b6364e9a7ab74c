// The `vmedia` command line: argument parsing only. Every operation is in VMediaCLI and
// works through the files of the mounted tree (SPEC 2), never a side channel.
import ArgumentParser
import Glibc
import VMediaCLI

/// Options every subcommand takes.
struct MountOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The vmediafs mount point (default: $VMEDIAFS_MOUNT, else the only fuse.vmediafs mount).",
        valueName: "dir"), completion: .directory)
    var mount: String?

    func tree() throws -> VMediaTree {
        var environment: [String: String] = [:]
        if let value = getenv(MountLocator.environmentVariable) {
            environment[MountLocator.environmentVariable] = String(cString: value)
        }
        return VMediaTree(root: try MountLocator.locate(option: mount, environment: environment))
    }
}

/// Writes to standard output (or `fd`) at once, all of it (no buffering: `events` lines
/// reach a pipe as they come).
func emit(_ text: String, fd: Int32 = 1) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n < 0 { if errno == EINTR { continue }; return }
        bytes = bytes.dropFirst(n)
    }
}

struct VMedia: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vmedia",
        abstract: "Manage the virtual CD/DVD drives of guests through a vmediafs mount.",
        discussion: """
            Every subcommand is a plain file operation on the mounted tree; see vmedia(8).
            Exit status: 0 done; 1 bad usage or not found; 2 refused; 3 eject pending.
            """,
        subcommands: [MkGuest.self, RmGuest.self, LsGuest.self, MkVopt.self, RmVopt.self, LsVopt.self,
                      LoadOpt.self, UnloadOpt.self, LsRep.self, Share.self, Events.self, Status.self])
}

struct MkGuest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mkguest", abstract: "Create a guest (mkdir guests/GUEST).")
    @OptionGroup var options: MountOptions
    @Argument(help: "The guest's name.") var guest: String
    func run() throws { try options.tree().makeGuest(guest) }
}

struct RmGuest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rmguest", abstract: "Remove a guest that has no drives (rmdir guests/GUEST).")
    @OptionGroup var options: MountOptions
    @Argument(help: "The guest's name.") var guest: String
    func run() throws { try options.tree().removeGuest(guest) }
}

struct LsGuest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lsguest", abstract: "List guests: name, owner, number of drives.")
    @OptionGroup var options: MountOptions
    @Flag(help: "Print JSON.") var json = false
    func run() throws { emit(Report.guests(try options.tree().listGuests(), json: json)) }
}

struct MkVopt: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mkvopt",
        abstract: "Create a virtual optical drive for a guest (mkdir guests/GUEST/NAME); prints its name.")
    @OptionGroup var options: MountOptions
    @Argument(help: "The guest.") var guest: String
    @Argument(help: "The drive's name, unique on the host (default: the lowest free vtoptN).") var name: String?
    func run() throws { emit(try options.tree().makeDrive(guest: guest, name: name) + "\n") }
}

struct RmVopt: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rmvopt", abstract: "Remove an empty drive (rmdir guests/GUEST/DRIVE).")
    @OptionGroup var options: MountOptions
    @Argument(help: "DRIVE or GUEST/DRIVE.") var drive: String
    func run() throws { try options.tree().removeDrive(drive) }
}

struct LsVopt: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lsvopt", abstract: "List drives with their media, size and state.")
    @OptionGroup var options: MountOptions
    @Argument(help: "Only this guest's drives.") var guest: String?
    @Flag(help: "Print JSON (the status keys of each drive).") var json = false
    func run() throws { emit(Report.drives(try options.tree().listDrives(guest: guest), json: json)) }
}

struct LoadOpt: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadopt", abstract: "Load media into a drive (echo PATH > media).")
    @OptionGroup var options: MountOptions
    @Argument(help: "DRIVE or GUEST/DRIVE.") var drive: String
    @Argument(help: "A library NAME or an image path.", completion: .file()) var media: String
    @Flag(name: [.short, .long], help: "Replace media already loaded.") var force = false
    func run() throws { try options.tree().load(drive: drive, media: media, force: force) }
}

struct UnloadOpt: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unloadopt", abstract: "Eject the media from a drive (rm media).")
    @OptionGroup var options: MountOptions
    @Argument(help: "DRIVE or GUEST/DRIVE.") var drive: String
    @Flag(help: "If the guest has locked the drive, wait until it allows the eject.") var wait = false
    @Option(help: ArgumentHelp("With --wait: give up after this many seconds (default: no limit).",
                               valueName: "seconds")) var timeout: Double?

    func validate() throws {
        if timeout != nil && !wait { throw ValidationError("--timeout needs --wait") }
        if let timeout, timeout < 0 { throw ValidationError("--timeout must not be negative") }
    }

    func run() throws {
        try options.tree().unload(drive: drive, wait: wait ? .until(timeout: timeout) : .no)
    }
}

struct LsRep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lsrep", abstract: "List the media repository: size, sharable, which drives use each image.")
    @OptionGroup var options: MountOptions
    @Argument(help: "Only this library NAME or image path.") var media: String?
    @Flag(help: "Print JSON.") var json = false
    func run() throws { emit(Report.library(try options.tree().listLibrary(matching: media), json: json)) }
}

struct Share: ParsableCommand {
    enum Answer: String, ExpressibleByArgument, CaseIterable { case yes, no }
    static let configuration = CommandConfiguration(
        commandName: "share", abstract: "Let an image be loaded in several drives at once, or not.")
    @OptionGroup var options: MountOptions
    @Argument(help: "A library NAME or image path.") var media: String
    @Argument(help: "yes or no.") var sharable: Answer
    func run() throws { try options.tree().share(media, sharable == .yes) }
}

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "Print events as they happen, until interrupted.")
    @OptionGroup var options: MountOptions
    @Option(help: "Stop after this many events.") var count: Int?
    @Flag(help: "Print one JSON object per line.") var json = false
    func validate() throws {
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
    }
    func run() throws {
        try options.tree().followEvents(count: count) { line in
            emit(Report.event(line, json: json))
            return true
        }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Print a drive's status file.")
    @OptionGroup var options: MountOptions
    @Argument(help: "DRIVE or GUEST/DRIVE.") var drive: String
    @Flag(help: "Print a JSON object.") var json = false
    func run() throws { emit(Report.status(try options.tree().status(drive: drive).text, json: json)) }
}

// Our own main: `vmedia: subject: reason` and the documented exit statuses (usage errors
// exit 1, not ArgumentParser's 64).
do {
    var command = try VMedia.parseAsRoot(GlobalOptions.reorder(Array(CommandLine.arguments.dropFirst())))
    try command.run()
} catch let failure as VMediaError {
    emit(failure.description + "\n", fd: 2)
    exit(failure.exit.rawValue)
} catch {
    if VMedia.exitCode(for: error) == .validationFailure {
        emit(VMedia.fullMessage(for: error) + "\n", fd: 2)
        exit(ExitStatus.notFound.rawValue)
    }
    VMedia.exit(withError: error)
}
