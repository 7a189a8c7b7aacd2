/*
 * fallocate COLLAPSE_RANGE and INSERT_RANGE, as ext4 does them: whole
 * blocks of an extent-mapped file are cut out or opened up by moving the
 * logical start of every extent after them. Metadata only: no data block
 * is read, written or moved, so the same code serves the iomap executors
 * and the legacy path; unwritten extents stay unwritten.
 */
#include <linux/falloc.h>
#include <stdlib.h>

#include "core/iomap.h"

/* The largest logical block an extent may reach (ext4's EXT_MAX_BLOCKS). */
#define EXTENT_LBLK_LIMIT 0xffffffffULL

/*
 * The logical starts of the extents that start at or after from, in file
 * order, in a malloc'ed array (*list, *count). A plain walk of the whole
 * tree, before anything changes: libext2fs' NEXT_LEAF and PREV_LEAF lose
 * their place once an edit has moved the handle up and back down. Starts
 * that do not grow mean a damaged tree (maybe a loop): an error, not an
 * endless walk.
 */
static errcode_t list_extents(ext2_extent_handle_t h, blk64_t from,
			      blk64_t **list, size_t *count)
{
	struct ext2fs_extent e;
	size_t n = 0, cap = 0;
	blk64_t *l = NULL, *grown;
	errcode_t err;

	err = ext2fs_extent_get(h, EXT2_EXTENT_ROOT, &e);
	while (!err) {
		if ((e.e_flags & EXT2_EXTENT_FLAGS_LEAF) && e.e_lblk >= from) {
			if (n && e.e_lblk <= l[n - 1]) {
				err = EXT2_ET_EXTENT_LEAF_BAD;
				break;
			}
			if (n == cap) {
				cap = cap ? 2 * cap : 64;
				grown = realloc(l, cap * sizeof(*l));
				if (!grown) {
					err = EXT2_ET_NO_MEMORY;
					break;
				}
				l = grown;
			}
			l[n++] = e.e_lblk;
		}
		err = ext2fs_extent_get(h, EXT2_EXTENT_NEXT, &e);
	}
	if (err == EXT2_ET_EXTENT_NO_NEXT || err == EXT2_ET_NO_CURRENT_NODE)
		err = 0;
	if (err) {
		free(l);
		return err;
	}
	*list = l;
	*count = n;
	return 0;
}

/*
 * Adds delta (negative: moves left) to the logical start of every extent
 * that starts at or after from. Extents are moved in the direction of the
 * shift, last one first for a move right, so that at each step the tree
 * stays sorted: each one is found again by its old start, and the index
 * keys above it follow it.
 */
static errcode_t shift_extents(ext2_extent_handle_t h, blk64_t from,
			       long long delta)
{
	struct ext2fs_extent e;
	blk64_t *list = NULL;
	size_t count = 0, i;
	errcode_t err;

	err = list_extents(h, from, &list, &count);
	for (i = 0; !err && i < count; i++) {
		blk64_t lblk = list[delta > 0 ? count - 1 - i : i];

		err = ext2fs_extent_goto2(h, 0, lblk);
		if (!err)
			err = ext2fs_extent_get(h, EXT2_EXTENT_CURRENT, &e);
		if (!err && e.e_lblk != lblk)
			err = EXT2_ET_EXTENT_NOT_FOUND;
		if (err)
			break;
		e.e_lblk += delta;
		err = ext2fs_extent_replace(h, 0, &e);
		if (!err)
			err = ext2fs_extent_fix_parents(h);
	}
	free(list);
	return err;
}

/*
 * Splits the extent that has lblk strictly inside it into two at lblk,
 * both with its written/unwritten state. Adding the second piece may need
 * a new tree block: ENOSPC here leaves the file as it was.
 */
static errcode_t split_at(ext2_extent_handle_t h, blk64_t lblk)
{
	struct ext2fs_extent e, whole, right;
	errcode_t err;

	err = ext2fs_extent_goto2(h, 0, lblk);
	if (err == EXT2_ET_EXTENT_NOT_FOUND || err == EXT2_ET_EXTENT_NO_NEXT)
		return 0; /* a hole, or an empty tree */
	if (!err)
		err = ext2fs_extent_get(h, EXT2_EXTENT_CURRENT, &e);
	if (err || e.e_lblk == lblk)
		return err;
	whole = right = e;
	right.e_lblk = lblk;
	right.e_pblk = e.e_pblk + (lblk - e.e_lblk);
	right.e_len = e.e_len - (lblk - e.e_lblk);
	e.e_len = lblk - e.e_lblk;
	err = ext2fs_extent_replace(h, 0, &e);
	if (err)
		return err;
	err = ext2fs_extent_insert(h, EXT2_EXTENT_INSERT_AFTER, &right);
	if (err) {
		/* No room for the second piece: make the extent whole again. */
		if (!ext2fs_extent_goto2(h, 0, whole.e_lblk))
			ext2fs_extent_replace(h, 0, &whole);
		return err;
	}
	return ext2fs_extent_fix_parents(h);
}

