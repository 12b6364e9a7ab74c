/// The client process of `CrashTests`: a python3 script that changes its own guests and
/// drives through the mount as fast as it can and logs, fsynced line by line, what it was
/// told. Each client owns guests `c<ID>g0`, `c<ID>g1`, drives `c<ID>g<J>d<K>` and its own
/// images, so its log alone decides what its part of the tree must be.
///
/// Log lines (`SEQ` counts up from 1 per client):
/// - `SEQ BEGIN KIND TARGET ARG EXPECT`: about to make the syscall(s). KIND is mkguest,
///   rmguest, mkdrive, rmdrive, insert or eject; TARGET is `GUEST` or `GUEST/DRIVE`; ARG the
///   image path or `-`; EXPECT is `0` (the client's model says it must succeed) or the errno
///   the model says it must be refused with.
/// - `SEQ OK`: every syscall returned 0 (for an insert: open, write and close).
/// - `SEQ REFUSED ERRNO`: the live daemon refused it.
/// - `SEQ UNKNOWN ERRNO`: the daemon died under it (ENOTCONN/ECONNABORTED, ECANCELED for a
///   request the kernel had queued on an io_uring entry, or any error
///   while the mount is gone). The client then waits for the mount, reads its part of the
///   tree back into its model (a `SYNC` line) and goes on.
/// A BEGIN without an outcome line is in flight: it may or may not have happened.
///
/// MODE `mixed` does all of the above at random; `swap` inserts and ejects back to back on
/// one drive. The client stops when the stop file exists.
let crashClientScript = #"""
import errno, os, random, sys, time

mnt, logpath, cid, seed, images, bad, stopfile, mode = sys.argv[1:9]
cid, seed, images = int(cid), int(seed), images.split(",")
rng = random.Random(seed)
G = mnt + "/guests"
guests = ["c%dg%d" % (cid, j) for j in range(2)]
drives_of = {g: ["%sd%d" % (g, k) for k in range(2)] for g in guests}
present = set()      # my guests that exist
loaded = {}          # my drives that exist -> image path or None
seq = 0
log = os.open(logpath, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

def L(line):
    os.write(log, (line + "\n").encode())
    os.fsync(log)

def mount_up():
    try:
        os.stat(G)
        return True
    except OSError:
        return False

def resync():
    """Waits for the mount, then reads my guests and drives back."""
    while not os.path.exists(stopfile):
        if not mount_up():
            time.sleep(0.01)
            continue
        try:
            p, l = set(), {}
            names = set(os.listdir(G))
            for g in guests:
                if g not in names:
                    continue
                p.add(g)
                ds = set(os.listdir(G + "/" + g))
                for d in drives_of[g]:
                    if d not in ds:
                        continue
                    files = os.listdir("%s/%s/%s" % (G, g, d))
                    if "media" in files:
                        with open("%s/%s/%s/media" % (G, g, d)) as f:
                            l[d] = f.read().strip()
                    else:
                        l[d] = None
        except OSError:
            time.sleep(0.01)
            continue
        present.clear(); present.update(p)
        loaded.clear(); loaded.update(l)
        L("SYNC guests=%s drives=%s" % (",".join(sorted(p)) or "-",
          ",".join("%s:%s" % (d, os.path.basename(m) if m else "-") for d, m in sorted(l.items())) or "-"))
        return

def choose():
    if mode == "swap":
        # Insert and eject back to back on one drive: each change's follow-up work in the
        # daemon overlaps the next request on the same directory.
        g = guests[0]; d = drives_of[g][0]; t = g + "/" + d
        if g not in present: return ("mkguest", g, "-", 0)
        if d not in loaded: return ("mkdrive", t, "-", 0)
        if loaded[d] is not None: return ("eject", t, "-", 0)
        return ("insert", t, rng.choice(images), 0)
    g = rng.choice(guests)
    if g not in present:
        return ("mkguest", g, "-", 0)
    mine = [d for d in drives_of[g] if d in loaded]
    r = rng.random()
    if r < 0.03:
        return ("mkguest", g, "-", errno.EEXIST)
    if r < 0.12:
        return ("rmguest", g, "-", errno.ENOTEMPTY if mine else 0)
    d = rng.choice(drives_of[g])
    t = g + "/" + d
    if d not in loaded:
        return ("mkdrive", t, "-", 0)
    r = rng.random()
    if r < 0.03:
        return ("mkdrive", t, "-", errno.EEXIST)
    if r < 0.08:
        return ("insert", t, bad, errno.EPERM)
    if loaded[d] is not None and r < 0.35:
        return ("eject", t, "-", 0)
    if r < 0.50:
        return ("rmdrive", t, "-", errno.EBUSY if loaded[d] is not None else 0)
    img = rng.choice(images)
    busy = any(m == img for o, m in loaded.items() if o != d)
    return ("insert", t, img, errno.EBUSY if busy else 0)

def perform(kind, target, arg):
    p = G + "/" + target
    if kind == "mkguest" or kind == "mkdrive":
        os.mkdir(p, 0o755)
    elif kind == "rmguest" or kind == "rmdrive":
        os.rmdir(p)
    elif kind == "eject":
        os.unlink(p + "/media")
    elif kind == "insert":
        fd = os.open(p + "/media", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        err = 0
        try:
            os.write(fd, (arg + "\n").encode())
        except OSError as e:
            err = e.errno
        try:
            os.close(fd)
        except OSError as e:
            err = err or e.errno
        if err:
            raise OSError(err, os.strerror(err))

def apply(kind, target, arg):
    d = target.split("/")[-1]
    if kind == "mkguest": present.add(target)
    elif kind == "rmguest": present.discard(target)
    elif kind == "mkdrive": loaded[d] = None
    elif kind == "rmdrive": loaded.pop(d, None)
    elif kind == "insert": loaded[d] = arg
    elif kind == "eject": loaded[d] = None

resync()
while not os.path.exists(stopfile):
    kind, target, arg, expect = choose()
    seq += 1
    L("%d BEGIN %s %s %s %d" % (seq, kind, target, arg, expect))
    try:
        perform(kind, target, arg)
        result = 0
    except OSError as e:
        result = e.errno or errno.EIO
    if result == 0:
        L("%d OK" % seq)
        apply(kind, target, arg)
    elif result in (errno.ENOTCONN, errno.ECONNABORTED, errno.ECANCELED) or not mount_up():
        L("%d UNKNOWN %d" % (seq, result))
        resync()
    else:
        L("%d REFUSED %d" % (seq, result))
        if result != expect:
            # The model and the daemon disagree: read the truth back (the test reports it).
            resync()
"""#

/// A client for `CrashTests.testSIGKILLAlwaysEndsTheDaemon`: inserts and ejects on its own
/// drive back to back, ignoring every error, until killed.
let stormClientScript = #"""
import os, random, sys, time
mnt, guest, images = sys.argv[1], sys.argv[2], sys.argv[3:]
media = "%s/guests/%s/d%s/media" % (mnt, guest, guest)
while True:
    try:
        os.makedirs(os.path.dirname(media), exist_ok=True)
        with open(media, "w") as f:
            f.write(random.choice(images) + "\n")
        os.unlink(media)
        print(".", end="", flush=True)   # one insert+eject done (the test counts them)
    except OSError:
        time.sleep(0.002)
"""#
