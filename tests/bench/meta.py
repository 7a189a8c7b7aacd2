#!/usr/bin/env python3
# Metadata workloads and helpers for tests/bench/run-bench: creating,
# listing, reading and looking up many small files, each stopped at a
# deadline, and parsing the FUSE request counters our servers print.
# Every workload prints one line of key=value pairs on stdout.

import ctypes
import errno
import json
import os
import random
import re
import sys
import time

libc = ctypes.CDLL(None, use_errno=True)


def syncfs(path):
    # The kernel's ext4 would otherwise finish a create or delete in
    # memory, and the FUSE servers would not: the durable cost is what
    # compares.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def errname(e):
    """A stop on an error is reported, not raised: the rate over the part
    done still tells something, and the name says why it stopped."""
    return errno.errorcode.get(e.errno, str(e.errno))


def report(**kv):
    print(" ".join("%s=%s" % (k, v) for k, v in kv.items()))


def create(root, nfiles, ndirs, fsize, limit):
    """nfiles files of fsize bytes spread evenly over ndirs directories."""
    buf = bytes(range(256)) * (fsize // 256 + 1)
    buf = buf[:fsize]
    per_dir = (nfiles + ndirs - 1) // ndirs
    t0 = time.monotonic()
    end = t0 + limit
    os.mkdir(root)
    done = 0
    partial = 0
    error = "-"
    try:
        for d in range(ndirs):
            if done >= nfiles:
                break
            dpath = os.path.join(root, "d%03d" % d)
            os.mkdir(dpath)
            for _ in range(min(per_dir, nfiles - done)):
                fd = os.open(os.path.join(dpath, "f%06d" % done),
                             os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                os.write(fd, buf)
                os.close(fd)
                done += 1
                if time.monotonic() > end:
                    partial = 1
                    break
            if partial:
                break
    except OSError as e:
        partial, error = 1, errname(e)
    syncfs(root)
    secs = time.monotonic() - t0
    report(count=done, seconds="%.6f" % secs, bytes=done * fsize,
           partial=partial, error=error)


def walk(root, end, visit):
    """Depth-first walk calling visit(path, entry) for every entry; returns
    (count, stopped early, error name or "-")."""
    count = 0
    stack = [root]
    try:
        while stack:
            d = stack.pop()
            with os.scandir(d) as it:
                for e in it:
                    visit(e.path, e)
                    count += 1
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                    if time.monotonic() > end:
                        return count, 1, "-"
    except OSError as e:
        return count, 1, errname(e)
    return count, 0, "-"


def scan(root, limit):
    """What ls -l does: list every directory and lstat every name."""
    t0 = time.monotonic()
    count, partial, error = walk(root, t0 + limit, lambda p, e: os.lstat(p))
    secs = time.monotonic() - t0
    report(count=count, seconds="%.6f" % secs, bytes=0, partial=partial,
           error=error)


def readall(root, limit):
    """Read every regular file whole."""
    total = [0, 0]

    def visit(path, entry):
        if not entry.is_file(follow_symlinks=False):
            return
        with open(path, "rb", buffering=0) as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                total[0] += len(b)
        total[1] += 1

    t0 = time.monotonic()
    _, partial, error = walk(root, t0 + limit, visit)
    secs = time.monotonic() - t0
    report(count=total[1], seconds="%.6f" % secs, bytes=total[0],
           partial=partial, error=error)


def onedir(path, nfiles, limit):
    """nfiles empty files in one directory; also the time of each quarter."""
    t0 = time.monotonic()
    end = t0 + limit
    os.mkdir(path)
    quarter = max(nfiles // 4, 1)
    marks = []
    last = t0
    done = 0
    partial = 0
    error = "-"
    try:
        for i in range(nfiles):
            fd = os.open(os.path.join(path, "file-%06d" % i),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.close(fd)
            done += 1
            if done % quarter == 0 and len(marks) < 4:
                now = time.monotonic()
                marks.append(now - last)
                last = now
            if time.monotonic() > end:
                partial = 1
                break
    except OSError as e:
        partial, error = 1, errname(e)
    syncfs(path)
    secs = time.monotonic() - t0
    report(count=done, seconds="%.6f" % secs, bytes=0, partial=partial,
           error=error, quarters=",".join("%.3f" % q for q in marks) or "-")


def lookup(path, ncreated, nlookups, seed, limit):
    """stat of names picked at random among the ncreated onedir names."""
    rng = random.Random(seed)
    names = [os.path.join(path, "file-%06d" % rng.randrange(ncreated))
             for _ in range(nlookups)]
    t0 = time.monotonic()
    end = t0 + limit
    done = 0
    missing = 0
    partial = 0
    error = "-"
    try:
        for n in names:
            try:
                os.stat(n)
            except FileNotFoundError:
                missing += 1
            done += 1
            if time.monotonic() > end:
                partial = 1
                break
    except OSError as e:
        partial, error = 1, errname(e)
    secs = time.monotonic() - t0
    report(count=done, seconds="%.6f" % secs, bytes=0, partial=partial,
           error=error, missing=missing)


PAIR = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*[:=]?\s*(\d+)\b")


def parse_counters(text):
    """Per-opcode counts from the lines of one dump that mention
    "requests": NAME=N, NAME: N or NAME N pairs after the word."""
    counts = {}
    for line in text.splitlines():
        m = re.search(r"requests", line, re.I)
        if not m:
            continue
        rest = line[m.end():]
        rest = re.sub(r"^\s*[:=]?", "", rest)
        for name, num in PAIR.findall(rest):
            key = name.upper()
            counts[key] = counts.get(key, 0) + int(num)
    return counts


def total_of(counts):
    if "TOTAL" in counts:
        return counts["TOTAL"]
    return sum(counts.values())


def reqdiff(before_file, after_file):
    """Requests made between two dumps. Counters that went down mean the
    server resets them at each dump: then the second dump is the delta."""
    with open(before_file, errors="replace") as f:
        before = parse_counters(f.read())
    with open(after_file, errors="replace") as f:
        after = parse_counters(f.read())
    if not after:
        print("total=-")
        return
    delta = {k: v - before.get(k, 0) for k, v in after.items()}
    if any(v < 0 for v in delta.values()):
        delta = dict(after)
    total = total_of(delta)
    ops = ",".join("%s:%d" % (k, v) for k, v in
                   sorted(delta.items(), key=lambda kv: -kv[1])
                   if v and k != "TOTAL")
    print("total=%d ops=%s" % (total, ops or "-"))


def fio_result(path, direction):
    """seconds, bytes and IOs of the one job of a fio JSON report."""
    with open(path) as f:
        text = f.read()
    # fio may print notes before the JSON object.
    job = json.loads(text[text.index("{"):])["jobs"][0]
    d = job[direction]
    if job.get("error"):
        print("error=%d" % job["error"])
        return
    report(seconds="%.6f" % (d["runtime"] / 1000.0), bytes=d["io_bytes"],
           ios=d["total_ios"])


def warm(path):
    """Reads the allocated parts of an image file into the host's page
    cache (holes are skipped: reading them would cache zeros)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        end = os.fstat(fd).st_size
        pos = 0
        while pos < end:
            try:
                pos = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            hole = os.lseek(fd, pos, os.SEEK_HOLE)
            while pos < hole:
                n = len(os.pread(fd, min(8 << 20, hole - pos), pos))
                if not n:
                    break
                pos += n
    finally:
        os.close(fd)


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    a = argv[2:]
    if cmd == "create":
        create(a[0], int(a[1]), int(a[2]), int(a[3]), float(a[4]))
    elif cmd == "scan":
        scan(a[0], float(a[1]))
    elif cmd == "readall":
        readall(a[0], float(a[1]))
    elif cmd == "onedir":
        onedir(a[0], int(a[1]), float(a[2]))
    elif cmd == "lookup":
        lookup(a[0], int(a[1]), int(a[2]), int(a[3]), float(a[4]))
    elif cmd == "reqdiff":
        reqdiff(a[0], a[1])
    elif cmd == "fio":
        fio_result(a[0], a[1])
    elif cmd == "syncfs":
        syncfs(a[0])
    elif cmd == "warm":
        warm(a[0])
    else:
        sys.stderr.write("usage: meta.py create|scan|readall|onedir|lookup|"
                         "reqdiff|fio|syncfs|warm ARGS\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
