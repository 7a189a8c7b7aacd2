/*
 * Directory entries: the walker that validates every on-disk entry, name
 * lookup (by hash through an htree index when the directory has one),
 * finding room for a new entry, in-place rewriting and removal of an
 * entry, and the emptiness test used by rmdir and rename. Listing
 * (readdir and its cookies) is in dir_list.c. Internally entries are
 * always located by byte position: in a block directory lblk * blocksize
 * + the offset in the block; in an inline directory the position the
 * entry will have once libext2fs moves it into a block (".", "..", then
 * the inline area after its 4-byte parent field).
 */
#include <stdlib.h>
#include <string.h>

#include "core/dir_internal.h"

/* Inline byte offset -> cookie: the shift of the inline-to-block move. */
#define INLINE_SHIFT (DOTS_END - EXT4_INLINE_DATA_DOTDOT_SIZE)

struct match {
	const char *name;
	size_t len;
	off_t pos;
	ext2_ino_t ino;
};

/*
 * Whether an entry's name is m's. Names often share a prefix (f000123,
 * IMG_0042): the last byte tells most apart without a call to memcmp.
 */
static inline int same_name(const char *name, unsigned len,
			    const struct match *m)
{
	return len == m->len && name[len - 1] == m->name[len - 1] &&
	       !memcmp(name, m->name, len);
}

/* A dent_fn for name lookups; dir_walk_run does its work in place. */
static int match_name(struct fs *fs, void *priv, const struct dent *d)
{
	struct match *m = priv;

	(void)fs;
	if (!same_name(d->name, d->namelen, m))
		return 0;
	m->pos = d->pos;
	m->ino = d->ino;
	return 1;
}

/* ext2fs_get_rec_len: below 64 KiB blocks rec_len is stored as is. */
static inline unsigned dent_rec_len(struct fs *fs, struct ext2_dir_entry *de)
{
	unsigned rec_len = de->rec_len;

	if (fs->e2->blocksize >= 65536)
		ext2fs_get_rec_len(fs->e2, de, &rec_len);
	return rec_len;
}

/*
 * Walks one run of entries (a block, or one part of an inline directory)
 * whose first byte has cookie `base`, reporting live entries at or after
 * `start`. Returns 1 if cb stopped, 0 at the end of the run, -errno.
 * Name lookups (cb is match_name), the hot path, compare in place rather
 * than through a call and a struct dent per entry.
 */
int dir_walk_run(struct fs *fs, ext2_ino_t dir, char *buf, unsigned len,
		 off_t base, off_t start, dent_fn cb, void *priv)
{
	struct match *m = cb == match_name ? priv : NULL;
	unsigned off = 0;

	while (off < len) {
		struct ext2_dir_entry *de = (void *)(buf + off);
		unsigned rec_len, name_len;
		struct dent d;

		if (len - off < 8)
			return FS_CORRUPT(fs, dir, "directory entry past end");
		rec_len = dent_rec_len(fs, de);
		if (rec_len < EXT2_DIR_REC_LEN(1) || (rec_len & 3) ||
		    rec_len > len - off)
			return FS_CORRUPT(fs, dir, "bad directory rec_len");
		name_len = ext2fs_dirent_name_len(de);
		if (8 + name_len > rec_len)
			return FS_CORRUPT(fs, dir, "directory name_len too big");
		if (de->inode > fs->e2->super->s_inodes_count ||
		    (de->inode && !name_len))
			return FS_CORRUPT(fs, dir, "bad directory entry");
		d.pos = base + off;
		d.next = d.pos + rec_len;
		off += rec_len;
		if (!de->inode || d.pos < start)
			continue;
		if (m) {
			if (!same_name(de->name, name_len, m))
				continue;
			m->pos = d.pos;
			m->ino = de->inode;
			return 1;
		}
		d.ino = de->inode;
		d.ftype = ext2fs_has_feature_filetype(fs->e2->super) ?
				  ext2fs_dirent_file_type(de) : 0;
		d.name = de->name;
		d.namelen = name_len;
		if (cb(fs, priv, &d))
			return 1;
	}
	return 0;
}

