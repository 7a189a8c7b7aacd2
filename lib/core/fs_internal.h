/*
 * What the core's modules share with each other and nobody else: the
 * filesystem context, the lock, error translation, on-disk inode helpers,
 * orphan list and ACL hooks. Everything declared here expects fs->lock held
 * (the public entry points in core.h take it).
 */
#ifndef CORE_FS_INTERNAL_H
#define CORE_FS_INTERNAL_H

#include <errno.h>
#include <pthread.h>

#include "core/core.h"

#ifndef EUCLEAN
#define EUCLEAN 117
#endif
#define EFSCORRUPTED EUCLEAN

#define FS_MAGIC 0x46533446u /* "FS4F" */
#define FS_GEN_POOL 64       /* random i_generations fetched at a time */
#define FS_DIR_BUFS 4        /* directory block buffers kept for reuse */

struct iref_table;
struct map_cache;
struct uncache;
struct dir_csum;
struct fault;
struct trim;
struct mmp;

struct fs {
	uint32_t magic;
	ext2_filsys e2;
	pthread_mutex_t lock;
	int readonly;            /* mounted ro, or remounted ro by errors= */
	__u16 mount_state;       /* s_state found at mount, restored at close */
	enum fs_errors_mode errors;
	int debug;
	char *device;
	struct iref_table *irefs;
	struct map_cache *maps;  /* recent block mappings (map_cache.c) */
	struct dir_csum *dir_csum; /* verified directory blocks (dir_csum.c) */
	uid_t map_uid;           /* -o uid=: trades places with 0 on disk */
	gid_t map_gid;           /* -o gid= */
	int data_fd;             /* image fd for the data executor */
	uint64_t data_off;       /* where byte 0 of the fs is in data_fd */
	struct uncache *uncache; /* image pages to drop (iomap_uncache.c) */
	enum fs_iomap_mode iomap_mode;
	int replayed_in_memory;  /* ro mount: replayed blocks only in the cache */
	int iomap_hardlinks;     /* iomap also for files with several links */
	void (*attr_hook)(void *arg, ext2_ino_t ino);
	void *attr_hook_arg;
	unsigned char *itable_ra;  /* inode-table windows read ahead (bits) */
	unsigned itable_ra_windows; /* windows per group */
	__u32 gen_pool[FS_GEN_POOL]; /* random bytes for new inodes */
	unsigned gen_left;           /* of gen_pool not handed out yet */
	char *dir_bufs[FS_DIR_BUFS]; /* free directory block buffers (dir.c) */
	unsigned dir_nbufs;
	struct fault *fault;         /* FUSE4FS_FAULT's injector, for tests */
	struct trim *trim;       /* FITRIM and -o discard state (trim.c) */
	int discard_due;         /* -o discard: a batch waits for a flush */
	struct mmp *mmp;         /* multi-mount protection (mmp.c) */
};

/* ---- mmp.c: multi-mount protection ---- */

/*
 * At a read-write open of an mmp filesystem, before anything is written:
 * checks the MMP block (waiting as ext4 does) and claims it. 0, or -errno
 * with *msg. Called without fs->lock.
 */
int mmp_start(struct fs *fs, const char **msg);
/*
 * Stops the updater and, unless another node took the block, makes
 * ready the clean value. Called without fs->lock: the updater takes it.
 */
void mmp_stop(struct fs *fs);
/*
 * After the last metadata write (libext2fs may be closed): writes the
 * clean value mmp_stop made ready, frees.
 */
void mmp_finish(struct fs *fs);

/* ---- trim.c: FITRIM and -o discard ---- */

