/*
 * The filesystem core's public interface: everything the FUSE front-ends
 * may call. FUSE-free. Objects are named by ext2 inode number; every
 * function returns 0 (or a non-negative count where stated) or -errno.
 * Each entry point takes the filesystem lock itself: callers never lock.
 */
#ifndef CORE_CORE_H
#define CORE_CORE_H

#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>

#include <ext2fs/ext2fs.h>

struct fs;

/* errors= behaviour on detected corruption (0: what the superblock says). */
enum fs_errors_mode {
	FS_ERRORS_DEFAULT = 0,
	FS_ERRORS_CONTINUE,
	FS_ERRORS_REMOUNT_RO,
	FS_ERRORS_PANIC,
};

/* iomap= choice of file data path (see DESIGN.md: the data path). */
enum fs_iomap_mode {
	FS_IOMAP_AUTO = 0,
	FS_IOMAP_ON,
	FS_IOMAP_OFF,
};

struct fs_options {
	const char *device;     /* image file or block device */
	const char *mountpoint; /* recorded in s_last_mounted; may be NULL */
	int readonly;
	int norecovery;         /* ro mount that leaves the journal unread */
	enum fs_errors_mode errors;
	unsigned long long cache_size; /* bytes; 0: default */
	/* Where the filesystem starts in the device (a partition), bytes. */
	unsigned long long offset;
	/*
	 * -o uid=/gid=: on-disk owner 0 and this id trade places (0: no
	 * mapping). See fs_map_uid in fs_internal.h.
	 */
	uid_t map_uid;
	gid_t map_gid;
	enum fs_iomap_mode iomap;
	/*
	 * fuse4fs: one kernel inode per ext2 inode, so hard-linked files can
	 * use iomap too. fuse2fs (a kernel inode per path) leaves it 0.
	 */
	int iomap_hardlinks;
	int debug;
	int discard;            /* -o discard: freed blocks are discarded */
};

/*
 * Who is asking. Used for ownership of new inodes, umask, and the
 * suid/sgid rules; permission bits are checked by the kernel
 * (default_permissions), so the core does not re-check them. Every id
 * the core takes or hands out (cred, struct stat, ACL entries) is as the
 * kernel sees it: -o uid=/gid= mapping is applied inside, at the disk.
 */
struct fs_cred {
	uid_t uid;
	gid_t gid;
	mode_t umask;
	/*
	 * Is the caller a member of group g (supplementary groups too)?
	 * Asked only when a rule needs it (setgid on write); NULL: only gid
	 * counts. priv is the front-end's, for the callback.
	 */
	int (*in_group)(const struct fs_cred *cred, gid_t g);
	void *priv;
};

/* ---- fs.c: open, close, statfs, sync ---- */

/*
 * Opens the filesystem. On failure returns -errno and, if msg is not NULL,
 * a static one-line reason (e.g. "not an ext2/3/4 filesystem"); on
 * success *msg is NULL or a warning to show, such as ext4's for a
 * filesystem that was not cleanly unmounted.
 */
int fs_open(const struct fs_options *opts, struct fs **fsp, const char **msg);
/* Flushes everything, marks the superblock clean, frees fs. */
int fs_close(struct fs *fs);
/*
 * Starts the core's background work: the MMP updater of a read-write
 * mount of an mmp filesystem. Call once after daemonizing (threads do not
 * survive fork). 0 or -errno.
 */
int fs_start_background(struct fs *fs);
int fs_statfs(struct fs *fs, struct statvfs *st);
/* Writes all dirty metadata and data to the device. */
int fs_sync(struct fs *fs);
int fs_is_readonly(struct fs *fs);
/*
 * The front-end's hook for attribute changes the kernel cannot predict
 * (setuid/setgid cleared by a write): fn(arg, ino) is called without the
 * fs lock held, so it may tell the kernel to drop its cached attributes.
 */
void fs_set_attr_hook(struct fs *fs, void (*fn)(void *arg, ext2_ino_t ino),
		      void *arg);
/* Block size, for st_blksize and read/write sizing. */
unsigned fs_blocksize(struct fs *fs);

/* ---- fs_info.c ---- */

/* The core's counters (block cache), one "cache: name value" line each. */
void fs_print_stats(struct fs *fs, FILE *f);
/* Nanoseconds between representable timestamps (1, or 1e9 on old inodes). */
unsigned fs_time_gran(struct fs *fs);

/* ---- inode.c: attributes ---- */

int inode_getattr(struct fs *fs, ext2_ino_t ino, struct stat *st);

/* What statx(2) tells beyond stat: birth time and some inode flags. */
struct fs_statx {
	struct stat st;
	int has_btime;            /* 0 on inodes without room for one */
	struct timespec btime;
	uint64_t attributes;      /* STATX_ATTR_* set on this inode */
	uint64_t attributes_mask; /* STATX_ATTR_* the filesystem reports */
};

