/*
 * Listing directories: dir_open and dir_read, with resumable cookies.
 *
 * Where the fs has dir_index, indexed, one-block and inline directories
 * are listed in hash order and cookies are hashes (see "Hash-ordered
 * listing" below), as in ext4. Elsewhere cookies are byte positions. In a
 * block directory an entry's cookie is lblk * blocksize + its offset in
 * the block, so it survives inserts and removals elsewhere and a listing
 * resumes by reading the block that holds it. An inline directory's
 * entries get the positions they will have once libext2fs moves them
 * into a block, so a listing that spans that conversion neither repeats
 * nor skips entries.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "core/dir_internal.h"

int dir_open(struct fs *fs, ext2_ino_t dir)
{
	struct ext2_inode_large inode;
	int ret;

	fs_lock(fs);
	ret = dir_read_inode(fs, dir, &inode);
	fs_unlock(fs);
	return ret;
}

/*
 * Hash-ordered listing. Leaf splits move entries between blocks, so in an
 * indexed directory a byte position would not survive an insert; as in
 * ext4, such a directory is listed in hash order and an entry's cookie is
 * its hash. One-block and inline directories are listed the same way, so
 * that their conversion to an htree in mid-listing repeats nothing.
 * "." and ".." keep their byte positions (0 and 12); names follow from
 * DOTS_END on: the major hash (low bit always clear) then the top byte of
 * the minor hash, all below HPOS_END. Entries with equal positions (a
 * 39-bit collision) are given a cookie that lists them again rather than
 * one that could skip them.
 */
#define HPOS_END (DOTS_END + ((off_t)1 << 39))

static off_t hash_pos(__u32 major, __u32 minor)
{
	return DOTS_END + ((off_t)(major >> 1) << 8 | minor >> 24);
}

/* The major hash to start a listing at cookie pos (>= DOTS_END). */
static __u32 pos_major(off_t pos)
{
	return (__u32)((pos - DOTS_END) >> 8) << 1;
}

struct hent {
	off_t pos;
	ext2_ino_t ino;
	unsigned ftype;
	unsigned namelen;
	size_t name; /* offset in hset.names */
};

/* The entries of one hash range, gathered to be sorted and emitted. */
struct hset {
	ext2_ino_t dir;
	const struct ext2_inode_large *inode;
	int version;
	off_t start;
	struct hent *v;
	size_t n, cap;
	char *names;
	size_t used, ncap;
	int err;
	int sent; /* something was handed to cb */
};

static int hset_add(struct fs *fs, void *priv, const struct dent *d)
{
	struct hset *hs = priv;
	__u32 major, minor;
	struct hent *e;
	off_t pos = d->pos;

	if (d->pos >= DOTS_END || !dent_is_dots(d)) {
		hs->err = htree_hash(fs, hs->dir, hs->inode, hs->version,
				     d->name, d->namelen, &major, &minor);
		if (hs->err)
			return 1;
		pos = hash_pos(major, minor);
	}
	if (pos < hs->start)
		return 0;
	if (hs->n == hs->cap) {
		size_t cap = hs->cap ? hs->cap * 2 : 64;
		void *v = realloc(hs->v, cap * sizeof(*hs->v));

		if (!v)
			goto nomem;
		hs->v = v;
		hs->cap = cap;
	}
	if (hs->ncap - hs->used < d->namelen) {
		size_t ncap = hs->ncap * 2 + EXT2_NAME_LEN + 1;
		char *names = realloc(hs->names, ncap);

		if (!names)
			goto nomem;
		hs->names = names;
		hs->ncap = ncap;
	}
	e = &hs->v[hs->n++];
	e->pos = pos;
	e->ino = d->ino;
	e->ftype = d->ftype;
	e->namelen = d->namelen;
	e->name = hs->used;
	memcpy(hs->names + hs->used, d->name, d->namelen);
	hs->used += d->namelen;
	return 0;
nomem:
	hs->err = -ENOMEM;
	return 1;
}

