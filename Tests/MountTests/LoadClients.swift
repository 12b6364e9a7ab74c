/// The client processes of `LoadTests`, as python3 scripts.
///
/// Every image of the load test is a raw file whose 2048-byte block B of image I holds
/// `stampedBlock(I, B)`: the line "VMFS image=IIII block=BBBBBBBB\n" repeated, cut to 2048
/// bytes (a short last block: the file ends early and the disc reads zeros after it). So
/// each block read says which image and which block it came from.

/// The stamp line of block `block` of image `image`.
func blockStamp(image: Int, block: Int) -> String {
    "VMFS image=\(String(format: "%04d", image)) block=\(String(format: "%08d", block))\n"
}

/// A reader: opens a random drive's `disc`, notes the media generation it opened (the
/// drive's `status` read before and after the open agree) and reads random runs of blocks,
/// checking every byte; on ESTALE, ENOMEDIUM or EIO it closes and opens again. Prints one
/// JSON line of counts and up to 20 violations.
let loadReaderScript = #"""
import errno, json, os, random, sys, time

mnt, drives, sizes, seed, seconds = sys.argv[1], sys.argv[2].split(","), json.loads(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
sizes = {int(k): v for k, v in sizes.items()}
rng = random.Random(seed)
c = {"opens": 0, "reads": 0, "bytes": 0, "blocks": 0, "stale": 0, "nomedium": 0, "eio": 0,
     "open_refused": 0, "eof": 0, "short": 0, "generation_known": 0, "max_fds_held": 0}
bad = []
cache = {}

def expected(image, block):
    key = (image, block)
    if key not in cache:
        line = ("VMFS image=%04d block=%08d\n" % (image, block)).encode()
        b = (line * (2048 // len(line) + 1))[:2048]
        end = sizes[image] - block * 2048
        if end < 2048:
            b = b[:end] + bytes(2048 - end)
        if len(cache) > 4096:
            cache.clear()
        cache[key] = b
    return cache[key]

def status(drive):
    try:
        with open("%s/guests/load/%s/status" % (mnt, drive)) as f:
            return dict(l.split("=", 1) for l in f.read().splitlines() if "=" in l)
    except OSError:
        return {}

def image_of(path):
    return int(os.path.basename(path)[3:5]) if path else None

held = []          # fds kept open across media changes, read again later
deadline = time.time() + seconds
while time.time() < deadline and len(bad) < 20:
    drive = rng.choice(drives)
    s1 = status(drive)
    try:
        fd = os.open("%s/guests/load/%s/disc" % (mnt, drive), os.O_RDONLY)
    except OSError as e:
        if e.errno in (errno.ENOMEDIUM, errno.ESTALE, errno.EIO):
            c["open_refused"] += 1
            continue
        bad.append("open %s: %s" % (drive, os.strerror(e.errno)))
        continue
    s2 = status(drive)
    c["opens"] += 1
    image = None
    if s1.get("generation") == s2.get("generation") and s1.get("state") == "loaded":
        image = image_of(s1.get("media"))
        c["generation_known"] += 1
    if rng.random() < 0.2:
        held.append((fd, drive, image, None))
        c["max_fds_held"] = max(c["max_fds_held"], len(held))
        if len(held) < 8:
            continue
        fd, drive, image, _ = held.pop(rng.randrange(len(held)))
    seen = image
    for _ in range(rng.randint(4, 40)):
        limit = sizes[seen] if seen is not None else min(sizes.values())
        blocks = (limit + 2047) // 2048
        b = rng.randrange(blocks)
        n = min(rng.randint(1, 8), blocks - b)
        try:
            data = os.pread(fd, n * 2048, b * 2048)
        except OSError as e:
            if e.errno == errno.ESTALE: c["stale"] += 1
            elif e.errno == errno.ENOMEDIUM: c["nomedium"] += 1
            elif e.errno == errno.EIO: c["eio"] += 1
            else: bad.append("read %s: %s" % (drive, os.strerror(e.errno)))
            break
        c["reads"] += 1
        if len(data) == 0:
            c["eof"] += 1
            break
        if len(data) % 2048 != 0 or len(data) > n * 2048:
            bad.append("%s: read %d bytes for %d at block %d" % (drive, len(data), n * 2048, b))
            break
        if len(data) < n * 2048:
            c["short"] += 1      # cached pages of this generation, then the change: the next read says why
        for i in range(len(data) // 2048):
            blk = data[i * 2048:(i + 1) * 2048]
            try:
                img = int(blk[11:15]); got = int(blk[22:30])
            except ValueError:
                bad.append("%s: block %d unreadable stamp %r" % (drive, b + i, blk[:32])); break
            if seen is None:
                seen = img
            if img != seen or got != b + i or blk != expected(img, b + i):
                bad.append("%s: fd on image %s read block %d of image %d (wanted block %d)%s" %
                           (drive, seen, got, img, b + i, "" if blk == expected(img, got) else ", bytes differ"))
                break
            c["blocks"] += 1
            c["bytes"] += 2048
    os.close(fd)
for fd, *_ in held:
    os.close(fd)
print(json.dumps({"counts": c, "violations": bad}))
"""#

/// A changer: inserts, swaps and ejects on its own drives as fast as it can. Prints one
/// JSON line of counts by outcome.
let loadChangerScript = #"""
import errno, json, os, random, sys, time

mnt, drives, images, seed, seconds = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(","), int(sys.argv[4]), float(sys.argv[5])
rng = random.Random(seed)
c = {"inserts": 0, "ejects": 0}
refused = {}
deadline = time.time() + seconds
while time.time() < deadline:
    media = "%s/guests/load/%s/media" % (mnt, rng.choice(drives))
    try:
        if rng.random() < 0.65:
            fd = os.open(media, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, (rng.choice(images) + "\n").encode())
            finally:
                os.close(fd)
            c["inserts"] += 1
        else:
            os.unlink(media)
            c["ejects"] += 1
    except OSError as e:
        name = errno.errorcode.get(e.errno, str(e.errno))
        refused[name] = refused.get(name, 0) + 1
print(json.dumps({"counts": c, "refused": refused}))
"""#