/* After the bitmaps are read: hooks block frees. 0 or -errno. */
int trim_init(struct fs *fs, int discard);
/* Flushes and discards what -o discard still holds, unhooks, frees. */
void trim_fini(struct fs *fs);
/* Called by fs_flush_locked once metadata is on the device. */
void trim_synced(struct fs *fs);
/* Flushes, so that the -o discard batch that is due gets discarded. */
void trim_commit_due(struct fs *fs);
/*
 * FITRIM: discards free runs of at least minlen bytes within the bytes
 * [start, start + len) of the filesystem; *trimmed gets the bytes
 * discarded. 0, -EINVAL, -EROFS, -EOPNOTSUPP or -errno.
 */
int trim_fs(struct fs *fs, uint64_t start, uint64_t len, uint64_t minlen,
	    uint64_t *trimmed);

static inline void fs_lock(struct fs *fs)
{
	pthread_mutex_lock(&fs->lock);
}

/*
 * The end of a locked section is where the metadata is whole again: a
 * due -o discard batch is flushed and discarded there.
 */
static inline void fs_unlock(struct fs *fs)
{
	if (fs->discard_due)
		trim_commit_due(fs);
	pthread_mutex_unlock(&fs->lock);
}

/*
 * -o uid=N / gid=N: files owned by 0 on disk are N's in the mount and N's
 * are 0's; the same swap stores the owners the kernel gives us (new
 * files, chown, named ACL entries). A swap is its own inverse, so every
 * id maps back to what the disk has, and no two ids merge. Privilege
 * checks stay with the caller's real id (cred->uid == 0 is root).
 */
static inline uid_t fs_map_uid(const struct fs *fs, uid_t id)
{
	if (id == 0)
		return fs->map_uid;
	return id == fs->map_uid ? 0 : id;
}

static inline gid_t fs_map_gid(const struct fs *fs, gid_t id)
{
	if (id == 0)
		return fs->map_gid;
	return id == fs->map_gid ? 0 : id;
}

/* ---- fs_mount_check.c ---- */

/*
 * The warning ext4 prints when mounting read-write a filesystem with this
 * superblock (not cleanly unmounted, errors recorded, maximal mount count
 * or check interval reached), or NULL.
 */
const char *fs_mount_warning(const struct ext2_super_block *sb, time_t now);
/* 1 if device is a read-only block device or a file on a read-only mount. */
int fs_storage_readonly(const char *device);

/* ---- err.c ---- */

/*
 * The one translation of libext2fs errcode_t to -errno. Codes that mean
 * on-disk corruption or a failed device IO are recorded in the superblock
 * (fs_mark_error) and handled per errors=; ino (0 if unknown) goes into
 * the error record.
 */
int fs_err(struct fs *fs, errcode_t err, ext2_ino_t ino, const char *func);
#define FS_ERR(fs, err, ino) fs_err((fs), (err), (ino), __func__)
/* The translation alone, for failures that are no filesystem error. */
int fs_errno(errcode_t err);
/* Records corruption found by the core itself; returns -EFSCORRUPTED. */
int fs_corrupt(struct fs *fs, ext2_ino_t ino, const char *func,
	       const char *what);
#define FS_CORRUPT(fs, ino, what) fs_corrupt((fs), (ino), __func__, (what))
/* Calls the front-end's attribute hook; fs->lock must NOT be held. */
void fs_notify_attr(struct fs *fs, ext2_ino_t ino);
/* -EROFS if the filesystem cannot be written now, else 0. */
int fs_writable(struct fs *fs);

/* ---- fs.c ---- */

/*
 * Writes bitmaps, superblock, descriptors and cached blocks and syncs
 * the device (nothing for a read-only fs); then -o discard's batch goes.
 * 0 or -errno.
 */
int fs_flush_locked(struct fs *fs);

/* ---- itable_ra.c: read-ahead of inode tables ---- */

int itable_ra_init(struct fs *fs);
void itable_ra_fini(struct fs *fs);
/* Before inode ino is read: the first read of its window asks for all. */
void itable_ra_touch(struct fs *fs, ext2_ino_t ino);

/* ---- inode_disk.c: the on-disk inode ---- */