static int walk_inline(struct fs *fs, ext2_ino_t dir,
		       struct ext2_inode_large *inode, off_t start, dent_fn cb,
		       void *priv)
{
	size_t size = 0;
	char *buf = NULL;
	errcode_t err;
	struct dent d;
	int ret;

	err = ext2fs_inline_data_size(fs->e2, dir, &size);
	if (err) {
		ret = FS_ERR(fs, err, dir);
		goto out;
	}
	if (size < EXT4_MIN_INLINE_DATA_SIZE) {
		ret = FS_CORRUPT(fs, dir, "short inline directory");
		goto out;
	}
	err = ext2fs_get_mem(size, &buf);
	if (err) {
		ret = FS_ERR(fs, err, dir);
		goto out;
	}
	err = ext2fs_inline_data_get(fs->e2, dir, (struct ext2_inode *)inode,
				     buf, &size);
	if (err) {
		ret = FS_ERR(fs, err, dir);
		goto out;
	}

	ret = 0;
	if (start < EXT2_DIR_REC_LEN(1)) {
		d = (struct dent){ 0, EXT2_DIR_REC_LEN(1), dir, EXT2_FT_DIR,
				   ".", 1 };
		if (cb(fs, priv, &d)) {
			ret = 1;
			goto out;
		}
	}
	if (start < DOTS_END) {
		d = (struct dent){ EXT2_DIR_REC_LEN(1), DOTS_END,
				   ext2fs_le32_to_cpu(inode->i_block[0]),
				   EXT2_FT_DIR, "..", 2 };
		if (!d.ino || d.ino > fs->e2->super->s_inodes_count) {
			ret = FS_CORRUPT(fs, dir, "bad inline parent");
			goto out;
		}
		if (cb(fs, priv, &d)) {
			ret = 1;
			goto out;
		}
	}
	ret = dir_walk_run(fs, dir, buf + EXT4_INLINE_DATA_DOTDOT_SIZE,
			   EXT4_MIN_INLINE_DATA_SIZE -
				   EXT4_INLINE_DATA_DOTDOT_SIZE,
			   DOTS_END, start, cb, priv);
	if (ret || size == EXT4_MIN_INLINE_DATA_SIZE)
		goto out;
	ret = dir_walk_run(fs, dir, buf + EXT4_MIN_INLINE_DATA_SIZE,
			   size - EXT4_MIN_INLINE_DATA_SIZE,
			   EXT4_MIN_INLINE_DATA_SIZE + INLINE_SHIFT, start, cb,
			   priv);
out:
	ext2fs_free_mem(&buf);
	return ret;
}

/* The number of blocks a block directory spans, checked against i_blocks. */
static int dir_nblocks(struct fs *fs, ext2_ino_t dir,
		       const struct ext2_inode_large *inode, uint64_t *nblocks)
{
	ext2_filsys e2 = fs->e2;
	unsigned bs = e2->blocksize;
	uint64_t held;

	held = ext2fs_get_stat_i_blocks(e2, (struct ext2_inode *)inode) /
	       (bs / 512);
	*nblocks = fsi_size(inode) / bs;
	/*
	 * A size beyond the blocks the directory holds would have us map
	 * (and skip) holes for as long as the lie is big.
	 */
	if (*nblocks > held || *nblocks > ext2fs_blocks_count(e2->super))
		return FS_CORRUPT(fs, dir, "directory size beyond its blocks");
	return 0;
}

/*
 * Block buffers for directory walks, kept for reuse: a block-sized malloc
 * and free per walk (and three per htree cursor) showed in the server's
 * profile of every lookup. NULL without memory.
 */
char *dir_buf_get(struct fs *fs)
{
	char *buf = NULL;

	if (fs->dir_nbufs)
		return fs->dir_bufs[--fs->dir_nbufs];
	if (ext2fs_get_mem(fs->e2->blocksize, &buf))
		return NULL;
	return buf;
}

