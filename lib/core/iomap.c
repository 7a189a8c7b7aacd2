/*
 * The iomap engine over libext2fs: turns extent records (or block maps of
 * ext2/ext3 files) into byte-addressed mappings, allocates holes for
 * writes as unwritten extents, and converts them to written once the data
 * is on the device. Every mapping handed out is checked to lie inside the
 * filesystem: the executor writes where we say, so we never say garbage.
 */
#include <string.h>

#include "core/iomap.h"

#define EXTENT_INIT_MAX 32768u /* longest initialized extent ext4 allows */

static int pblk_range_ok(struct fs *fs, blk64_t pblk, blk64_t count)
{
	struct ext2_super_block *sb = fs->e2->super;

	return pblk >= sb->s_first_data_block && count &&
	       pblk + count > pblk && pblk + count <= ext2fs_blocks_count(sb);
}

/* Extent-mapped files: the extent containing lblk, or the hole there. */
static int map_extent(struct fs *fs, ext2_ino_t ino,
		      struct ext2_inode_large *inode, blk64_t lblk,
		      struct bmap *m)
{
	ext2_extent_handle_t h;
	struct ext2fs_extent ext;
	errcode_t err;
	int ret = 0;

	err = ext2fs_extent_open2(fs->e2, ino, (struct ext2_inode *)inode, &h);
	if (err)
		return FS_ERR(fs, err, ino);
	m->lblk = lblk;
	m->pblk = 0;
	m->type = IOMAP_HOLE;
	m->count = ~0ULL;
	err = ext2fs_extent_goto2(h, 0, lblk);
	if (err && err != EXT2_ET_EXTENT_NOT_FOUND) {
		if (err == EXT2_ET_EXTENT_NO_NEXT)
			goto out; /* empty tree: all hole */
		ret = FS_ERR(fs, err, ino);
		goto out;
	}
	err = ext2fs_extent_get(h, EXT2_EXTENT_CURRENT, &ext);
	if (err) {
		if (err != EXT2_ET_NO_CURRENT_NODE &&
		    err != EXT2_ET_EXTENT_NO_NEXT)
			ret = FS_ERR(fs, err, ino);
		goto out;
	}
	if (!(ext.e_flags & EXT2_EXTENT_FLAGS_LEAF) || !ext.e_len) {
		ret = FS_CORRUPT(fs, ino, "bad extent");
		goto out;
	}
	if (ext.e_lblk <= lblk && lblk < ext.e_lblk + ext.e_len) {
		if (!pblk_range_ok(fs, ext.e_pblk, ext.e_len)) {
			ret = FS_CORRUPT(fs, ino, "extent outside filesystem");
			goto out;
		}
		m->pblk = ext.e_pblk + (lblk - ext.e_lblk);
		m->count = ext.e_len - (lblk - ext.e_lblk);
		m->type = (ext.e_flags & EXT2_EXTENT_FLAGS_UNINIT) ?
				  IOMAP_UNWRITTEN :
				  IOMAP_MAPPED;
		goto out;
	}
	if (ext.e_lblk > lblk) {
		m->count = ext.e_lblk - lblk;
		goto out;
	}
	/* The extent ends before lblk: the hole runs to the next one. */
	err = ext2fs_extent_get(h, EXT2_EXTENT_NEXT_LEAF, &ext);
	if (!err && ext.e_lblk > lblk)
		m->count = ext.e_lblk - lblk;
out:
	ext2fs_extent_free(h);
	return ret;
}

/*
 * A hole in a block map at lblk: how many blocks from lblk on are surely
 * a hole too, judging by the missing indirect block (or the run of zero
 * pointers) that makes lblk one. At least 1. Lets SEEK_DATA cross a
 * terabyte of hole in a few lookups instead of one per block.
 */