/* Reads/writes the full (large) inode; -errno on failure. */
int fsi_read(struct fs *fs, ext2_ino_t ino, struct ext2_inode_large *inode);
int fsi_write(struct fs *fs, ext2_ino_t ino, struct ext2_inode_large *inode);

enum fsi_time { FSI_ATIME, FSI_MTIME, FSI_CTIME, FSI_CRTIME };
void fsi_get_time(const struct ext2_inode_large *inode, enum fsi_time which,
		  struct timespec *ts);
/* Stores ts; seconds beyond 32 bits need the extra fields (else clamped). */
void fsi_set_time(struct ext2_inode_large *inode, enum fsi_time which,
		  const struct timespec *ts);
/* Has the inode room for a birth time (i_crtime)? Small inodes do not. */
int fsi_has_crtime(const struct ext2_inode_large *inode);
#define FSI_TOUCH_ATIME (1u << 0)
#define FSI_TOUCH_MTIME (1u << 1)
#define FSI_TOUCH_CTIME (1u << 2)
void fsi_touch(struct ext2_inode_large *inode, unsigned which);
/* Fills st from the on-disk inode. */
void fsi_to_stat(struct fs *fs, ext2_ino_t ino,
		 const struct ext2_inode_large *inode, struct stat *st);
uint64_t fsi_size(const struct ext2_inode_large *inode);

/*
 * Allocates an inode number near dir and fills *inode for a new object of
 * `mode` (type and permission bits, umask not applied) owned by cred, with
 * setgid-directory inheritance, times, extra_isize, extents/inline flags
 * as the fs features say. Marks the inode in use; nothing else is written.
 */
int fsi_new(struct fs *fs, ext2_ino_t dir, mode_t mode,
	    const struct fs_cred *cred, ext2_ino_t *ino,
	    struct ext2_inode_large *inode);
/* ext2fs_punch (blocks start..end inclusive) with a library bug worked around. */
errcode_t fsi_punch(struct fs *fs, ext2_ino_t ino, struct ext2_inode *inode,
		    blk64_t start, blk64_t end);
/* Frees all blocks, xattrs and the inode itself (i_links_count is 0). */
int fsi_free(struct fs *fs, ext2_ino_t ino);
/*
 * Sets i_size, freeing blocks past it and zeroing the rest of the last
 * block: through the executor for iomap files (then the caller must hold
 * the inode's exclusive IO lock, see iref_pin), else through libext2fs.
 * Writes *inode first and returns the result in it.
 */
int fsi_truncate(struct fs *fs, ext2_ino_t ino,
		 struct ext2_inode_large *inode, uint64_t size);

/* ---- map_cache.c ---- */

int map_cache_init(struct fs *fs);
void map_cache_fini(struct fs *fs);
/* Every change to ino's block map must call this. */
void map_cache_forget(struct fs *fs, ext2_ino_t ino);
void map_cache_print_stats(struct fs *fs, FILE *f);

/* ---- iref.c ---- */

struct iref;
int fs_iref_held(struct fs *fs, ext2_ino_t ino);
int iref_init(struct fs *fs);
void iref_fini(struct fs *fs);
/*
 * For the data path, called WITHOUT fs->lock: keeps the in-core inode
 * alive and takes its IO lock, shared (read, write over written blocks)
 * or exclusive (allocation, truncate, punch, size changes). NULL: ENOMEM.
 */
struct iref *iref_pin(struct fs *fs, ext2_ino_t ino, int exclusive);
void iref_unpin(struct fs *fs, struct iref *r);

/*
 * Drops one link of ino (already removed from its directory): frees the
 * inode at zero links unless referenced, in which case it is orphaned.
 * Directories lose both their links. Stamps ctime.
 */
int fs_drop_link(struct fs *fs, ext2_ino_t ino);

/* ---- orphan.c ---- */