void dir_buf_put(struct fs *fs, char *buf)
{
	if (buf && fs->dir_nbufs < FS_DIR_BUFS)
		fs->dir_bufs[fs->dir_nbufs++] = buf;
	else
		ext2fs_free_mem(&buf);
}

void dir_bufs_fini(struct fs *fs)
{
	while (fs->dir_nbufs)
		ext2fs_free_mem(&fs->dir_bufs[--fs->dir_nbufs]);
}

/*
 * Reads logical block lblk of a directory into buf, checksum verified.
 * Returns 0, 1 for a hole (buf untouched), or -errno.
 */
static int read_lblk(struct fs *fs, ext2_ino_t dir,
		     struct ext2_inode_large *inode, blk64_t lblk, char *buf,
		     blk64_t *pblkp)
{
	struct bmap m;
	int ret;

	/* The mapping cache spares an extent-tree walk per block read. */
	ret = iomap_map_blocks(fs, dir, inode, lblk, 1, &m);
	if (ret)
		return ret;
	if (m.type != IOMAP_MAPPED)
		return 1;
	ret = dir_read_block(fs, dir, inode->i_generation, m.pblk, buf);
	if (ret)
		return ret;
	if (pblkp)
		*pblkp = m.pblk;
	return 0;
}

/*
 * Walks the blocks of a block directory. When cb stops the walk and keep
 * is given, the block it stopped in is handed over in keep (the caller
 * then owns keep->buf).
 */
static int walk_blocks(struct fs *fs, ext2_ino_t dir,
		       struct ext2_inode_large *inode, off_t start, dent_fn cb,
		       void *priv, struct dir_slot *keep)
{
	unsigned bs = fs->e2->blocksize;
	uint64_t nblocks;
	blk64_t lblk, pblk = 0;
	char *buf;
	int ret;

	ret = dir_nblocks(fs, dir, inode, &nblocks);
	if (ret)
		return ret;
	buf = dir_buf_get(fs);
	if (!buf)
		return FS_ERR(fs, EXT2_ET_NO_MEMORY, dir);
	for (lblk = start / bs; lblk < nblocks; lblk++) {
		ret = read_lblk(fs, dir, inode, lblk, buf, &pblk);
		if (ret > 0) {
			ret = 0;
			continue;
		}
		if (!ret)
			ret = dir_walk_run(fs, dir, buf, bs, (off_t)lblk * bs,
					   start, cb, priv);
		if (ret)
			break;
	}
	if (ret == 1 && keep) {
		keep->buf = buf;
		keep->pblk = pblk;
		buf = NULL;
	}
	dir_buf_put(fs, buf);
	return ret;
}

/*
 * Calls cb for each live entry of the directory whose inode is given, from
 * cookie `start` on. Returns 1 if cb stopped the walk, 0 at the end, or
 * -errno (-EFSCORRUPTED for a damaged directory).
 */
int dir_walk(struct fs *fs, ext2_ino_t dir, struct ext2_inode_large *inode,
	     off_t start, dent_fn cb, void *priv)
{
	if (start < 0)
		return 0;
	if (inode->i_flags & EXT4_INLINE_DATA_FL)
		return walk_inline(fs, dir, inode, start, cb, priv);
	return walk_blocks(fs, dir, inode, start, cb, priv, NULL);
}

/* Reads dir's inode: -ENOTDIR unless it is a directory. */
int dir_read_inode(struct fs *fs, ext2_ino_t dir,
		   struct ext2_inode_large *inode)
{
	int ret = fsi_read(fs, dir, inode);

	if (ret)
		return ret;
	if (!LINUX_S_ISDIR(inode->i_mode))
		return -ENOTDIR;
	return 0;
}

/* Parses the count/limit header of an index node at byte off of its block. */
static int dx_node(struct fs *fs, struct dx_frame *f, unsigned off)
{
	unsigned bs = fs->e2->blocksize;
	struct ext2_dx_countlimit *cl = (void *)(f->buf + off);
	unsigned limit, count;

	if (off + sizeof(*cl) > bs)
		return DX_FALLBACK;
	limit = ext2fs_le16_to_cpu(cl->limit);
	count = ext2fs_le16_to_cpu(cl->count);
	if (!count || count > limit ||
	    limit > (bs - off) / sizeof(struct ext2_dx_entry))
		return DX_FALLBACK;
	f->entries = (void *)cl;
	f->count = count;
	return 0;
}