static blk64_t blockmap_hole_span(struct fs *fs,
				  const struct ext2_inode_large *inode,
				  blk64_t lblk)
{
	ext2_filsys e2 = fs->e2;
	blk64_t per = e2->blocksize / sizeof(blk_t);
	blk64_t base = EXT2_NDIR_BLOCKS, span = per, n = 1;
	blk_t b, *buf = NULL;
	int level;

	if (lblk < EXT2_NDIR_BLOCKS)
		return 1;
	for (level = 0; level < 3 && lblk >= base + span; level++) {
		base += span;
		span *= per;
	}
	if (level == 3)
		return 1;
	b = inode->i_block[EXT2_IND_BLOCK + level];
	if (ext2fs_get_mem(e2->blocksize, &buf))
		return 1;
	for (;;) {
		blk64_t child = span / per, i;

		if (!b) {
			n = base + span - lblk;
			break;
		}
		if (b < e2->super->s_first_data_block ||
		    b >= ext2fs_blocks_count(e2->super) ||
		    ext2fs_read_ind_block(e2, b, buf))
			break; /* the lookup proper reports it */
		i = (lblk - base) / child;
		if (child == 1) {
			/* A leaf: count the zero pointers from lblk on. */
			for (n = 0; i + n < per && !buf[i + n]; n++)
				;
			if (!n)
				n = 1;
			break;
		}
		base += i * child;
		span = child;
		b = buf[i];
	}
	ext2fs_free_mem(&buf);
	return n;
}

/*
 * Block-mapped files: merge physically contiguous blocks, up to limit; a
 * hole is reported as far as it surely goes.
 */
static int map_blockmap(struct fs *fs, ext2_ino_t ino,
			struct ext2_inode_large *inode, blk64_t lblk,
			blk64_t limit, struct bmap *m)
{
	blk64_t pblk, next;
	errcode_t err;

	m->lblk = lblk;
	m->pblk = 0;
	m->count = 0;
	for (next = lblk; next < lblk + limit; next++) {
		err = ext2fs_bmap2(fs->e2, ino, (struct ext2_inode *)inode,
				   NULL, 0, next, NULL, &pblk);
		if (err)
			return FS_ERR(fs, err, ino);
		if (next == lblk && !pblk) {
			m->type = IOMAP_HOLE;
			m->count = blockmap_hole_span(fs, inode, lblk);
			return 0;
		}
		if (next == lblk) {
			m->type = IOMAP_MAPPED;
			m->pblk = pblk;
		} else if (pblk != m->pblk + m->count) {
			break;
		}
		m->count++;
	}
	if (m->type == IOMAP_MAPPED && !pblk_range_ok(fs, m->pblk, m->count))
		return FS_CORRUPT(fs, ino, "block map outside filesystem");
	return 0;
}

int iomap_map_blocks(struct fs *fs, ext2_ino_t ino,
		     struct ext2_inode_large *inode, blk64_t lblk,
		     blk64_t want, struct bmap *m)
{
	int ret;

	if (map_cache_find(fs, ino, inode, lblk, m))
		return 0;
	if (inode->i_flags & EXT4_EXTENTS_FL) {
		ret = map_extent(fs, ino, inode, lblk, m);
	} else {
		/*
		 * Indirect maps cost a lookup per block: look ahead of the
		 * request only for sequential IO, where the cache saves the
		 * next lookups.
		 */
		if (want > 1024 || map_cache_follows(fs, ino, inode, lblk))
			want = 1024;
		ret = map_blockmap(fs, ino, inode, lblk, want, m);
	}
	if (!ret)
		map_cache_add(fs, ino, inode, m);
	return ret;
}

#define EXTENT_UNINIT_MAX 32767u /* longest unwritten extent ext4 allows */

/*
 * Allocates up to count blocks for the hole at lblk of an extent-mapped
 * file and maps them as one unwritten extent. ext2fs_fallocate is not
 * used: it fills more of the hole than asked, so a 4 KiB write into a
 * sparse file could allocate megabytes.
 */
