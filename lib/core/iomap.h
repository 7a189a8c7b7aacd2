/*
 * The iomap engine: where does the byte range [pos, pos+len) of an inode
 * live? Modelled on the kernel's iomap_begin / iomap_end / ioend. Offsets,
 * lengths and addresses are all in bytes. Every function here expects the
 * fs lock held; data IO happens elsewhere, outside that lock.
 */
#ifndef CORE_IOMAP_H
#define CORE_IOMAP_H

#include "core/fs_internal.h"

enum iomap_type {
	IOMAP_HOLE,      /* nothing allocated: reads give zeros */
	IOMAP_MAPPED,    /* allocated and written: addr is valid */
	IOMAP_UNWRITTEN, /* allocated, reads give zeros: addr is valid */
	IOMAP_INLINE,    /* data lives in the inode */
};

/* Blocks allocated by this iomap_begin: bytes not written must be zeroed. */
#define IOMAP_F_NEW (1u << 0)

enum iomap_op {
	IOMAP_OP_READ,   /* reading data */
	IOMAP_OP_REPORT, /* SEEK_DATA/SEEK_HOLE, FIEMAP: no allocation */
	IOMAP_OP_WRITE,  /* writing data: holes get allocated */
};

/* A mapping in blocks, before it is turned into bytes. */
struct bmap {
	blk64_t lblk;
	blk64_t pblk;  /* 0 for a hole */
	blk64_t count; /* ~0 for a hole to infinity */
	enum iomap_type type;
};

struct iomap {
	uint64_t offset; /* file offset of the mapping, block aligned */
	uint64_t length; /* bytes, a whole number of blocks */
	uint64_t addr;   /* device byte address (MAPPED, UNWRITTEN) */
	enum iomap_type type;
	unsigned flags;
};

/*
 * The mapping at lblk in blocks, through the mapping cache: the extent
 * (or run of a block map) containing it, or the hole there. inode is the
 * current on-disk inode. Also maps directory blocks. Returns 0 or -errno
 * (-EFSCORRUPTED for blocks outside the filesystem).
 */
int iomap_map_blocks(struct fs *fs, ext2_ino_t ino,
		     struct ext2_inode_large *inode, blk64_t lblk,
		     blk64_t want, struct bmap *m);

/*
 * The mapping of the extent containing pos (may be shorter or longer than
 * len). For IOMAP_OP_WRITE a hole is allocated first (unwritten extents on
 * extent-mapped files, zero-pending blocks on block-mapped ones) and
 * reported with IOMAP_F_NEW. Returns 0 or -errno (-ENOSPC, -EFBIG,
 * -EFSCORRUPTED for mappings that point outside the filesystem).
 */
int iomap_begin(struct fs *fs, ext2_ino_t ino, uint64_t pos, uint64_t len,
		enum iomap_op op, struct iomap *map);
/*
 * A write that failed before using the mapping iomap_begin gave it hands
 * the blocks back: newly allocated ones are freed, so neither the space
 * nor whatever the device held there stays in the file.
 */
int iomap_end(struct fs *fs, ext2_ino_t ino, const struct iomap *map);
/*
 * After data reached the device: converts unwritten blocks of the range to
 * written, grows i_size to pos+len, stamps mtime/ctime. On error the
 * range stays unwritten and the size unchanged.
 */
int ioend(struct fs *fs, ext2_ino_t ino, uint64_t pos, uint64_t len,
	  int error);

/*
 * Allocation goal for the hole at lblk of an extent-mapped file
 * (iomap_goal.c): beside its neighbour, at the same distance as in the
 * file, so that out-of-order writes still lay the file out in order.
 */
blk64_t iomap_alloc_goal(struct fs *fs, ext2_ino_t ino,
			 struct ext2_inode_large *inode, blk64_t lblk);

/*
 * Frees the blocks wholly inside [start, end) (end = ~0: to the end).
 * Metadata only: never reads or writes data blocks through libext2fs; the
 * caller zeroes partial blocks through the executor.
 */
int iomap_punch(struct fs *fs, ext2_ino_t ino, uint64_t start, uint64_t end);

/* ---- map_cache.c: recent mappings per inode ---- */

/*
 * The cached mapping containing lblk, cut to start there: 1 if found.
 * inode is the current on-disk inode; an entry whose block-map fields
 * differ from it is dropped.
 */
int map_cache_find(struct fs *fs, ext2_ino_t ino,
		   const struct ext2_inode_large *inode, blk64_t lblk,
		   struct bmap *m);