/* The last entry whose hash is <= hash (entry 0 stands for hash 0). */
static unsigned dx_search(const struct dx_frame *f, __u32 hash)
{
	unsigned lo = 1, hi = f->count;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (ext2fs_le32_to_cpu(f->entries[mid].hash) > hash)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo - 1;
}

static blk64_t dx_child(const struct dx_frame *f)
{
	return ext2fs_le32_to_cpu(f->entries[f->at].block) & EXT4_DX_BLOCK_MASK;
}

/*
 * Reads index node `lblk` into f at tree depth `level` (0: the root).
 * Returns 0, DX_FALLBACK for a malformed node, or -errno.
 */
static int dx_load(struct fs *fs, ext2_ino_t dir,
		   struct ext2_inode_large *inode, uint64_t nblocks,
		   blk64_t lblk, struct dx_frame *f, int level)
{
	int ret;

	if (lblk >= nblocks)
		return DX_FALLBACK;
	ret = read_lblk(fs, dir, inode, lblk, f->buf, NULL);
	if (ret)
		return ret < 0 ? ret : DX_FALLBACK;
	if (level) {
		struct ext2_dir_entry *de = (void *)f->buf;
		unsigned rec_len;

		if (de->inode || ext2fs_get_rec_len(fs->e2, de, &rec_len) ||
		    rec_len != fs->e2->blocksize)
			return DX_FALLBACK;
		return dx_node(fs, f, 8);
	}
	return 0;
}

void dx_close(struct fs *fs, struct dx_cursor *c)
{
	unsigned i;

	for (i = 0; i < EXT4_HTREE_LEVEL; i++)
		dir_buf_put(fs, c->fr[i].buf);
}

/*
 * Reads and checks the index root of a directory. Returns 0, DX_FALLBACK
 * for a root we cannot use, or -errno; dx_close in every case.
 */
int dx_open(struct fs *fs, ext2_ino_t dir, struct ext2_inode_large *inode,
	    struct dx_cursor *c)
{
	ext2_filsys e2 = fs->e2;
	struct ext2_dx_root_info *root;
	unsigned i;
	int ret;

	memset(c, 0, sizeof(*c));
	ret = dir_nblocks(fs, dir, inode, &c->nblocks);
	if (ret)
		return ret;
	for (i = 0; i < EXT4_HTREE_LEVEL; i++) {
		c->fr[i].buf = dir_buf_get(fs);
		if (!c->fr[i].buf)
			return -ENOMEM;
	}
	ret = dx_load(fs, dir, inode, c->nblocks, 0, &c->fr[0], 0);
	if (ret)
		return ret;
	root = (void *)(c->fr[0].buf + DOTS_END);
	c->levels = root->indirect_levels;
	c->version = htree_version(fs, inode, root->hash_version);
	if (root->info_length != sizeof(*root) ||
	    c->levels >= ext2_dir_htree_level(e2) || c->version < 0)
		return DX_FALLBACK;
	return dx_node(fs, &c->fr[0], DOTS_END + sizeof(*root));
}

/* Walks down from the root to the leaf whose hash range holds hash. */
int dx_descend(struct fs *fs, ext2_ino_t dir, struct ext2_inode_large *inode,
	       struct dx_cursor *c, __u32 hash)
{
	unsigned i;
	int ret;

	c->fr[0].at = dx_search(&c->fr[0], hash);
	for (i = 1; i <= c->levels; i++) {
		ret = dx_load(fs, dir, inode, c->nblocks,
			      dx_child(&c->fr[i - 1]), &c->fr[i], i);
		if (ret)
			return ret;
		c->fr[i].at = dx_search(&c->fr[i], hash);
	}
	return 0;
}

