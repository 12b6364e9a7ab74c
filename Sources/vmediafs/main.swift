import Glibc
import VMediaFS
import VirtualMedia

// vmediafs [SOURCE] MOUNTPOINT [options]: the filesystem daemon.
do throws(VMError) {
    let options = try DaemonOptions.parse(Array(CommandLine.arguments.dropFirst()))
    exit(runDaemon(options))
} catch {
    if error.errno == 0 {   // --help
        print(error.reason)
        exit(0)
    }
    Log.error(error.reason)
    let usage = DaemonOptions.usage + "\n"
    _ = usage.withCString { write(2, $0, strlen($0)) }
    exit(2)
}