static int hent_cmp(const void *a, const void *b, void *names)
{
	const struct hent *x = a, *y = b;
	unsigned len = x->namelen < y->namelen ? x->namelen : y->namelen;
	int c;

	if (x->pos != y->pos)
		return x->pos < y->pos ? -1 : 1;
	/* Equal positions: a fixed order, so a re-listing repeats it. */
	c = memcmp((char *)names + x->name, (char *)names + y->name, len);
	if (c)
		return c;
	return (int)x->namelen - (int)y->namelen;
}

/* Sorts what was gathered and hands it to cb: 1 if cb stopped, else 0. */
static int hset_emit(struct fs *fs, struct hset *hs, dent_fn cb, void *priv)
{
	size_t i;

	if (hs->n) /* v is NULL while nothing was gathered */
		qsort_r(hs->v, hs->n, sizeof(*hs->v), hent_cmp, hs->names);
	for (i = 0; i < hs->n; i++) {
		const struct hent *e = &hs->v[i];
		struct dent d = { e->pos, e->pos + 1, e->ino, e->ftype,
				  hs->names + e->name, e->namelen };

		if (i + 1 < hs->n && hs->v[i + 1].pos == e->pos)
			d.next = e->pos;
		hs->sent = 1;
		if (cb(fs, priv, &d))
			return 1;
	}
	hs->n = 0;
	hs->used = 0;
	return 0;
}

static void hset_free(struct hset *hs)
{
	free(hs->v);
	free(hs->names);
}

/*
 * Gathers the whole directory (inline, one block, or an index we cannot
 * follow) and emits it in hash order.
 */
static int hash_list_all(struct fs *fs, ext2_ino_t dir,
			 struct ext2_inode_large *inode, int version,
			 off_t start, dent_fn cb, void *priv)
{
	struct hset hs = { .dir = dir, .inode = inode, .version = version,
			   .start = start };
	int ret;

	ret = dir_walk(fs, dir, inode, 0, hset_add, &hs);
	if (hs.err)
		ret = hs.err;
	if (!ret)
		ret = hset_emit(fs, &hs, cb, priv);
	hset_free(&hs);
	return ret;
}

/*
 * Lists an indexed directory in hash order from cookie start: the dots
 * from the root block, then leaf by leaf from the one holding start's
 * hash. A leaf whose successor continues its last hash is sorted with
 * it. Returns 1 if cb stopped, 0 at the end, DX_FALLBACK (before anything
 * was listed), or -errno.
 */
static int dx_list(struct fs *fs, ext2_ino_t dir,
		   struct ext2_inode_large *inode, off_t start, dent_fn cb,
		   void *priv)
{
	unsigned bs = fs->e2->blocksize;
	struct hset hs = { .dir = dir, .inode = inode, .start = start };
	struct dx_cursor c;
	char *leaf = NULL;
	__u32 next = 0;
	blk64_t lblk;
	int ret, end = 0;

	ret = dx_open(fs, dir, inode, &c);
	if (ret)
		goto out;
	hs.version = c.version;
	if (start < DOTS_END) {
		ret = dir_walk_run(fs, dir, c.fr[0].buf, bs, 0, 0, hset_add,
				   &hs);
		if (!ret && !hs.err)
			ret = hset_emit(fs, &hs, cb, priv);
		if (ret || hs.err)
			goto out;
	}
	ret = dx_descend(fs, dir, inode, &c,
			 start < DOTS_END ? 0 : pos_major(start));
	if (!ret)
		leaf = dir_buf_get(fs);
	if (!ret && !leaf)
		ret = -ENOMEM;
	while (!ret && !end) {
		do {
			ret = dx_read_leaf(fs, dir, inode, &c, leaf, &lblk,
					   NULL);
			if (!ret)
				ret = dir_walk_run(fs, dir, leaf, bs,
						   (off_t)lblk * bs, 0,
						   hset_add, &hs);
			if (!ret)
				ret = dx_next(fs, dir, inode, &c, &next, &end);
		} while (!ret && !end && (next & 1));
		if (!ret && !hs.err)
			ret = hset_emit(fs, &hs, cb, priv);
		if (hs.err)
			break;
	}
	/* Too late to list the directory another way without repeats. */
	if (ret == DX_FALLBACK && hs.sent)
		ret = FS_CORRUPT(fs, dir, "bad htree index");
out:
	if (hs.err)
		ret = hs.err;
	dir_buf_put(fs, leaf);
	dx_close(fs, &c);
	hset_free(&hs);
	return ret;
}