static int alloc_extent(struct fs *fs, ext2_ino_t ino,
			struct ext2_inode_large *inode, blk64_t lblk,
			blk64_t count)
{
	ext2_filsys e2 = fs->e2;
	ext2_extent_handle_t h;
	struct ext2fs_extent cur, ext;
	blk64_t goal, pblk, plen;
	int flags = EXT2_EXTENT_INSERT_AFTER;
	errcode_t err;
	int ret;

	if (count > EXTENT_UNINIT_MAX)
		count = EXTENT_UNINIT_MAX;
	goal = iomap_alloc_goal(fs, ino, inode, lblk);
	err = ext2fs_new_range(e2, 0, goal, count, NULL, &pblk, &plen);
	if (err == EXT2_ET_BLOCK_ALLOC_FAIL && goal > e2->super->s_first_data_block)
		err = ext2fs_new_range(e2, 0, e2->super->s_first_data_block,
				       count, NULL, &pblk, &plen);
	if (err)
		return FS_ERR(fs, err, ino);
	ext2fs_block_alloc_stats_range(e2, pblk, plen, +1);

	err = ext2fs_extent_open2(e2, ino, (struct ext2_inode *)inode, &h);
	if (err)
		goto fail;
	/* The handle ends up on the extent before lblk, or after it. */
	err = ext2fs_extent_goto2(h, 0, lblk);
	if (err == EXT2_ET_EXTENT_NOT_FOUND || err == EXT2_ET_EXTENT_NO_NEXT)
		err = 0;
	if (!err && ext2fs_extent_get(h, EXT2_EXTENT_CURRENT, &cur))
		flags = 0; /* empty tree */
	else if (!err && cur.e_lblk > lblk)
		flags = 0; /* insert before the first extent */
	ext.e_lblk = lblk;
	ext.e_pblk = pblk;
	ext.e_len = plen;
	ext.e_flags = EXT2_EXTENT_FLAGS_UNINIT;
	if (!err)
		err = ext2fs_extent_insert(h, flags, &ext);
	if (!err)
		err = ext2fs_extent_fix_parents(h);
	ext2fs_extent_free(h);
	if (err)
		goto fail;
	err = ext2fs_iblk_add_blocks(e2, (struct ext2_inode *)inode, plen);
	ret = fsi_write(fs, ino, inode);
	return err ? FS_ERR(fs, err, ino) : ret;
fail:
	ext2fs_block_alloc_stats_range(e2, pblk, plen, -1);
	/* The handle may have edited *inode (tree depth) before failing. */
	fsi_write(fs, ino, inode);
	return FS_ERR(fs, err, ino);
}

static int alloc_blocks(struct fs *fs, ext2_ino_t ino,
			struct ext2_inode_large *inode, blk64_t lblk,
			blk64_t count)
{
	errcode_t err;
	int ret;

	map_cache_forget(fs, ino);
	if (inode->i_flags & EXT4_EXTENTS_FL)
		return alloc_extent(fs, ino, inode, lblk, count);
	/* Block maps: fallocate updates *inode in place; save it. */
	err = ext2fs_fallocate(fs->e2, EXT2_FALLOCATE_FORCE_INIT, ino,
			       (struct ext2_inode *)inode, ~0ULL, lblk, count);
	ret = fsi_write(fs, ino, inode);
	if (err)
		return FS_ERR(fs, err, ino);
	return ret;
}

int iomap_begin(struct fs *fs, ext2_ino_t ino, uint64_t pos, uint64_t len,
		enum iomap_op op, struct iomap *map)
{
	uint64_t bs = fs->e2->blocksize;
	struct ext2_inode_large inode;
	blk64_t lblk = pos / bs, want;
	struct bmap m;
	int ret;

	if (!len)
		len = 1;
	want = (pos + len + bs - 1) / bs - lblk;
	memset(map, 0, sizeof(*map));
	ret = fsi_read(fs, ino, &inode);
	if (ret)
		return ret;
	if (inode.i_flags & EXT4_INLINE_DATA_FL) {
		map->type = IOMAP_INLINE;
		map->length = fsi_size(&inode);
		return 0;
	}
	if (op == IOMAP_OP_WRITE && pos + len > file_max_size(fs, &inode))
		return -EFBIG;
	ret = iomap_map_blocks(fs, ino, &inode, lblk, want, &m);
	if (ret)
		return ret;
	if (op == IOMAP_OP_WRITE && m.type == IOMAP_HOLE) {
		blk64_t count = m.count < want ? m.count : want;

		ret = alloc_blocks(fs, ino, &inode, lblk, count);
		if (ret && ret != -ENOSPC)
			return ret;
		/* On ENOSPC, use whatever part did get allocated. */
		ret = iomap_map_blocks(fs, ino, &inode, lblk, count, &m) ?: ret;
		if (m.type == IOMAP_HOLE)
			return ret ? ret : -ENOSPC;
		ret = 0;
		map->flags |= IOMAP_F_NEW;
		if (m.count > count)
			m.count = count;
		/*
		 * A block map may have come out in several runs: keep the
		 * first, give the rest back, so that every block this
		 * mapping does not cover is still a hole (the next call
		 * allocates it again and reports it NEW, to be zeroed).
		 */
		if (m.count < count)
			ret = iomap_punch(fs, ino, (lblk + m.count) * bs,
					  (lblk + count) * bs);
		if (ret)
			return ret;
	}
	map->type = m.type;
	map->offset = lblk * bs;
	map->length = m.count > (~0ULL - map->offset) / bs ?
			      ~0ULL - map->offset :
			      m.count * bs;
	if (m.type == IOMAP_MAPPED || m.type == IOMAP_UNWRITTEN)
		map->addr = m.pblk * bs;
	return 0;
}