/* inode_getattr plus birth time and attributes, as ext4 reports them. */
int inode_statx(struct fs *fs, ext2_ino_t ino, struct fs_statx *sx);

/* Which fields inode_setattr changes. */
#define FS_SET_MODE      (1u << 0)
#define FS_SET_UID       (1u << 1)
#define FS_SET_GID       (1u << 2)
#define FS_SET_SIZE      (1u << 3)
#define FS_SET_ATIME     (1u << 4)
#define FS_SET_MTIME     (1u << 5)
#define FS_SET_ATIME_NOW (1u << 6)
#define FS_SET_MTIME_NOW (1u << 7)
#define FS_SET_CTIME     (1u << 8)

/*
 * Changes the attributes in `valid` from `st` (st_mode, st_uid, st_gid,
 * st_size, st_atim, st_mtim, st_ctim) and returns the new attributes in
 * `out` (may be NULL). ctime is stamped on any change. Size changes free or
 * zero blocks like truncate(2). EPERM on immutable/append-only inodes.
 */
int inode_setattr(struct fs *fs, ext2_ino_t ino, const struct stat *st,
		  unsigned valid, const struct fs_cred *cred, struct stat *out);
/* access(2) semantics for F_OK/R_OK/W_OK/X_OK as root would see them. */
int inode_access(struct fs *fs, ext2_ino_t ino, int mask);

/* ---- namei.c: names ---- */

/* Looks `name` up in dir; fills *ino and (if st) its attributes. */
int namei_lookup(struct fs *fs, ext2_ino_t dir, const char *name,
		 ext2_ino_t *ino, struct stat *st);
/*
 * Creates a regular file, device, fifo or socket (mode carries the type;
 * rdev for devices). Applies umask or the parent's default ACL, setgid
 * directory inheritance. EEXIST if the name exists.
 */
int namei_mknod(struct fs *fs, ext2_ino_t dir, const char *name, mode_t mode,
		dev_t rdev, const struct fs_cred *cred, struct stat *st);
int namei_mkdir(struct fs *fs, ext2_ino_t dir, const char *name, mode_t mode,
		const struct fs_cred *cred, struct stat *st);
int namei_symlink(struct fs *fs, ext2_ino_t dir, const char *name,
		  const char *target, const struct fs_cred *cred,
		  struct stat *st);
/*
 * O_TMPFILE: a regular file without a name (no entry in dir, no link),
 * on the orphan list from the start. It lives while referenced: the
 * caller takes the kernel's reference (fs_iref_get) at once; namei_link
 * gives it a name (and takes it off the list), or the last fs_iref_put
 * frees it. st gets its attributes (st_nlink 0).
 */
int namei_tmpfile(struct fs *fs, ext2_ino_t dir, mode_t mode,
		  const struct fs_cred *cred, struct stat *st);
/* Copies at most size-1 bytes of the target, NUL-terminated. */
int namei_readlink(struct fs *fs, ext2_ino_t ino, char *buf, size_t size);
/* Adds a name for ino in dir; st gets ino's new attributes. */
int namei_link(struct fs *fs, ext2_ino_t ino, ext2_ino_t dir, const char *name,
	       struct stat *st);
/*
 * Removes a non-directory name. If the last link goes while the inode is
 * still referenced (fs_iref_get), the inode goes on the orphan list and is
 * freed at the last fs_iref_put.
 */
int namei_unlink(struct fs *fs, ext2_ino_t dir, const char *name);
int namei_rmdir(struct fs *fs, ext2_ino_t dir, const char *name);

#define FS_RENAME_NOREPLACE (1u << 0)
#define FS_RENAME_EXCHANGE  (1u << 1)
int namei_rename(struct fs *fs, ext2_ino_t olddir, const char *oldname,
		 ext2_ino_t newdir, const char *newname, unsigned flags);

/* ---- iref.c: references held by the front-ends ---- */

/*
 * The front-end holds a reference while the kernel may still use an inode
 * number (fuse4fs: lookup count; fuse2fs: open handles). An inode whose
 * last link is gone is freed when its last reference is dropped.
 */
void fs_iref_get(struct fs *fs, ext2_ino_t ino);
void fs_iref_put(struct fs *fs, ext2_ino_t ino, uint64_t n);

/* ---- dir.c: reading directories ---- */

/*
 * Called for each entry; `next` is the cookie to resume after this entry.
 * Returns non-zero to stop (reply buffer full): that entry is not consumed.
 * st is NULL unless dir_read was asked for attributes.
 */
typedef int (*dir_fill_fn)(void *ctx, const char *name, size_t namelen,
			   ext2_ino_t ino, unsigned dtype, const struct stat *st,
			   off_t next);
/*
 * Lists entries starting at cookie `off` (0: the beginning, "." and ".."
 * included). With want_attrs, st is filled for each entry (readdirplus).
 */
int dir_read(struct fs *fs, ext2_ino_t dir, off_t off, int want_attrs,
	     dir_fill_fn fill, void *ctx);
