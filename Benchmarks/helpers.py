#!/usr/bin/env python3
"""Helpers for Benchmarks/run.sh: tree generation, timing loops and populations.

Every subcommand prints its result on stdout as plain numbers (seconds, counts), so that
run.sh stays a readable list of cases. Nothing here asserts a time: it only measures.
"""
import os
import random
import statistics
import sys
import time


def gen_tree(root, files, big_mib):
    """A deterministic tree: `files` small files (0..80 KiB, mean ~40 KiB) in dirs of 100,
    two levels deep, some empty files, plus one large file `big.bin` of `big_mib` MiB."""
    rng = random.Random(7)
    os.makedirs(root, exist_ok=True)
    chunk = os.urandom(1 << 20)
    per_dir = 100
    dirs = (files + per_dir - 1) // per_dir
    n = 0
    for d in range(dirs):
        top = os.path.join(root, "d%02d" % (d // 10), "s%03d" % d)
        os.makedirs(top, exist_ok=True)
        for f in range(per_dir):
            if n >= files:
                break
            size = 0 if n % 50 == 0 else rng.randrange(0, 80 * 1024)
            off = rng.randrange(0, len(chunk) - size) if size else 0
            with open(os.path.join(top, "file-%05d.dat" % n), "wb") as fh:
                fh.write(chunk[off:off + size])
            n += 1
    with open(os.path.join(root, "big.bin"), "wb") as fh:
        for i in range(big_mib):
            fh.write(chunk[i % 1024:] + chunk[:i % 1024])


def populate(guests_dir, start, end, drives_per_guest=4):
    """mkdir guests g<start>..g<end-1>, each with drives_per_guest drives; prints seconds."""
    t = time.perf_counter()
    for g in range(start, end):
        gd = os.path.join(guests_dir, "g%05d" % g)
        os.mkdir(gd)
        for k in range(drives_per_guest):
            os.mkdir(os.path.join(gd, "g%05dd%d" % (g, k)))
    print("%.6f" % (time.perf_counter() - t))


def tmpfs_shape(guests_dir, start, end, drives_per_guest=4):
    """The same shape as vmediafs's guests/ with empty drives, as plain files and dirs."""
    for g in range(start, end):
        gd = os.path.join(guests_dir, "g%05d" % g)
        os.mkdir(gd)
        open(os.path.join(gd, "initiators"), "w").close()
        open(os.path.join(gd, "chap"), "w").close()
        for k in range(drives_per_guest):
            dd = os.path.join(gd, "g%05dd%d" % (g, k))
            os.mkdir(dd)
            open(os.path.join(dd, "disc"), "w").close()
            open(os.path.join(dd, "status"), "w").close()
            os.mkdir(os.path.join(dd, "contents"))


def load(guests_dir, count, image, drives_per_guest=4):
    """Inserts `image` into the first `count` drives; prints seconds."""
    t = time.perf_counter()
    for i in range(count):
        g, k = divmod(i, drives_per_guest)
        with open(os.path.join(guests_dir, "g%05d" % g, "g%05dd%d" % (g, k), "media"), "w") as fh:
            fh.write(image + "\n")
    print("%.6f" % (time.perf_counter() - t))


def pct(xs, p):
    """The p-th percentile of xs (nearest rank)."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def roundtrip(drive_dir, image, n):
    """n insert+eject round trips on one drive, after ten unmeasured ones; prints p50 p99
    mean in milliseconds, and the same for the insert and the eject alone."""
    media = os.path.join(drive_dir, "media")
    both, ins, ej = [], [], []
    # Ten unmeasured round trips first: the first ones on a drive take the cold paths
    # (SQLite's pages for its row, the kernel's new dentries) and would be the whole p99.
    for _ in range(10):
        with open(media, "w") as fh:
            fh.write(image + "\n")
        os.unlink(media)
    for _ in range(n):
        t0 = time.perf_counter()
        with open(media, "w") as fh:
            fh.write(image + "\n")
        t1 = time.perf_counter()
        os.unlink(media)
        t2 = time.perf_counter()
        both.append((t2 - t0) * 1e3)
        ins.append((t1 - t0) * 1e3)
        ej.append((t2 - t1) * 1e3)

    for xs in (both, ins, ej):
        print("%.3f %.3f %.3f" % (pct(xs, 50), pct(xs, 99), statistics.mean(xs)))


def commit_floor(directory, n):
    """The device's floor under an insert+eject with the state in `directory`: two commits,
    each a 4 KiB write and an fdatasync (what SQLite's WAL does with synchronous=FULL), timed
    as a pair, n times after ten unmeasured pairs; prints p50 p99 mean in milliseconds."""
    path = os.path.join(directory, "commit-floor.tmp")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.pwrite(fd, b"\0" * (1 << 20), 0)
    os.fsync(fd)
    block = b"x" * 4096
    xs = []
    for i in range(n + 10):
        t = time.perf_counter()
        for k in range(2):
            os.pwrite(fd, block, ((2 * i + k) % 256) * 4096)
            os.fdatasync(fd)
        if i >= 10:
            xs.append((time.perf_counter() - t) * 1e3)
    os.close(fd)
    os.unlink(path)
    print("%.3f %.3f %.3f" % (pct(xs, 50), pct(xs, 99), statistics.mean(xs)))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "gen-tree":
        gen_tree(args[0], int(args[1]), int(args[2]))
    elif cmd == "populate":
        populate(args[0], int(args[1]), int(args[2]))
    elif cmd == "tmpfs-shape":
        tmpfs_shape(args[0], int(args[1]), int(args[2]))
    elif cmd == "load":
        load(args[0], int(args[1]), args[2])
    elif cmd == "roundtrip":
        roundtrip(args[0], args[1], int(args[2]))
    elif cmd == "commit-floor":
        commit_floor(args[0], int(args[1]))
    else:
        sys.exit("unknown command " + cmd)
