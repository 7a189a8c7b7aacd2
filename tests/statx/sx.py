#!/usr/bin/python3
# statx(2) for tests/statx: whether a birth time is reported (and lies
# between two times given), and the attributes and attributes_mask bits.
# Usage: sx.py NOT_BEFORE NOT_AFTER PATH...  (times in seconds)
import ctypes
import os
import sys

STATX_BASIC_STATS = 0x7FF
STATX_BTIME = 0x800
AT_FDCWD = -100
ATTRS = [(0x4, "compressed"), (0x10, "immutable"), (0x20, "append"),
         (0x40, "nodump"), (0x800, "encrypted"), (0x100000, "verity")]


class Ts(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_int64), ("nsec", ctypes.c_uint32),
                ("pad", ctypes.c_int32)]


class Statx(ctypes.Structure):
    _fields_ = [("mask", ctypes.c_uint32), ("blksize", ctypes.c_uint32),
                ("attributes", ctypes.c_uint64), ("nlink", ctypes.c_uint32),
                ("uid", ctypes.c_uint32), ("gid", ctypes.c_uint32),
                ("mode", ctypes.c_uint16), ("pad0", ctypes.c_uint16),
                ("ino", ctypes.c_uint64), ("size", ctypes.c_uint64),
                ("blocks", ctypes.c_uint64),
                ("attributes_mask", ctypes.c_uint64),
                ("atime", Ts), ("btime", Ts), ("ctime", Ts), ("mtime", Ts),
                ("rest", ctypes.c_uint64 * 18)]


libc = ctypes.CDLL(None, use_errno=True)


def names(bits):
    out = [n for b, n in ATTRS if bits & b]
    return ",".join(out) or "-"


def main():
    lo, hi = float(sys.argv[1]), float(sys.argv[2])
    for path in sys.argv[3:]:
        sx = Statx()
        if libc.statx(AT_FDCWD, path.encode(), 0,
                      STATX_BASIC_STATS | STATX_BTIME,
                      ctypes.byref(sx)) < 0:
            print("%s: %s" % (path, os.strerror(ctypes.get_errno())))
            continue
        if not sx.mask & STATX_BTIME:
            birth = "none"
        else:
            t = sx.btime.sec + sx.btime.nsec / 1e9
            birth = "in range" if lo <= t <= hi else "out of range"
        print("%s: basic %s, btime %s, attributes %s, mask %s" %
              (path, "all" if sx.mask & STATX_BASIC_STATS ==
               STATX_BASIC_STATS else "missing", birth,
               names(sx.attributes), names(sx.attributes_mask & 0x100874)))


main()