/* Reads the leaf the cursor is on into buf, setting *lblk and *pblk. */
int dx_read_leaf(struct fs *fs, ext2_ino_t dir, struct ext2_inode_large *inode,
		 struct dx_cursor *c, char *buf, blk64_t *lblk, blk64_t *pblk)
{
	int ret;

	*lblk = dx_child(&c->fr[c->levels]);
	/* Block 0 is the root: a leaf there is a damaged index. */
	if (!*lblk || *lblk >= c->nblocks || ++c->visited > c->nblocks)
		return DX_FALLBACK;
	ret = read_lblk(fs, dir, inode, *lblk, buf, pblk);
	return ret > 0 ? DX_FALLBACK : ret;
}

/*
 * Steps to the next leaf in hash order, climbing as far as needed. Sets
 * *hash to the index hash it starts at, or *end at the last leaf.
 */
int dx_next(struct fs *fs, ext2_ino_t dir, struct ext2_inode_large *inode,
	    struct dx_cursor *c, __u32 *hash, int *end)
{
	unsigned i;
	int p, ret;

	for (p = c->levels; p >= 0 && ++c->fr[p].at >= c->fr[p].count; p--)
		;
	*end = p < 0;
	if (*end)
		return 0;
	*hash = ext2fs_le32_to_cpu(c->fr[p].entries[c->fr[p].at].hash);
	for (i = p + 1; i <= c->levels; i++) {
		ret = dx_load(fs, dir, inode, c->nblocks,
			      dx_child(&c->fr[i - 1]), &c->fr[i], i);
		if (ret)
			return ret;
		c->fr[i].at = 0;
	}
	return 0;
}

/*
 * Looks name up through the htree: descends by hash to a leaf, searches
 * it, and follows the next leaves while they continue the same hash.
 * Returns 1 found (m filled; the leaf handed over in keep if given), 0
 * absent, DX_FALLBACK, or -errno.
 */
static int dx_find(struct fs *fs, ext2_ino_t dir,
		   struct ext2_inode_large *inode, struct match *m,
		   struct dir_slot *keep)
{
	unsigned bs = fs->e2->blocksize;
	struct dx_cursor c;
	__u32 hash, minor, next;
	char *leaf = NULL;
	blk64_t lblk, pblk = 0;
	int ret, end;

	ret = dx_open(fs, dir, inode, &c);
	if (!ret)
		ret = htree_hash(fs, dir, inode, c.version, m->name, m->len,
				 &hash, &minor);
	if (!ret)
		ret = dx_descend(fs, dir, inode, &c, hash);
	if (!ret)
		leaf = dir_buf_get(fs);
	if (!ret && !leaf)
		ret = -ENOMEM;
	while (!ret) {
		ret = dx_read_leaf(fs, dir, inode, &c, leaf, &lblk, &pblk);
		if (!ret)
			ret = dir_walk_run(fs, dir, leaf, bs, (off_t)lblk * bs,
					   0, match_name, m);
		if (!ret)
			ret = dx_next(fs, dir, inode, &c, &next, &end);
		if (!ret && (end || (next & ~1u) != hash))
			break;
	}
	if (ret == 1 && keep) {
		keep->buf = leaf;
		keep->pblk = pblk;
		leaf = NULL;
	}
	dir_buf_put(fs, leaf);
	dx_close(fs, &c);
	return ret;
}

/*
 * Finds name in the directory whose inode is given: by hash when it is
 * indexed ("." and ".." live in block 0, outside the index). Returns 1
 * found (m->pos, m->ino; in a block directory the block holding the entry
 * is handed over in keep if given), 0 absent, or -errno.
 */
static int find_name(struct fs *fs, ext2_ino_t dir,
		     struct ext2_inode_large *inode, struct match *m,
		     struct dir_slot *keep)
{
	int ret;