int iomap_end(struct fs *fs, ext2_ino_t ino, const struct iomap *map)
{
	if (!(map->flags & IOMAP_F_NEW) || !map->length)
		return 0;
	return iomap_punch(fs, ino, map->offset, map->offset + map->length);
}

static int extents_mergeable(const struct ext2fs_extent *a,
			     const struct ext2fs_extent *b)
{
	return !(a->e_flags & EXT2_EXTENT_FLAGS_UNINIT) &&
	       !(b->e_flags & EXT2_EXTENT_FLAGS_UNINIT) &&
	       a->e_lblk + a->e_len == b->e_lblk &&
	       a->e_pblk + a->e_len == b->e_pblk &&
	       a->e_len + b->e_len <= EXTENT_INIT_MAX;
}

/*
 * Folds the extent starting at lblk into the one before it when they are
 * contiguous and both written, so that streaming writes, converted a
 * request at a time, still end up as few long extents.
 */
static errcode_t merge_with_prev(ext2_extent_handle_t h, blk64_t lblk)
{
	struct ext2fs_extent cur, prev;
	errcode_t err;

	if (ext2fs_extent_goto2(h, 0, lblk) ||
	    ext2fs_extent_get(h, EXT2_EXTENT_CURRENT, &cur) ||
	    cur.e_lblk != lblk ||
	    ext2fs_extent_get(h, EXT2_EXTENT_PREV_LEAF, &prev) ||
	    !extents_mergeable(&prev, &cur))
		return 0;
	prev.e_len += cur.e_len;
	err = ext2fs_extent_replace(h, 0, &prev);
	/* prev now covers lblk too: step to cur explicitly to delete it. */
	if (!err)
		err = ext2fs_extent_get(h, EXT2_EXTENT_NEXT_LEAF, &cur);
	if (!err && cur.e_lblk != lblk)
		err = EXT2_ET_EXTENT_NOT_FOUND;
	if (!err)
		err = ext2fs_extent_delete(h, 0);
	if (!err)
		err = ext2fs_extent_fix_parents(h);
	return err;
}

/*
 * Makes [a, b) of the unwritten extent at the handle's position written:
 * the extent is split into up to three pieces (unwritten, written,
 * unwritten) and the written piece merged with its written neighbours.
 */
static errcode_t convert_extent(ext2_extent_handle_t h,
				const struct ext2fs_extent *e, blk64_t a,
				blk64_t b)
{
	struct ext2fs_extent piece = *e;
	blk64_t end = e->e_lblk + e->e_len;
	errcode_t err;

	if (a > e->e_lblk) {
		piece.e_len = a - e->e_lblk;
		err = ext2fs_extent_replace(h, 0, &piece);
		if (err)
			return err;
		piece.e_lblk = a;
		piece.e_pblk = e->e_pblk + (a - e->e_lblk);
		piece.e_len = b - a;
		piece.e_flags &= ~EXT2_EXTENT_FLAGS_UNINIT;
		err = ext2fs_extent_insert(h, EXT2_EXTENT_INSERT_AFTER, &piece);
	} else {
		piece.e_len = b - a;
		piece.e_flags &= ~EXT2_EXTENT_FLAGS_UNINIT;
		err = ext2fs_extent_replace(h, 0, &piece);
	}
	if (!err && b < end) {
		piece.e_lblk = b;
		piece.e_pblk = e->e_pblk + (b - e->e_lblk);
		piece.e_len = end - b;
		piece.e_flags |= EXT2_EXTENT_FLAGS_UNINIT;
		err = ext2fs_extent_insert(h, EXT2_EXTENT_INSERT_AFTER, &piece);
	}
	if (!err)
		err = ext2fs_extent_fix_parents(h);
	if (!err)
		err = merge_with_prev(h, a);
	if (!err && b == end)
		err = merge_with_prev(h, b);
	return err;
}

