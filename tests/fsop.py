#!/usr/bin/python3
# System calls the shell cannot make, for the mount tests: open(2) with
# explicit flags, renameat2(2), AF_UNIX sockets, fallocate(2) modes,
# statvfs(3), lseek(2) SEEK_DATA/SEEK_HOLE, setxattr(2) flags.
# Usage: fsop.py OP ARGS...; prints "OP ARGS: ok" (plus what OP reports)
# or "OP ARGS: ERRNO_NAME" and exits 0 either way, so the caller's
# expected output records the result.
import ctypes
import errno
import os
import socket
import sys

libc = ctypes.CDLL(None, use_errno=True)

RENAME_FLAGS = {"noreplace": 1, "exchange": 2, "whiteout": 4, "0": 0}
FALLOC_FLAGS = {"keep_size": 1, "punch_hole": 2, "zero_range": 16, "0": 0}


def flagword(word, table):
    val = 0
    for part in word.split("|"):
        val |= table[part]
    return val


def open_flags(word):
    val = 0
    for part in word.split("|"):
        val |= getattr(os, part)
    return val


def check(ret):
    if ret < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return ret


def op_open(path, flags, mode="0644"):
    fd = os.open(path, open_flags(flags), int(mode, 8))
    os.close(fd)


def op_write(path, flags, off, data):
    """Writes data at off (-1: no seek, e.g. with O_APPEND)."""
    fd = os.open(path, open_flags(flags), 0o644)
    try:
        if int(off) >= 0:
            os.lseek(fd, int(off), os.SEEK_SET)
        n = os.write(fd, data.encode())
        return "%d bytes, offset now %d" % (n, os.lseek(fd, 0, os.SEEK_CUR))
    finally:
        os.close(fd)


def op_read(path, off, length):
    fd = os.open(path, os.O_RDONLY)
    try:
        return repr(os.pread(fd, int(length), int(off)))
    finally:
        os.close(fd)


def op_rename2(old, new, flags):
    renameat2 = libc.renameat2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                          ctypes.c_char_p, ctypes.c_uint]
    check(renameat2(-100, old.encode(), -100, new.encode(),
                    flagword(flags, RENAME_FLAGS)))


def op_socket(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(path)
    finally:
        s.close()


def op_fallocate(path, mode, off, length):
    fd = os.open(path, os.O_RDWR)
    try:
        fallocate = libc.fallocate
        fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long,
                              ctypes.c_long]
        check(fallocate(fd, flagword(mode, FALLOC_FLAGS), int(off),
                        int(length)))
    finally:
        os.close(fd)


def op_link(old, new):
    os.link(old, new)


def op_symlink(target_len, new):
    """A symlink whose target is target_len bytes of "0123456789"..."""
    target = ("0123456789" * (int(target_len) // 10 + 1))[:int(target_len)]
    os.symlink(target, new)


def op_setxattr(path, name, value, flags="0"):
    table = {"0": 0, "create": os.XATTR_CREATE, "replace": os.XATTR_REPLACE}
    os.setxattr(path, name, value.encode(), table[flags],
                follow_symlinks=False)


def op_setxattr_len(path, name, length):
    """Sets name to length bytes of "v"."""
    os.setxattr(path, name, b"v" * int(length))


def op_statfs(path):
    s = os.statvfs(path)
    return "bsize=%d frsize=%d blocks=%d bfree=%d bavail=%d files=%d " \
        "ffree=%d namemax=%d" % (s.f_bsize, s.f_frsize, s.f_blocks,
                                 s.f_bfree, s.f_bavail, s.f_files,
                                 s.f_ffree, s.f_namemax)


def op_seek(path, whence, off):
    fd = os.open(path, os.O_RDONLY)
    try:
        return str(os.lseek(fd, int(off), getattr(os, whence)))
    finally:
        os.close(fd)


OPS = {
    "open": op_open,
    "write": op_write,
    "read": op_read,
    "rename2": op_rename2,
    "socket": op_socket,
    "fallocate": op_fallocate,
    "statfs": op_statfs,
    "link": op_link,
    "symlink": op_symlink,
    "setxattr": op_setxattr,
    "setxattr_len": op_setxattr_len,
    "seek": op_seek,
}


def main():
    op, args = sys.argv[1], sys.argv[2:]
    label = " ".join([op] + args)
    if len(label) > 100:
        label = label[:100] + "..."
    try:
        res = OPS[op](*args)
    except OSError as e:
        print("%s: %s" % (label, errno.errorcode.get(e.errno, e.errno)))
        return
    print("%s: ok%s" % (label, "" if res is None else " " + res))


if __name__ == "__main__":
    main()