	if (ext2fs_has_feature_dir_index(fs->e2->super) &&
	    (inode->i_flags & EXT2_INDEX_FL) &&
	    !(inode->i_flags & EXT4_INLINE_DATA_FL) &&
	    !(m->name[0] == '.' &&
	      (m->len == 1 || (m->len == 2 && m->name[1] == '.')))) {
		ret = dx_find(fs, dir, inode, m, keep);
		if (ret != DX_FALLBACK)
			return ret;
	}
	if (inode->i_flags & EXT4_INLINE_DATA_FL)
		return walk_inline(fs, dir, inode, 0, match_name, m);
	return walk_blocks(fs, dir, inode, 0, match_name, m, keep);
}

int dir_lookup(struct fs *fs, ext2_ino_t dir, const char *name, size_t len,
	       ext2_ino_t *ino)
{
	struct ext2_inode_large inode;
	struct match m = { name, len, 0, 0 };
	int ret;

	ret = dir_read_inode(fs, dir, &inode);
	if (ret)
		return ret;
	ret = find_name(fs, dir, &inode, &m, NULL);
	if (ret < 0)
		return ret;
	if (!ret)
		return -ENOENT;
	*ino = m.ino;
	return 0;
}

void dir_slot_release(struct fs *fs, struct dir_slot *s)
{
	dir_buf_put(fs, s->buf);
	s->buf = NULL;
}

int dir_find(struct fs *fs, ext2_ino_t dir, struct ext2_inode_large *inode,
	     const char *name, size_t len, struct dir_slot *s)
{
	struct match m = { name, len, 0, 0 };
	int ret;

	memset(s, 0, sizeof(*s));
	s->gen = inode->i_generation;
	ret = find_name(fs, dir, inode, &m, s);
	if (ret < 0)
		return ret;
	if (!ret)
		return -ENOENT;
	s->pos = m.pos;
	s->ino = m.ino;
	return 0;
}

/*
 * The offset in a block of a linear directory of the first entry that can
 * take a name of len bytes: an unused one big enough, or a used one with
 * that much room after its own name, as ext2fs_link and ext4 pick it.
 * -1 if none, or if a metadata_csum block lacks its checksum tail (then
 * ext2fs_link decides). dir_walk_run has validated the block's entries.
 */
static int block_room(struct fs *fs, char *buf, size_t len)
{
	ext2_filsys e2 = fs->e2;
	unsigned end = e2->blocksize, need = EXT2_DIR_REC_LEN(len);
	unsigned off = 0, rec_len, used;
	int room = -1;

	if (ext2fs_has_feature_metadata_csum(e2->super)) {
		struct ext2_dir_entry_tail *t =
			(void *)(buf + end - sizeof(*t));

		if (t->det_reserved_zero1 ||
		    ext2fs_le16_to_cpu(t->det_rec_len) != sizeof(*t) ||
		    ext2fs_le16_to_cpu(t->det_reserved_name_len) !=
			    EXT2_DIR_NAME_LEN_CSUM)
			return -1;
		end -= sizeof(*t);
	}
	while (off < end) {
		struct ext2_dir_entry *de = (void *)(buf + off);

		if (ext2fs_get_rec_len(e2, de, &rec_len) || rec_len > end - off)
			return -1;
		used = 0;
		if (de->inode)
			used = EXT2_DIR_REC_LEN(ext2fs_dirent_name_len(de));
		if (room < 0 && rec_len >= used + need)
			room = off;
		off += rec_len;
	}
	return room;
}

/*
 * Searches a linear block directory for m's name and, while it is not
 * found, for the first block with room for it, kept in room. Returns 1
 * found (room released), 0 absent, or -errno.
 */
static int find_room(struct fs *fs, ext2_ino_t dir,
		     struct ext2_inode_large *inode, struct match *m,
		     struct dir_slot *room)
{
	unsigned bs = fs->e2->blocksize;
	uint64_t nblocks;
	blk64_t lblk, pblk = 0;
	char *buf = NULL;
	int ret, off;