/* Converts the unwritten blocks of [lblk, lblk+count) to written. */
static int convert_unwritten(struct fs *fs, ext2_ino_t ino,
			     struct ext2_inode_large *inode, blk64_t lblk,
			     blk64_t count)
{
	ext2_extent_handle_t h;
	struct ext2fs_extent e;
	blk64_t end = lblk + count;
	errcode_t err;
	int ret;

	map_cache_forget(fs, ino);
	err = ext2fs_extent_open2(fs->e2, ino, (struct ext2_inode *)inode, &h);
	if (err)
		return FS_ERR(fs, err, ino);
	while (lblk < end) {
		blk64_t b;

		err = ext2fs_extent_goto2(h, 0, lblk);
		if (err == EXT2_ET_EXTENT_NOT_FOUND) {
			err = 0;
			lblk++; /* a hole inside the range: nothing to do */
			continue;
		}
		if (!err)
			err = ext2fs_extent_get(h, EXT2_EXTENT_CURRENT, &e);
		if (err)
			break;
		if (e.e_lblk > lblk || e.e_lblk + e.e_len <= lblk) {
			lblk++;
			continue;
		}
		b = e.e_lblk + e.e_len < end ? e.e_lblk + e.e_len : end;
		if (e.e_flags & EXT2_EXTENT_FLAGS_UNINIT) {
			err = convert_extent(h, &e, lblk, b);
			if (err)
				break;
		}
		lblk = b;
	}
	ext2fs_extent_free(h);
	/* The handle edited *inode in place (root, i_blocks). */
	ret = fsi_write(fs, ino, inode);
	return err ? FS_ERR(fs, err, ino) : ret;
}

/* Overwrites need no conversion: the cache often knows that already. */
static int cached_as_written(struct fs *fs, ext2_ino_t ino,
			     const struct ext2_inode_large *inode,
			     blk64_t lblk, blk64_t count)
{
	blk64_t end = lblk + count;
	struct bmap m;

	while (lblk < end) {
		if (!map_cache_find(fs, ino, inode, lblk, &m) ||
		    m.type != IOMAP_MAPPED)
			return 0;
		if (m.count >= end - lblk)
			break;
		lblk += m.count;
	}
	return 1;
}

int ioend(struct fs *fs, ext2_ino_t ino, uint64_t pos, uint64_t len,
	  int error)
{
	uint64_t bs = fs->e2->blocksize;
	struct ext2_inode_large inode;
	int ret;

	if (error || !len)
		return 0;
	ret = fsi_read(fs, ino, &inode);
	if (ret)
		return ret;
	if (inode.i_flags & EXT4_EXTENTS_FL) {
		blk64_t lblk = pos / bs;
		blk64_t count = (pos + len + bs - 1) / bs - lblk;

		if (!cached_as_written(fs, ino, &inode, lblk, count))
			ret = convert_unwritten(fs, ino, &inode, lblk, count);
		if (ret)
			return ret;
	}
	if (pos + len > fsi_size(&inode)) {
		errcode_t err = ext2fs_inode_size_set(
			fs->e2, (struct ext2_inode *)&inode, pos + len);

		if (err)
			return FS_ERR(fs, err, ino);
	}
	fsi_touch(&inode, FSI_TOUCH_MTIME | FSI_TOUCH_CTIME);
	return fsi_write(fs, ino, &inode);
}

int iomap_punch(struct fs *fs, ext2_ino_t ino, uint64_t start, uint64_t end)
{
	uint64_t bs = fs->e2->blocksize;
	blk64_t first = (start + bs - 1) / bs, last;
	struct ext2_inode_large inode;
	errcode_t err;
	int ret;

	last = end == ~0ULL ? ~0ULL : end / bs; /* exclusive */
	if (last != ~0ULL && last <= first)
		return 0;
	ret = fsi_read(fs, ino, &inode);
	if (ret)
		return ret;
	err = fsi_punch(fs, ino, (struct ext2_inode *)&inode, first,
			last == ~0ULL ? ~0ULL : last - 1);
	if (err)
		return FS_ERR(fs, err, ino);
	return 0;
}