/* Does a cached mapping end at lblk (a sequential reader or writer)? */
int map_cache_follows(struct fs *fs, ext2_ino_t ino,
		      const struct ext2_inode_large *inode, blk64_t lblk);
void map_cache_add(struct fs *fs, ext2_ino_t ino,
		   const struct ext2_inode_large *inode, const struct bmap *m);

/* ---- iomap_io.c: the userspace executor ---- */

/*
 * Does this inode's data go through the iomap path? Regular files whose
 * data lives in blocks; not inline-data, encrypted or verity files; with
 * fs->iomap_hardlinks clear (fuse2fs), not files with several links.
 */
int file_uses_iomap(struct fs *fs, const struct ext2_inode_large *inode);
/*
 * Reads and writes through the image fd. Called WITHOUT fs->lock: they
 * take the inode's IO lock and fs->lock themselves. Return bytes moved
 * (short at EOF, or after ENOSPC once something was written) or -errno.
 */
ssize_t iomap_read(struct fs *fs, ext2_ino_t ino, void *buf, size_t size,
		   off_t off);
ssize_t iomap_write(struct fs *fs, ext2_ino_t ino, const void *buf,
		    size_t size, off_t off, int append);
/* Writes len zero bytes at device address addr, through the image fd. */
int iomap_write_zeros(struct fs *fs, uint64_t len, uint64_t addr);
/*
 * Sets i_size: shrinking zeroes the tail of the last block through the
 * executor and frees the blocks past it; growing leaves a hole. Expects
 * fs->lock AND the inode's exclusive IO lock held; *inode is written.
 */
int iomap_truncate_locked(struct fs *fs, ext2_ino_t ino,
			  struct ext2_inode_large *inode, uint64_t size);

/* ---- iomap_uncache.c: one copy of file data in memory ---- */

/*
 * Addresses here are positions in the image fd: the filesystem's byte
 * address plus fs->data_off.
 */
int uncache_init(struct fs *fs);
void uncache_fini(struct fs *fs);
/* After the bytes of [addr, addr + len) went into a reply. */
void uncache_read(struct fs *fs, uint64_t addr, uint64_t len);
/* pread(2) of the image fd that leaves no pages of its own cached. */
ssize_t uncache_pread(struct fs *fs, void *buf, size_t len, uint64_t addr);
/* After the executor wrote [addr, addr + len) to the image. */
void uncache_written(struct fs *fs, uint64_t addr, uint64_t len);
/* After an fsync: every queued written range is dropped. */
void uncache_sync(struct fs *fs);

/* ---- iomap_ops.c: what rides on the mappings ---- */

/*
 * fallocate(2): 0 and KEEP_SIZE allocate unwritten extents; PUNCH_HOLE
 * (with KEEP_SIZE) frees whole blocks and zeroes partial ones; ZERO_RANGE
 * leaves the range allocated and unwritten. Other modes and block-mapped
 * files: -EOPNOTSUPP, as ext4. Takes its locks itself.
 */
int iomap_fallocate(struct fs *fs, ext2_ino_t ino, int mode, uint64_t off,
		    uint64_t len);
/* SEEK_DATA / SEEK_HOLE; unwritten extents count as holes. -ENXIO. */
off_t iomap_seek(struct fs *fs, ext2_ino_t ino, off_t off, int whence);
/* copy_file_range between two iomap files, through the image fd. */
ssize_t iomap_copy_range(struct fs *fs, ext2_ino_t ino_in, off_t off_in,
			 ext2_ino_t ino_out, off_t off_out, size_t len);

/* ---- iomap_shift.c: collapse and insert range ---- */

/*
 * fallocate(2) FALLOC_FL_COLLAPSE_RANGE or FALLOC_FL_INSERT_RANGE (alone)
 * on an extent-mapped file: cuts [off, off + len) out of the file, or
 * opens a hole of len bytes at off, moving the extents after it; i_size
 * shrinks or grows by len. As ext4: -EOPNOTSUPP for other modes and for
 * block-mapped files, -EINVAL for offsets or lengths that are not whole
 * blocks, a collapse that reaches EOF or an insert at or past it, -EFBIG
 * past the largest file size, -EPERM for immutable and append-only files.
 * Metadata only, for the iomap and the legacy paths alike. Takes its
 * locks itself (the inode's IO lock exclusive).
 */
int iomap_shift(struct fs *fs, ext2_ino_t ino, int mode, uint64_t off,
		uint64_t len);

#endif