/*
 * Calls cb for each entry from cookie start on, in the order dir_read
 * lists: by hash where the directory is (or may become) indexed, else by
 * byte position. Returns 1 if cb stopped, 0 at the end, or -errno.
 */
static int list_walk(struct fs *fs, ext2_ino_t dir,
		     struct ext2_inode_large *inode, off_t start, dent_fn cb,
		     void *priv)
{
	int inl = inode->i_flags & EXT4_INLINE_DATA_FL;
	int version = htree_new_version(fs, inode);
	int ret;

	if (start < 0)
		return 0;
	if (ext2fs_has_feature_dir_index(fs->e2->super) &&
	    (inode->i_flags & EXT2_INDEX_FL) && !inl) {
		if (start >= HPOS_END)
			return 0;
		ret = dx_list(fs, dir, inode, start, cb, priv);
		if (ret != DX_FALLBACK)
			return ret;
	} else if (!inl && fsi_size(inode) != fs->e2->blocksize) {
		version = -1;
	}
	if (version < 0)
		return dir_walk(fs, dir, inode, start, cb, priv);
	if (start >= HPOS_END)
		return 0;
	return hash_list_all(fs, dir, inode, version, start, cb, priv);
}

static unsigned ftype_to_dtype(unsigned ftype)
{
	switch (ftype) {
	case EXT2_FT_REG_FILE:
		return DT_REG;
	case EXT2_FT_DIR:
		return DT_DIR;
	case EXT2_FT_CHRDEV:
		return DT_CHR;
	case EXT2_FT_BLKDEV:
		return DT_BLK;
	case EXT2_FT_FIFO:
		return DT_FIFO;
	case EXT2_FT_SOCK:
		return DT_SOCK;
	case EXT2_FT_SYMLINK:
		return DT_LNK;
	default:
		return DT_UNKNOWN;
	}
}

struct read_ctx {
	int want_attrs;
	dir_fill_fn fill;
	void *ctx;
	unsigned emitted;
	int err; /* an error met after something was already emitted */
};

static int emit(struct fs *fs, void *priv, const struct dent *d)
{
	struct read_ctx *rc = priv;
	struct ext2_inode_large inode;
	struct stat st, *stp = NULL;
	unsigned dtype = ftype_to_dtype(d->ftype);
	int ret;

	if (rc->want_attrs) {
		ret = fsi_read(fs, d->ino, &inode);
		if (ret) {
			rc->err = ret;
			return 1;
		}
		fsi_to_stat(fs, d->ino, &inode, &st);
		dtype = IFTODT(st.st_mode);
		stp = &st;
	}
	if (rc->fill(rc->ctx, d->name, d->namelen, d->ino, dtype, stp, d->next))
		return 1;
	rc->emitted++;
	return 0;
}

int dir_read(struct fs *fs, ext2_ino_t dir, off_t off, int want_attrs,
	     dir_fill_fn fill, void *ctx)
{
	struct read_ctx rc = { want_attrs, fill, ctx, 0, 0 };
	struct ext2_inode_large inode;
	int ret;

	fs_lock(fs);
	ret = dir_read_inode(fs, dir, &inode);
	if (ret)
		goto out;
	/* A removed directory still open lists nothing, as in the VFS. */
	if (!inode.i_links_count) {
		ret = -ENOENT;
		goto out;
	}
	ret = list_walk(fs, dir, &inode, off, emit, &rc);
	if (ret > 0)
		ret = rc.err;
	/*
	 * What was filled before a failure is still worth replying: the next
	 * call starts at the bad entry and reports the error then.
	 */
	if (rc.emitted)
		ret = 0;
out:
	fs_unlock(fs);
	return ret;
}