	ret = dir_nblocks(fs, dir, inode, &nblocks);
	for (lblk = 0; !ret && lblk < nblocks; lblk++) {
		if (!buf)
			buf = dir_buf_get(fs);
		if (!buf) {
			ret = -ENOMEM;
			break;
		}
		ret = read_lblk(fs, dir, inode, lblk, buf, &pblk);
		if (ret > 0) {
			ret = 0;
			continue;
		}
		if (!ret)
			ret = dir_walk_run(fs, dir, buf, bs, (off_t)lblk * bs,
					   0, match_name, m);
		if (ret || room->buf)
			continue;
		off = block_room(fs, buf, m->len);
		if (off < 0)
			continue;
		/* Later blocks still need a search for the name. */
		room->buf = buf;
		room->pblk = pblk;
		room->pos = (off_t)lblk * bs + off;
		buf = NULL;
	}
	dir_buf_put(fs, buf);
	if (ret)
		dir_slot_release(fs, room);
	return ret;
}

int dir_check_free(struct fs *fs, ext2_ino_t dir,
		   struct ext2_inode_large *inode, const char *name, size_t len,
		   struct dir_slot *room)
{
	struct match m = { name, len, 0, 0 };
	int ret;

	memset(room, 0, sizeof(*room));
	room->gen = inode->i_generation;
	/* ext2fs_link inserts into indexed and inline directories. */
	if (inode->i_flags & (EXT2_INDEX_FL | EXT4_INLINE_DATA_FL))
		ret = find_name(fs, dir, inode, &m, NULL);
	else
		ret = find_room(fs, dir, inode, &m, room);
	if (ret == 1) {
		room->pos = m.pos;
		room->ino = m.ino;
	}
	return ret;
}

int dir_slot_insert(struct fs *fs, ext2_ino_t dir, struct dir_slot *room,
		    const char *name, size_t len, ext2_ino_t ino,
		    unsigned ftype)
{
	ext2_filsys e2 = fs->e2;
	struct ext2_dir_entry *de =
		(void *)(room->buf + room->pos % e2->blocksize);
	unsigned rec_len, used;
	errcode_t err;

	err = ext2fs_get_rec_len(e2, de, &rec_len);
	if (!err && de->inode) {
		/* A used entry gives up what lies past its own name. */
		used = EXT2_DIR_REC_LEN(ext2fs_dirent_name_len(de));
		err = ext2fs_set_rec_len(e2, used, de);
		de = (void *)((char *)de + used);
		if (!err)
			err = ext2fs_set_rec_len(e2, rec_len - used, de);
	}
	if (err)
		return FS_ERR(fs, err, dir);
	de->inode = ino;
	de->name_len = 0;
	ext2fs_dirent_set_name_len(de, len);
	if (ext2fs_has_feature_filetype(e2->super))
		ext2fs_dirent_set_file_type(de, ftype);
	memcpy(de->name, name, len);
	return dir_write_block(fs, dir, room->gen, room->pblk, room->buf);
}

/*
 * Changes the entry at byte off of a run of entries: points it at `to`,
 * or removes it (to == 0) the way ext4 does: merged into the entry before
 * it in the run, or emptied when it is the first.
 */
static int change_in_run(struct fs *fs, ext2_ino_t dir, char *buf,
			 unsigned len, unsigned off, ext2_ino_t to,
			 unsigned ftype)
{
	struct ext2_dir_entry *de, *prev = NULL;
	unsigned pos = 0, rec_len, prev_len = 0;

	/* dir_walk_run validated this run: the rec_len chain is sound. */
	for (;;) {
		de = (void *)(buf + pos);
		if (pos >= len || ext2fs_get_rec_len(fs->e2, de, &rec_len))
			return FS_CORRUPT(fs, dir, "directory entry moved");
		if (pos == off)
			break;
		prev = de;
		prev_len = rec_len;
		pos += rec_len;
	}
	if (to) {
		de->inode = to;
		if (ext2fs_has_feature_filetype(fs->e2->super))
			ext2fs_dirent_set_file_type(de, ftype);
		return 0;
	}
	if (prev)
		return FS_ERR(fs, ext2fs_set_rec_len(fs->e2, prev_len + rec_len,
						     prev), dir);
	de->inode = 0;
	return 0;
}

