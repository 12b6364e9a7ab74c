import Glibc
import VMediaFS
import VirtualMedia

// vmediafs [SOURCE] MOUNTPOINT [options]: the filesystem daemon.
do throws(VMError) {
    let options = try DaemonOptions.parse(Array(CommandLine.arguments.dropFirst()))
    exit(runDaemon(options))
} catch {
    if error.errno == 0 {
        print(error.reason)
        exit(0)
    }
    Log.error(error.reason)
    print(DaemonOptions.usage)
    exit(2)
}