/* Where the last extent ends (0 for an empty tree). */
static errcode_t extents_end(ext2_extent_handle_t h, blk64_t *end)
{
	struct ext2fs_extent e;
	errcode_t err;

	*end = 0;
	err = ext2fs_extent_get(h, EXT2_EXTENT_LAST_LEAF, &e);
	if (err == EXT2_ET_EXTENT_NO_NEXT || err == EXT2_ET_NO_CURRENT_NODE)
		return 0;
	if (!err)
		*end = e.e_lblk + e.e_len;
	return err;
}

/*
 * The shift proper on *inode, which the handle edits in place: collapse
 * frees [start, start + n) and moves what follows left; insert moves what
 * starts at or after start right by n, splitting the extent across start
 * first. -EFBIG if an extent would end past the last logical block.
 */
static int shift_blocks(struct fs *fs, ext2_ino_t ino,
			struct ext2_inode_large *inode, int collapse,
			blk64_t start, blk64_t n)
{
	ext2_extent_handle_t h;
	blk64_t end;
	errcode_t err;
	int ret;

	if (collapse) {
		err = fsi_punch(fs, ino, (struct ext2_inode *)inode, start,
				start + n - 1);
		if (err)
			return FS_ERR(fs, err, ino);
		/* ext2fs_punch wrote the small inode; pick up its result. */
		ret = fsi_read(fs, ino, inode);
		if (ret)
			return ret;
	}
	err = ext2fs_extent_open2(fs->e2, ino, (struct ext2_inode *)inode, &h);
	if (err)
		return FS_ERR(fs, err, ino);
	if (collapse) {
		err = shift_extents(h, start + n, -(long long)n);
		goto out;
	}
	err = extents_end(h, &end);
	if (!err && end + n > EXTENT_LBLK_LIMIT) {
		ext2fs_extent_free(h);
		return -EFBIG;
	}
	if (!err)
		err = split_at(h, start);
	if (!err)
		err = shift_extents(h, start, n);
out:
	ext2fs_extent_free(h);
	/* Whatever the handle did to the root is in *inode: keep it. */
	ret = fsi_write(fs, ino, inode);
	return err ? FS_ERR(fs, err, ino) : ret;
}

int iomap_shift(struct fs *fs, ext2_ino_t ino, int mode, uint64_t off,
		uint64_t len)
{
	uint64_t bs = fs->e2->blocksize, size, max;
	int collapse = mode == FALLOC_FL_COLLAPSE_RANGE;
	struct ext2_inode_large inode;
	struct iref *r;
	int ret;

	if (mode != FALLOC_FL_COLLAPSE_RANGE && mode != FALLOC_FL_INSERT_RANGE)
		return -EOPNOTSUPP;
	if (!len || off + len < off)
		return -EINVAL;
	/* Every block after the range moves: no IO of the file may run. */
	r = iref_pin(fs, ino, 1);
	if (!r)
		return -ENOMEM;
	fs_lock(fs);
	ret = fs_writable(fs) ?: fsi_read(fs, ino, &inode);
	if (ret)
		goto out;
	if (inode.i_flags & (EXT2_IMMUTABLE_FL | EXT2_APPEND_FL)) {
		ret = -EPERM;
		goto out;
	}
	/* The order of ext4's checks, which decides the errno. */
	max = file_max_size(fs, &inode);
	if (off + len > max) {
		ret = -EFBIG;
		goto out;
	}
	if (!(inode.i_flags & EXT4_EXTENTS_FL)) {
		ret = -EOPNOTSUPP;
		goto out;
	}
	if (off % bs || len % bs) {
		ret = -EINVAL;
		goto out;
	}
	size = fsi_size(&inode);
	/* Collapsing up to EOF or past it would be a truncate: ext4 says no. */
	if (collapse ? off + len >= size : off >= size) {
		ret = -EINVAL;
		goto out;
	}
	if (!collapse && len > max - size) {
		ret = -EFBIG;
		goto out;
	}
	map_cache_forget(fs, ino);
	ret = shift_blocks(fs, ino, &inode, collapse, off / bs, len / bs);
	map_cache_forget(fs, ino);
	if (ret)
		goto out;
	if (ext2fs_inode_size_set(fs->e2, (struct ext2_inode *)&inode,
				  collapse ? size - len : size + len)) {
		ret = -EFBIG;
		goto out;
	}
	fsi_touch(&inode, FSI_TOUCH_MTIME | FSI_TOUCH_CTIME);
	ret = fsi_write(fs, ino, &inode);
out:
	fs_unlock(fs);
	iref_unpin(fs, r);
	return ret;
}