/*
 * Puts ino on the superblock's orphan list: writes the caller's in-core
 * inode (with the changes it made, and i_dtime chaining it) once.
 */
int orphan_add(struct fs *fs, ext2_ino_t ino, struct ext2_inode_large *inode);
/* Takes ino off the orphan list, wherever it is. */
int orphan_remove(struct fs *fs, ext2_ino_t ino);
/*
 * Takes ino off the orphan list and frees it (fsi_free), without the
 * write of its cleared i_dtime that fsi_free would overwrite.
 */
int orphan_free(struct fs *fs, ext2_ino_t ino);
/* At rw mount: frees or truncates what a crash left on the list. */
int orphan_process(struct fs *fs);

/* ---- xattr.c (called by inode_disk) ---- */

/*
 * Before ino is freed: drops the references its attributes hold on EA
 * inodes (ea_inode feature), which freeing the xattr block alone leaks.
 */
int xattr_release(struct fs *fs, ext2_ino_t ino);

/* ---- acl.c (called by namei and inode) ---- */

/*
 * For a freshly created inode (already written with the requested mode,
 * umask not applied): applies the parent's default ACL if it has one
 * (access ACL and, for directories, the default ACL too; the mode is
 * masked by it), else applies cred->umask to the mode.
 */
int acl_inherit(struct fs *fs, ext2_ino_t dir, ext2_ino_t ino,
		const struct fs_cred *cred);
/* After a chmod: rewrites the access ACL's owner/group(mask)/other. */
int acl_chmod(struct fs *fs, ext2_ino_t ino, mode_t mode);

/* ---- file.c (called by inode and the data paths) ---- */

/* Largest i_size ext4 allows this inode (s_maxbytes / s_bitmap_maxbytes). */
uint64_t file_max_size(struct fs *fs, const struct ext2_inode_large *inode);
/*
 * truncate(2) of a regular file: frees blocks past size, zeroes the rest
 * of the last block, grows sparsely; inline-data files stay inline while
 * they fit. *inode is re-read; the caller stamps times and writes it.
 * 0, -EFBIG or -errno.
 */
int file_set_size(struct fs *fs, ext2_ino_t ino,
		  struct ext2_inode_large *inode, uint64_t size);
/*
 * Clears setuid, and setgid if group-exec, as a write or truncate by cred
 * does unless cred is root (NULL: a privileged caller).
 */
void file_kill_priv(struct fs *fs, struct ext2_inode_large *inode,
		    const struct fs_cred *cred);

/* ---- dir_csum.c: directory blocks read and written, checksummed ---- */

/*
 * ext2fs_read_dir_block4 for a block of directory dir (generation gen),
 * verifying the checksum only if the bytes differ from those last
 * verified or written for it. 0 or -errno.
 */
int dir_read_block(struct fs *fs, ext2_ino_t dir, __u32 gen, blk64_t pblk,
		   char *buf);
/* ext2fs_write_dir_block4, remembering the block as verified. */
int dir_write_block(struct fs *fs, ext2_ino_t dir, __u32 gen, blk64_t pblk,
		    char *buf);
void dir_csum_fini(struct fs *fs);

/* ---- dir.c (called by namei) ---- */

/* 0 if dir has nothing but "." and "..", -ENOTEMPTY otherwise. */
int dir_is_empty(struct fs *fs, ext2_ino_t dir);
/*
 * Looks name up in dir, through its htree index when it has one.
 * 0 with *ino, -ENOENT, -ENOTDIR, or -errno.
 */
int dir_lookup(struct fs *fs, ext2_ino_t dir, const char *name, size_t len,
	       ext2_ino_t *ino);
/*
 * Rewrites the entry name -> from in place: points it at `to` with file
 * type ftype (EXT2_FT_*), or removes it when to is 0. -ENOENT if dir has
 * no such entry.
 */
