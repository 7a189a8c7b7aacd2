#!/usr/bin/python3
# O_TMPFILE steps for tests/tmpfile, run in the mount: each prints its
# result or the errno name.
import ctypes
import errno
import os
import stat
import sys
import time

libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_SYMLINK_FOLLOW = 0x400


def err(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def tmpfile(d, flags=os.O_RDWR, mode=0o640):
    try:
        fd = os.open(d, os.O_TMPFILE | flags, mode)
    except OSError as e:
        print("O_TMPFILE in %s: %s" % (d, err(e)))
        return None
    st = os.fstat(fd)
    print("O_TMPFILE in %s: ok, %s nlink %d" %
          (d, stat.filemode(st.st_mode), st.st_nlink))
    return fd


def linkat(fd, name, how):
    if how == "empty":
        r = libc.linkat(fd, b"", AT_FDCWD, name.encode(), AT_EMPTY_PATH)
    else:
        r = libc.linkat(AT_FDCWD, ("/proc/self/fd/%d" % fd).encode(),
                        AT_FDCWD, name.encode(), AT_SYMLINK_FOLLOW)
    e = ctypes.get_errno()
    print("linkat %s -> %s: %s" %
          (how, name, "ok" if r == 0 else errno.errorcode.get(e, str(e))))


def free_inodes():
    return os.statvfs(".").f_ffree


def wait_free(want):
    # The server frees an unlinked inode at the kernel's FORGET, a moment
    # after close(2) returned.
    for _ in range(100):
        if free_inodes() == want:
            return True
        time.sleep(0.1)
    return False


os.umask(0o022)
os.mkdir("d")
start = free_inodes()
fd = tmpfile(".")
if fd is None:
    sys.exit(0)
os.write(fd, b"tmpdata\n")
print("read back: %r" % os.pread(fd, 100, 0))
print("directory: %s" % sorted(os.listdir(".")))
print("inodes in use: %d" % (start - free_inodes()))
linkat(fd, "named", "empty")
st = os.stat("named")
print("named: %s nlink %d size %d, fstat nlink %d" %
      (stat.filemode(st.st_mode), st.st_nlink, st.st_size,
       os.fstat(fd).st_nlink))
os.write(fd, b"more\n")
os.close(fd)
print("named: %r" % open("named", "rb").read())

fd = tmpfile("d", os.O_WRONLY, 0o600)
os.write(fd, b"x" * 100000)
linkat(fd, "d/viaproc", "proc")
os.close(fd)
print("d/viaproc size %d" % os.stat("d/viaproc").st_size)

fd = tmpfile(".", os.O_RDWR | os.O_EXCL)
linkat(fd, "excl", "empty")
before = free_inodes()
os.write(fd, b"y" * 200000)
os.close(fd)
print("unnamed file freed at close: %s" % wait_free(before + 1))
print("directory: %s" % sorted(os.listdir(".")))

tmpfile("named")
tmpfile(".", os.O_RDONLY)
tmpfile("nothere")