static int set_entry_inline(struct fs *fs, ext2_ino_t dir,
			    struct ext2_inode_large *inode, off_t pos,
			    ext2_ino_t to, unsigned ftype)
{
	size_t size = 0, off = pos - INLINE_SHIFT;
	char *buf = NULL;
	errcode_t err;
	int ret;

	if (pos < DOTS_END) {
		/* ".." is the 4-byte parent field, "." is implicit. */
		if (pos < EXT2_DIR_REC_LEN(1) || !to)
			return -EINVAL;
		inode->i_block[0] = ext2fs_cpu_to_le32(to);
		return fsi_write(fs, dir, inode);
	}
	err = ext2fs_inline_data_size(fs->e2, dir, &size);
	if (!err)
		err = ext2fs_get_mem(size, &buf);
	if (!err)
		err = ext2fs_inline_data_get(fs->e2, dir,
					     (struct ext2_inode *)inode, buf,
					     &size);
	if (err) {
		ret = FS_ERR(fs, err, dir);
		goto out;
	}
	if (off < EXT4_MIN_INLINE_DATA_SIZE)
		ret = change_in_run(fs, dir, buf + EXT4_INLINE_DATA_DOTDOT_SIZE,
				    EXT4_MIN_INLINE_DATA_SIZE -
					    EXT4_INLINE_DATA_DOTDOT_SIZE,
				    off - EXT4_INLINE_DATA_DOTDOT_SIZE, to,
				    ftype);
	else
		ret = change_in_run(fs, dir, buf + EXT4_MIN_INLINE_DATA_SIZE,
				    size - EXT4_MIN_INLINE_DATA_SIZE,
				    off - EXT4_MIN_INLINE_DATA_SIZE, to, ftype);
	if (!ret)
		ret = FS_ERR(fs, ext2fs_inline_data_set(fs->e2, dir, NULL, buf,
							size), dir);
out:
	ext2fs_free_mem(&buf);
	return ret;
}

int dir_slot_set(struct fs *fs, ext2_ino_t dir, struct ext2_inode_large *inode,
		 struct dir_slot *s, ext2_ino_t to, unsigned ftype)
{
	unsigned bs = fs->e2->blocksize;
	int ret;

	if (inode->i_flags & EXT4_INLINE_DATA_FL)
		return set_entry_inline(fs, dir, inode, s->pos, to, ftype);
	if (!s->buf)
		return -EINVAL;
	ret = change_in_run(fs, dir, s->buf, bs, s->pos % bs, to, ftype);
	if (ret)
		return ret;
	return dir_write_block(fs, dir, s->gen, s->pblk, s->buf);
}

int dir_set_entry(struct fs *fs, ext2_ino_t dir, const char *name,
		  size_t len, ext2_ino_t from, ext2_ino_t to, unsigned ftype)
{
	struct ext2_inode_large inode;
	struct dir_slot s;
	int ret;

	ret = dir_read_inode(fs, dir, &inode);
	if (ret)
		return ret;
	ret = dir_find(fs, dir, &inode, name, len, &s);
	if (!ret && s.ino != from)
		ret = -ENOENT;
	if (!ret)
		ret = dir_slot_set(fs, dir, &inode, &s, to, ftype);
	dir_slot_release(fs, &s);
	return ret;
}

int dent_is_dots(const struct dent *d)
{
	return d->name[0] == '.' &&
	       (d->namelen == 1 || (d->namelen == 2 && d->name[1] == '.'));
}

static int find_other(struct fs *fs, void *priv, const struct dent *d)
{
	(void)fs;
	(void)priv;
	return !dent_is_dots(d);
}

int dir_is_empty(struct fs *fs, ext2_ino_t dir)
{
	struct ext2_inode_large inode;
	int ret;

	ret = dir_read_inode(fs, dir, &inode);
	if (ret)
		return ret;
	ret = dir_walk(fs, dir, &inode, 0, find_other, NULL);
	if (ret < 0)
		return ret;
	return ret ? -ENOTEMPTY : 0;
}