int dir_set_entry(struct fs *fs, ext2_ino_t dir, const char *name,
		  size_t len, ext2_ino_t from, ext2_ino_t to, unsigned ftype);

/*
 * An entry found in a directory, with the block that holds it kept as
 * read, so that it can be changed without searching and reading again.
 * Valid until the directory changes; dir_slot_release in every case.
 */
struct dir_slot {
	char *buf;      /* the block (NULL in an inline directory) */
	blk64_t pblk;   /* where buf goes back to */
	off_t pos;      /* byte position of the entry in the directory */
	ext2_ino_t ino; /* what the entry names */
	__u32 gen;      /* the directory's generation, for its checksum */
};

/*
 * Finds name in dir, whose inode the caller has read, keeping its block
 * in s. 0, -ENOENT or -errno.
 */
int dir_find(struct fs *fs, ext2_ino_t dir, struct ext2_inode_large *inode,
	     const char *name, size_t len, struct dir_slot *s);
/*
 * Points the entry dir_find found at `to` (type ftype), or removes it
 * when to is 0, and writes its block. 0 or -errno.
 */
int dir_slot_set(struct fs *fs, ext2_ino_t dir, struct ext2_inode_large *inode,
		 struct dir_slot *s, ext2_ino_t to, unsigned ftype);
void dir_slot_release(struct fs *fs, struct dir_slot *s);
/* Frees the block buffers dir.c keeps for reuse. */
void dir_bufs_fini(struct fs *fs);
/*
 * Searches dir, whose inode the caller has read, for name: 1 if it is
 * there (room->ino), 0 if not, or -errno. When it is not and dir is a
 * linear block directory with room for it, room keeps the block and the
 * entry to put it in (else room->buf is NULL).
 */
int dir_check_free(struct fs *fs, ext2_ino_t dir,
		   struct ext2_inode_large *inode, const char *name, size_t len,
		   struct dir_slot *room);
/*
 * Adds name -> ino (type ftype) where dir_check_free found room, and
 * writes the block. 0 or -errno.
 */
int dir_slot_insert(struct fs *fs, ext2_ino_t dir, struct dir_slot *room,
		    const char *name, size_t len, ext2_ino_t ino,
		    unsigned ftype);

/* ---- htree.c: directory indexes (called by dir and namei) ---- */

/*
 * The ext2fs_dirhash2 version for names of this directory given the raw
 * hash_version of an index (0-2; the unsigned variants when the superblock
 * says so), or -1 if they cannot be hashed here (unknown version,
 * encrypted directory, casefolding without the encoding).
 */
int htree_version(struct fs *fs, const struct ext2_inode_large *inode,
		  unsigned raw);
/* The version a new index of this directory gets; -1 without dir_index. */
int htree_new_version(struct fs *fs, const struct ext2_inode_large *inode);
/* Hashes a name with the fs's seed: 0 or -errno. */
int htree_hash(struct fs *fs, ext2_ino_t dir,
	       const struct ext2_inode_large *inode, int version,
	       const char *name, size_t len, __u32 *major, __u32 *minor);
/*
 * Converts a full one-block directory into an htree of a root and two
 * leaves, as ext4 does when such a directory needs a second block.
 * Returns 0 once converted, 1 when the directory stays linear (not one
 * block, no dir_index, names it cannot hash, unusual "." or ".."), or
 * -errno with the directory unchanged.
 */
int htree_convert(struct fs *fs, ext2_ino_t dir);

/* ---- journal.c ---- */

/*
 * Replays the committed transactions of the internal journal: written
 * home and the journal emptied on a read-write fs, laid over the image in
 * the cache on a read-only one; then re-reads the superblock and group
 * descriptors and clears needs_recovery. Call before the bitmaps are
 * read. Returns 0, -EUCLEAN for a journal that cannot be replayed (*msg
 * says why; nothing was written), -ENOMEM.
 */
int journal_recover(struct fs *fs, const char **msg);

#endif
