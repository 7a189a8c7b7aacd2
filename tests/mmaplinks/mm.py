#!/usr/bin/python3
# Shared mappings of a file with two names (tests/mmaplinks): each step
# prints what one name shows after a change made through the other.
# Usage: mm.py NAME1 NAME2
import mmap
import os
import sys

a, b = sys.argv[1], sys.argv[2]


def show(label, data):
    print("%s: %s" % (label, data.decode(errors="replace")))


def pread(path, off, n):
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, n, off)
    finally:
        os.close(fd)


fa = os.open(a, os.O_RDWR)
fb = os.open(b, os.O_RDWR)
try:
    mb = mmap.mmap(fb, 8192, mmap.MAP_SHARED)
except OSError as e:
    print("mmap %s shared: %s" % (b, os.strerror(e.errno)))
    sys.exit(0)
print("mmap %s shared: ok" % b)
ma = mmap.mmap(fa, 8192, mmap.MAP_SHARED)
mb[0:5] = b"hello"
mb.flush()
show("read(2) of %s after a store through %s, msync" % (a, b),
     pread(a, 0, 5))
os.pwrite(fa, b"WORLD", 100)
show("map of %s after write(2) through %s" % (b, a), mb[100:105])
show("map of %s after write(2) through %s" % (a, a), ma[100:105])
ma[200:205] = b"third"
ma.flush()
show("map of %s after a store through %s, msync" % (b, a), mb[200:205])
show("read(2) of %s" % b, pread(b, 200, 5))
os.pwrite(fb, b"fifth", 4096)
show("map of %s after write(2) through %s" % (a, b), ma[4096:4101])
mb[300:305] = b"dirty"
os.pwrite(fa, b"sixth", 310)
show("map of %s after write(2) through %s next to an unsynced store" %
     (b, a), mb[300:315])
mb.close()
ma.close()
os.close(fa)
os.close(fb)
