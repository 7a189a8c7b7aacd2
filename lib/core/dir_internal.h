/*
 * What dir.c (the entry walker, lookups, rewrites) shares with dir_list.c
 * (readdir): the entry a walk reports, the walkers, the block buffers and
 * the htree cursor. Everything here expects fs->lock held.
 */
#ifndef CORE_DIR_INTERNAL_H
#define CORE_DIR_INTERNAL_H

#include "core/iomap.h"

/* Where the entries after "." and ".." start in a directory's first block. */
#define DOTS_END (EXT2_DIR_REC_LEN(1) + EXT2_DIR_REC_LEN(2))

/* One live entry as a walk reports it; pos is its cookie, next the one after.
 */
struct dent {
	off_t pos;
	off_t next;
	ext2_ino_t ino;
	unsigned ftype;
	const char *name;
	unsigned namelen;
};

/* Returns non-zero to stop the walk; the entry it was given then counts. */
typedef int (*dent_fn)(struct fs *fs, void *priv, const struct dent *d);

/*
 * Walks one run of entries (a block, or a part of an inline directory)
 * whose first byte has cookie base, reporting entries at or after start.
 * Returns 1 if cb stopped, 0 at the end of the run, -errno.
 */
int dir_walk_run(struct fs *fs, ext2_ino_t dir, char *buf, unsigned len,
		 off_t base, off_t start, dent_fn cb, void *priv);
/* Every live entry from cookie start on, in byte order; as dir_walk_run. */
int dir_walk(struct fs *fs, ext2_ino_t dir, struct ext2_inode_large *inode,
	     off_t start, dent_fn cb, void *priv);
/* Reads dir's inode: -ENOTDIR unless it is a directory. */
int dir_read_inode(struct fs *fs, ext2_ino_t dir,
		   struct ext2_inode_large *inode);
int dent_is_dots(const struct dent *d);

/* A block-sized buffer, reused across walks; NULL without memory. */
char *dir_buf_get(struct fs *fs);
void dir_buf_put(struct fs *fs, char *buf);

/* The index is unusable: search linearly, as the kernel does then. */
#define DX_FALLBACK 2

struct dx_frame {
	char *buf;
	struct ext2_dx_entry *entries;
	unsigned count;
	unsigned at;
};

/* A position in an htree: the path of index nodes down to one leaf. */
struct dx_cursor {
	struct dx_frame fr[EXT4_HTREE_LEVEL];
	unsigned levels; /* indirect_levels: fr[levels] points at leaves */
	int version;	 /* for htree_hash */
	uint64_t nblocks;
	uint64_t visited; /* leaves read, bounded against index loops */
};

/* Reads the index root: 0, DX_FALLBACK or -errno; dx_close in every case. */
int dx_open(struct fs *fs, ext2_ino_t dir, struct ext2_inode_large *inode,
	    struct dx_cursor *c);
void dx_close(struct fs *fs, struct dx_cursor *c);
/* Walks down from the root to the leaf whose hash range holds hash. */
int dx_descend(struct fs *fs, ext2_ino_t dir, struct ext2_inode_large *inode,
	       struct dx_cursor *c, __u32 hash);
/* Reads the leaf the cursor points at into buf (lblk, pblk: where it is). */
int dx_read_leaf(struct fs *fs, ext2_ino_t dir, struct ext2_inode_large *inode,
		 struct dx_cursor *c, char *buf, blk64_t *lblk, blk64_t *pblk);
/* Moves to the next leaf; *hash: its first hash, *end at the last leaf. */
int dx_next(struct fs *fs, ext2_ino_t dir, struct ext2_inode_large *inode,
	    struct dx_cursor *c, __u32 *hash, int *end);

#endif