/* Checks dir is a directory (for opendir). */
int dir_open(struct fs *fs, ext2_ino_t dir);

/* ---- file.c: file data ---- */

/* Checks the inode can be opened with these open(2) flags; O_TRUNC done. */
int file_open(struct fs *fs, ext2_ino_t ino, int flags,
	      const struct fs_cred *cred);
/* Returns bytes read (short at EOF) or -errno. */
ssize_t file_read(struct fs *fs, ext2_ino_t ino, void *buf, size_t size,
		  off_t off);
/*
 * Returns bytes written or -errno. append: write at EOF (O_APPEND).
 * Clears setuid (and setgid with group exec) unless cred is root.
 */
ssize_t file_write(struct fs *fs, ext2_ino_t ino, const void *buf,
		   size_t size, off_t off, int append,
		   const struct fs_cred *cred);
int file_fsync(struct fs *fs, ext2_ino_t ino, int datasync);
/*
 * mode: fallocate(2) mode bits (KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE,
 * COLLAPSE_RANGE, INSERT_RANGE); -EOPNOTSUPP for what is not supported.
 */
int file_fallocate(struct fs *fs, ext2_ino_t ino, int mode, off_t off,
		   off_t len);

/* SEEK_DATA / SEEK_HOLE: the offset, or -ENXIO past the last data. */
off_t file_lseek(struct fs *fs, ext2_ino_t ino, off_t off, int whence);
/*
 * copy_file_range(2) inside the filesystem: bytes copied or -errno;
 * -EOPNOTSUPP where the kernel should fall back to read/write.
 */
ssize_t file_copy_range(struct fs *fs, ext2_ino_t ino_in, off_t off_in,
			ext2_ino_t ino_out, off_t off_out, size_t len,
			const struct fs_cred *cred);

/* ---- iomap_splice.c: file data by reference ---- */

/* A piece of a pinned read: len bytes at addr in fs_data_fd(), or zeros. */
struct fs_data_seg {
	uint64_t addr;
	uint64_t len;
	int zero;
};

struct fs_data_pin;

/*
 * For a front-end that moves a read's bytes itself from the image fd (by
 * splicing them into its reply): maps [off, off + size) of ino, clipped
 * at EOF, into at most max segments in file order, and keeps them valid
 * until fs_data_unpin, which must come from the same thread (the inode's
 * IO lock is held shared: its blocks can be neither freed nor reused, and
 * cached metadata over them was written to the fd). Returns the bytes
 * mapped, 0 at EOF (nothing pinned), -E2BIG if max segments are not
 * enough, -EOPNOTSUPP for files the data executor does not serve (use
 * file_read), or -errno.
 */
ssize_t file_read_pin(struct fs *fs, ext2_ino_t ino, off_t off, size_t size,
		      struct fs_data_seg *segs, unsigned max, unsigned *nsegs,
		      struct fs_data_pin **pin);
/*
 * After the reply took the bytes: drops the image's cached copy of the
 * segments (the FUSE page cache has them now) and unpins.
 */
void fs_data_unpin(struct fs *fs, struct fs_data_pin *pin,
		   const struct fs_data_seg *segs, unsigned nsegs);
/* The image fd the segments' addresses are in; not to be closed. */
int fs_data_fd(struct fs *fs);

/* ---- xattr.c: extended attributes and POSIX ACLs ---- */

/* size 0: returns the value size. ENODATA if absent, ERANGE if too small. */
ssize_t xattr_get(struct fs *fs, ext2_ino_t ino, const char *name,
		  void *value, size_t size);
/* flags: XATTR_CREATE / XATTR_REPLACE. ACL names update the mode. */
int xattr_set(struct fs *fs, ext2_ino_t ino, const char *name,
	      const void *value, size_t size, int flags,
	      const struct fs_cred *cred);
/* NUL-separated names; size 0: returns the needed size. */
ssize_t xattr_list(struct fs *fs, ext2_ino_t ino, char *list, size_t size);
int xattr_remove(struct fs *fs, ext2_ino_t ino, const char *name);

/* ---- ioctl.c ---- */

int ioctl_getflags(struct fs *fs, ext2_ino_t ino, uint32_t *flags);
int ioctl_setflags(struct fs *fs, ext2_ino_t ino, uint32_t flags,
		   const struct fs_cred *cred);
int ioctl_getversion(struct fs *fs, ext2_ino_t ino, uint32_t *version);
/*
 * FITRIM, as ext4 answers it: discards the free space of the bytes
 * [start, start + *len) of the filesystem in runs of at least minlen
 * bytes; *len gets the bytes discarded. Root only (-EPERM); -EINVAL for
 * a range or minlen ext4 refuses, -EOPNOTSUPP if the device cannot
 * discard, -EROFS on a read-only mount.
 */
int ioctl_fitrim(struct fs *fs, uint64_t start, uint64_t *len,
		 uint64_t minlen, const struct fs_cred *cred);

#endif
