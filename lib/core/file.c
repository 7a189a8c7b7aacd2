/*
 * File data entry points: open checks, read, write, truncate, fsync,
 * fallocate, lseek and copy_file_range, the size limits ext4 enforces.
 * Files that use iomap (file_uses_iomap) go to the executor in
 * iomap_io.c; the rest take the legacy path through libext2fs' file layer,
 * kept as the correctness reference (iomap=off), and inline-data files
 * (kept in the inode until they outgrow it).
 *
 * Every call opens its own ext2_file_t and closes it before returning:
 * several FUSE handles may be open on one inode, and a handle-long
 * ext2_file_t would keep a private copy of the inode and a block buffer
 * that the other handles never see.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/iomap.h"

#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))

/* Indirect blocks needed to map the first n blocks of a block-mapped file. */
static uint64_t ind_blocks(uint64_t n, uint64_t p)
{
	uint64_t meta;

	if (n <= EXT2_NDIR_BLOCKS)
		return 0;
	n -= EXT2_NDIR_BLOCKS;
	meta = 1; /* the indirect block */
	if (n <= p)
		return meta;
	n -= p;
	meta += 1; /* the double-indirect block */
	if (n <= p * p)
		return meta + DIV_ROUND_UP(n, p);
	meta += p;
	n -= p * p;
	return meta + 1 + DIV_ROUND_UP(n, p * p) + DIV_ROUND_UP(n, p);
}

uint64_t file_max_size(struct fs *fs, const struct ext2_inode_large *inode)
{
	struct ext2_super_block *sb = fs->e2->super;
	unsigned bits = EXT2_BLOCK_SIZE_BITS(sb);
	int huge = ext2fs_has_feature_huge_file(sb);
	/* Logical block numbers are 32 bits; the last one is never used. */
	uint64_t blocks = 0xffffffffULL;
	/* Without huge_file, i_blocks counts 512-byte sectors in 32 bits. */
	uint64_t room = huge ? UINT64_MAX : 0xffffffffULL >> (bits - 9);
	uint64_t p;

	if (inode->i_flags & EXT4_EXTENTS_FL) {
		if (blocks > room)
			blocks = room;
		return blocks << bits;
	}

	p = 1ULL << (bits - 2);
	if (blocks > EXT2_NDIR_BLOCKS + p + p * p + p * p * p)
		blocks = EXT2_NDIR_BLOCKS + p + p * p + p * p * p;
	if (blocks + ind_blocks(blocks, p) <= room)
		return blocks << bits;
	/* The indirect blocks count in i_blocks too (ext4's arithmetic). */
	return (room - ind_blocks(room, p)) << bits;
}

void file_kill_priv(struct fs *fs, struct ext2_inode_large *inode,
		    const struct fs_cred *cred)
{
	gid_t group;

	if (!cred || cred->uid == 0 || !LINUX_S_ISREG(inode->i_mode))
		return;
	inode->i_mode &= ~LINUX_S_ISUID;
	if (!(inode->i_mode & LINUX_S_ISGID))
		return;
	/*
	 * As the kernel since 6.2: setgid goes when group-exec is set, or
	 * when the writer is not in the file's group.
	 */
	if (inode->i_mode & LINUX_S_IXGRP) {
		inode->i_mode &= ~LINUX_S_ISGID;
		return;
	}
	group = fs_map_gid(fs, inode_gid(*inode));
	if (group != cred->gid &&
	    !(cred->in_group && cred->in_group(cred, group)))
		inode->i_mode &= ~LINUX_S_ISGID;
}

/*
 * Can this inode's data go through here? -EISDIR for directories, -EINVAL
 * for other non-regular files, -EOPNOTSUPP for what we cannot decode.
 */
static int check_data_inode(struct fs *fs, ext2_ino_t ino,
			    const struct ext2_inode_large *inode)
{
	if (LINUX_S_ISDIR(inode->i_mode))
		return -EISDIR;
	if (!LINUX_S_ISREG(inode->i_mode))
		return -EINVAL;
	if (inode->i_flags & (EXT4_ENCRYPT_FL | EXT4_VERITY_FL))
		return -EOPNOTSUPP;
	if ((inode->i_flags & EXT4_INLINE_DATA_FL) &&
	    !ext2fs_has_feature_inline_data(fs->e2->super))
		return FS_CORRUPT(fs, ino, "inline data without the feature");
	return 0;
}

/*
 * Where logical block lblk lives (*pblk 0: a hole). libext2fs hands back
 * whatever the block map says; a block outside the filesystem is
 * corruption, and writing it would land outside the filesystem.
 */
static int map_block(struct fs *fs, ext2_ino_t ino, struct ext2_inode *inode,
		     blk64_t lblk, blk64_t *pblk, int *rflags)
{
	ext2_filsys e2 = fs->e2;
	errcode_t err;

	*pblk = 0;
	*rflags = 0;
	err = ext2fs_bmap2(e2, ino, inode, NULL, 0, lblk, rflags, pblk);
	if (err)
		return FS_ERR(fs, err, ino);
	if (*pblk && (*pblk < e2->super->s_first_data_block ||
		      *pblk >= ext2fs_blocks_count(e2->super)))
		return FS_CORRUPT(fs, ino, "data block outside the filesystem");
	return 0;
}

/*
 * Zeroes len bytes at pos, all inside one block, if that block holds
 * data (holes and unwritten blocks read as zeros already).
 */
static int zero_in_block(struct fs *fs, ext2_ino_t ino,
			 struct ext2_inode_large *inode, uint64_t pos,
			 unsigned len)
{
	ext2_filsys e2 = fs->e2;
	unsigned in = pos % e2->blocksize;
	blk64_t pblk;
	int rflags, ret;
	char *buf;
	errcode_t err;

	if (!len)
		return 0;
	ret = map_block(fs, ino, (struct ext2_inode *)inode,
			pos / e2->blocksize, &pblk, &rflags);
	if (ret || !pblk || (rflags & BMAP_RET_UNINIT))
		return ret;
	buf = malloc(e2->blocksize);
	if (!buf)
		return -ENOMEM;
	err = io_channel_read_blk64(e2->io, pblk, 1, buf);
	if (!err) {
		memset(buf + in, 0, len);
		err = io_channel_write_blk64(e2->io, pblk, 1, buf);
	}
	free(buf);
	return FS_ERR(fs, err, ino);
}

/*
 * Zeroes the bytes from pos to the end of its block, so that growing the
 * file never exposes what an earlier, longer version left there.
 */
static int zero_tail(struct fs *fs, ext2_ino_t ino,
		     struct ext2_inode_large *inode, uint64_t pos)
{
	unsigned in = pos % fs->e2->blocksize;

	return in ? zero_in_block(fs, ino, inode, pos,
				  fs->e2->blocksize - in) :
		    0;
}

/*
 * PUNCH_HOLE|KEEP_SIZE through libext2fs: the blocks wholly inside
 * [off, end) are freed, the partial ones at either end zeroed.
 */
static int legacy_punch(struct fs *fs, ext2_ino_t ino,
			struct ext2_inode_large *inode, uint64_t off,
			uint64_t end)
{
	uint64_t bs = fs->e2->blocksize;
	uint64_t first = (off + bs - 1) / bs * bs, last = end / bs * bs;
	errcode_t err;
	int ret;

	if (first > last)
		ret = zero_in_block(fs, ino, inode, off, end - off);
	else
		ret = zero_in_block(fs, ino, inode, off, first - off) ?:
		      zero_in_block(fs, ino, inode, last, end - last);
	if (ret || first >= last)
		goto out;
	err = fsi_punch(fs, ino, (struct ext2_inode *)inode, first / bs,
			last / bs - 1);
	if (err)
		return FS_ERR(fs, err, ino);
	/* ext2fs_punch wrote the small inode; pick up its result. */
	ret = fsi_read(fs, ino, inode);
out:
	if (ret)
		return ret;
	fsi_touch(inode, FSI_TOUCH_MTIME | FSI_TOUCH_CTIME);
	return fsi_write(fs, ino, inode);
}

/* ---- blocks, through the libext2fs file layer ---- */

/*
 * The next piece of a block-at-a-time transfer: *piece is the bytes from
 * pos to the end of its block, at most left. -EFSCORRUPTED if that block
 * maps outside the filesystem, which the file layer would not check.
 */
static int next_piece(struct fs *fs, ext2_ino_t ino, ext2_file_t file,
		      uint64_t pos, size_t left, unsigned *piece)
{
	blk64_t pblk;
	int rflags;

	*piece = fs->e2->blocksize - pos % fs->e2->blocksize;
	if (*piece > left)
		*piece = left;
	return map_block(fs, ino, ext2fs_file_get_inode(file),
			 pos / fs->e2->blocksize, &pblk, &rflags);
}

/*
 * Closes the file-layer handle of a transfer that stopped with err (from
 * libext2fs) or ret (-errno). After a failure the close would only fail
 * the same way again (it flushes the block that failed), so its own
 * error counts only when nothing failed before. Returns the error that
 * stands; the caller converts it (FS_ERR records the caller's name).
 */
static errcode_t close_after(ext2_file_t file, errcode_t err, int ret)
{
	if (err || ret) {
		ext2fs_file_close(file);
		return err;
	}
	return ext2fs_file_close(file);
}

static ssize_t blocks_read(struct fs *fs, ext2_ino_t ino,
			   struct ext2_inode_large *inode, char *buf,
			   size_t size, uint64_t off)
{
	ext2_file_t file;
	size_t done = 0;
	errcode_t err;
	int ret = 0;

	err = ext2fs_file_open2(fs->e2, ino, (struct ext2_inode *)inode, 0,
				&file);
	if (err)
		return FS_ERR(fs, err, ino);
	err = ext2fs_file_llseek(file, off, EXT2_SEEK_SET, NULL);
	while (!err && done < size) {
		unsigned piece, got = 0;

		ret = next_piece(fs, ino, file, off + done, size - done,
				 &piece);
		if (ret)
			break;
		err = ext2fs_file_read(file, buf + done, piece, &got);
		done += got;
		if (got < piece)
			break;
	}
	err = close_after(file, err, ret);
	if (!ret)
		ret = FS_ERR(fs, err, ino);
	return ret ? ret : (ssize_t)done;
}

/*
 * Writes through the file layer, one block at a time with a flush after
 * each: the layer allocates a block only when it flushes it, and by then
 * it has counted the bytes and grown i_size. A block that cannot be
 * stored (ENOSPC) ends the write; what went in before it is returned and
 * i_size is cut back to cover only that.
 */
static ssize_t blocks_write(struct fs *fs, ext2_ino_t ino,
			    struct ext2_inode_large *inode, const char *buf,
			    size_t size, uint64_t off)
{
	uint64_t old = EXT2_I_SIZE(inode), keep;
	ext2_file_t file;
	size_t done = 0;
	errcode_t err;
	int ret = 0, fixed;

	if (off > old) {
		ret = zero_tail(fs, ino, inode, old);
		if (ret)
			return ret;
	}
	map_cache_forget(fs, ino);
	err = ext2fs_file_open2(fs->e2, ino, (struct ext2_inode *)inode,
				EXT2_FILE_WRITE, &file);
	if (err)
		return FS_ERR(fs, err, ino);
	err = ext2fs_file_llseek(file, off, EXT2_SEEK_SET, NULL);
	while (!err && done < size) {
		unsigned piece, got = 0;

		ret = next_piece(fs, ino, file, off + done, size - done,
				 &piece);
		if (ret)
			break;
		err = ext2fs_file_write(file, buf + done, piece, &got);
		if (!err)
			err = ext2fs_file_flush(file);
		if (!err)
			done += piece;
	}
	err = close_after(file, err, ret);
	if (!err && !ret)
		return done;
	if (!ret)
		ret = FS_ERR(fs, err, ino);
	keep = off + done > old ? off + done : old;
	fixed = fsi_read(fs, ino, inode);
	if (!fixed && EXT2_I_SIZE(inode) > keep)
		fixed = fsi_truncate(fs, ino, inode, keep);
	if (fixed)
		return fixed;
	return done ? (ssize_t)done : ret;
}

/* ---- inline data ---- */

/*
 * Loads an inline-data file's whole inline area (*cap bytes, malloc'ed
 * into *bufp) with the bytes past i_size zeroed. An i_size beyond the
 * inline area is corruption, which libext2fs' own inline IO (not used
 * here: in 1.47 it returns the whole area on reads and miscounts writes
 * at an offset) would trust.
 */
static int inline_load(struct fs *fs, ext2_ino_t ino,
		       struct ext2_inode_large *inode, char **bufp,
		       size_t *cap)
{
	uint64_t isize = EXT2_I_SIZE(inode);
	size_t size, got = 0;
	char *buf;
	errcode_t err;

	err = ext2fs_inline_data_size(fs->e2, ino, &size);
	if (err)
		return FS_ERR(fs, err, ino);
	if (isize > size)
		return FS_CORRUPT(fs, ino, "inline data file larger than its inline area");
	buf = calloc(1, size);
	if (!buf)
		return -ENOMEM;
	err = ext2fs_inline_data_get(fs->e2, ino, (struct ext2_inode *)inode,
				     buf, &got);
	if (err) {
		free(buf);
		return FS_ERR(fs, err, ino);
	}
	memset(buf + isize, 0, size - isize);
	*bufp = buf;
	*cap = size;
	return 0;
}

/*
 * Stores len bytes as the inode's inline data and re-reads the inode (the
 * library wrote it). 1 if they do not fit in the inode, else 0 or -errno.
 */
static int inline_store(struct fs *fs, ext2_ino_t ino,
			struct ext2_inode_large *inode, char *buf, size_t len)
{
	errcode_t err;

	err = ext2fs_inline_data_set(fs->e2, ino, NULL, buf, len);
	if (err == EXT2_ET_INLINE_DATA_NO_SPACE)
		return 1;
	if (err)
		return FS_ERR(fs, err, ino);
	return fsi_read(fs, ino, inode);
}

static int set_isize(struct fs *fs, ext2_ino_t ino,
		     struct ext2_inode_large *inode, uint64_t size)
{
	return FS_ERR(fs, ext2fs_inode_size_set(fs->e2,
						(struct ext2_inode *)inode,
						size),
		      ino);
}

/* Drops the system.data attribute that holds inline data past i_block. */
static int inline_drop_ea(struct fs *fs, ext2_ino_t ino)
{
	struct ext2_xattr_handle *h;
	errcode_t err;

	err = ext2fs_xattrs_open(fs->e2, ino, &h);
	if (err)
		return FS_ERR(fs, err, ino);
	err = ext2fs_xattrs_read(h);
	if (!err)
		err = ext2fs_xattr_remove(h, "system.data");
	if (!err)
		err = ext2fs_xattrs_write(h);
	ext2fs_xattrs_close(&h);
	return FS_ERR(fs, err, ino);
}

/*
 * Moves an inline-data file's bytes into blocks (extent-mapped if the fs
 * has extents) and re-reads *inode. The data is copied out first: once
 * the attribute is gone and i_block holds a block map, only the copy is
 * left.
 */
static int inline_expand(struct fs *fs, ext2_ino_t ino,
			 struct ext2_inode_large *inode)
{
	uint64_t isize = EXT2_I_SIZE(inode);
	ext2_extent_handle_t handle;
	ssize_t done = 0;
	size_t cap;
	char *data;
	errcode_t err;
	int ret;

	ret = inline_load(fs, ino, inode, &data, &cap);
	if (ret)
		return ret;
	/* Past this point the copy is all there is: fail while it is not. */
	if (DIV_ROUND_UP(isize, fs->e2->blocksize) >
	    ext2fs_free_blocks_count(fs->e2->super)) {
		ret = -ENOSPC;
		goto out;
	}
	ret = inline_drop_ea(fs, ino);
	if (ret)
		goto out;
	ret = fsi_read(fs, ino, inode);
	if (ret)
		goto out;
	map_cache_forget(fs, ino);
	memset(inode->i_block, 0, sizeof(inode->i_block));
	inode->i_flags &= ~(EXT4_INLINE_DATA_FL | EXT4_EXTENTS_FL);
	inode->i_size = 0;
	inode->i_size_high = 0;
	if (ext2fs_has_feature_extents(fs->e2->super)) {
		/* On an empty i_block, opening a map sets up an extent root. */
		err = ext2fs_extent_open2(fs->e2, ino,
					  (struct ext2_inode *)inode, &handle);
		if (err) {
			ret = FS_ERR(fs, err, ino);
			goto out;
		}
		ext2fs_extent_free(handle);
	}
	ret = fsi_write(fs, ino, inode);
	if (ret || !isize)
		goto out;
	done = blocks_write(fs, ino, inode, data, isize, 0);
	if (done < 0) {
		ret = done;
		goto out;
	}
	if ((uint64_t)done != isize) {
		ret = -ENOSPC;
		goto out;
	}
	ret = fsi_read(fs, ino, inode);
out:
	free(data);
	return ret;
}

static ssize_t inline_read(struct fs *fs, ext2_ino_t ino,
			   struct ext2_inode_large *inode, char *buf,
			   size_t size, uint64_t off)
{
	size_t cap;
	char *data;
	int ret;

	ret = inline_load(fs, ino, inode, &data, &cap);
	if (ret)
		return ret;
	/* The caller limited [off, off + size) to i_size, within cap. */
	memcpy(buf, data + off, size);
	free(data);
	return size;
}

/*
 * Writes [off, off + size) of an inline-data file in the inode, growing
 * the inline area as needed, and sets i_size. 1 if the result would not
 * fit in the inode (nothing changed), else 0 or -errno.
 */
static int inline_write(struct fs *fs, ext2_ino_t ino,
			struct ext2_inode_large *inode, const char *buf,
			size_t size, uint64_t off)
{
	uint64_t isize = EXT2_I_SIZE(inode);
	uint64_t end = off + size;
	size_t cap, len;
	char *data, *grown;
	int ret;

	/* Nothing larger than a block can be inline: skip the copy. */
	if (end > fs->e2->blocksize)
		return 1;
	ret = inline_load(fs, ino, inode, &data, &cap);
	if (ret)
		return ret;
	len = end > cap ? end : cap;
	if (len > cap) {
		grown = realloc(data, len);
		if (!grown) {
			free(data);
			return -ENOMEM;
		}
		data = grown;
		memset(data + cap, 0, len - cap);
	}
	memcpy(data + off, buf, size);
	ret = inline_store(fs, ino, inode, data, len);
	free(data);
	if (ret)
		return ret;
	return set_isize(fs, ino, inode, end > isize ? end : isize);
}

/* truncate(2) of an inline-data file; 1 if it must move to blocks first. */
static int inline_set_size(struct fs *fs, ext2_ino_t ino,
			   struct ext2_inode_large *inode, uint64_t size)
{
	size_t cap;
	char *data;
	int ret;

	ret = inline_load(fs, ino, inode, &data, &cap);
	if (ret)
		return ret;
	/* As ext4 does: growing past the inline area moves to blocks. */
	if (size > cap) {
		free(data);
		return 1;
	}
	/* What is cut off must read as zeros if the file grows again. */
	memset(data + size, 0, cap - size);
	ret = inline_store(fs, ino, inode, data, cap);
	free(data);
	if (ret)
		return ret < 0 ? ret : -ENOSPC;
	return set_isize(fs, ino, inode, size);
}

int file_set_size(struct fs *fs, ext2_ino_t ino,
		  struct ext2_inode_large *inode, uint64_t size)
{
	uint64_t old = EXT2_I_SIZE(inode);
	int ret;

	if (size > file_max_size(fs, inode))
		return -EFBIG;
	if (file_uses_iomap(fs, inode))
		return iomap_truncate_locked(fs, ino, inode, size);
	if (inode->i_flags & EXT4_INLINE_DATA_FL) {
		ret = inline_set_size(fs, ino, inode, size);
		if (ret <= 0)
			return ret;
		ret = inline_expand(fs, ino, inode);
		if (ret)
			return ret;
	}
	if (size == old)
		return 0;
	if (size > old) {
		ret = zero_tail(fs, ino, inode, old);
		if (ret)
			return ret;
	}
	ret = fsi_truncate(fs, ino, inode, size);
	if (ret)
		return ret;
	return size < old ? zero_tail(fs, ino, inode, size) : 0;
}

/*
 * As ext4 on an inline_data filesystem: the first write to an empty file
 * that fits in i_block keeps the data in the inode (later writes grow the
 * inline area while it fits, then move the file to blocks).
 */
static int maybe_make_inline(struct fs *fs, ext2_ino_t ino,
			     struct ext2_inode_large *inode, uint64_t end)
{
	errcode_t err;
	int ret;

	if (!ext2fs_has_feature_inline_data(fs->e2->super) ||
	    !LINUX_S_ISREG(inode->i_mode) ||
	    (inode->i_flags & EXT4_INLINE_DATA_FL) || EXT2_I_SIZE(inode) ||
	    inode->i_blocks || end > sizeof(inode->i_block))
		return 0;
	inode->i_flags &= ~EXT4_EXTENTS_FL;
	inode->i_flags |= EXT4_INLINE_DATA_FL;
	memset(inode->i_block, 0, sizeof(inode->i_block));
	ret = fsi_write(fs, ino, inode);
	if (ret)
		return ret;
	err = ext2fs_inline_data_init(fs->e2, ino);
	if (err)
		return FS_ERR(fs, err, ino);
	return fsi_read(fs, ino, inode);
}

/* ---- entry points ---- */

int file_open(struct fs *fs, ext2_ino_t ino, int flags,
	      const struct fs_cred *cred)
{
	struct ext2_inode_large inode;
	int acc = flags & O_ACCMODE;
	int wr = acc != O_RDONLY || (flags & O_TRUNC);
	struct iref *r = NULL;
	int ret;

	/* Truncation frees blocks: no IO of this inode may be in flight. */
	if (flags & O_TRUNC) {
		r = iref_pin(fs, ino, 1);
		if (!r)
			return -ENOMEM;
	}
	fs_lock(fs);
	ret = fsi_read(fs, ino, &inode);
	if (ret)
		goto out;
	if (inode.i_flags & (EXT4_ENCRYPT_FL | EXT4_VERITY_FL)) {
		ret = -EOPNOTSUPP;
		goto out;
	}
	if (LINUX_S_ISDIR(inode.i_mode)) {
		ret = wr ? -EISDIR : 0;
		goto out;
	}
	if (!wr)
		goto out;
	ret = fs_writable(fs);
	if (ret)
		goto out;
	if (inode.i_flags & EXT2_IMMUTABLE_FL) {
		ret = -EPERM;
		goto out;
	}
	/* Append-only: writes must append and nothing may truncate. */
	if ((inode.i_flags & EXT2_APPEND_FL) &&
	    ((acc != O_RDONLY && !(flags & O_APPEND)) || (flags & O_TRUNC))) {
		ret = -EPERM;
		goto out;
	}
	if (!(flags & O_TRUNC) || !LINUX_S_ISREG(inode.i_mode))
		goto out;
	ret = check_data_inode(fs, ino, &inode);
	if (ret)
		goto out;
	ret = file_set_size(fs, ino, &inode, 0);
	if (ret)
		goto out;
	file_kill_priv(fs, &inode, cred);
	fsi_touch(&inode, FSI_TOUCH_MTIME | FSI_TOUCH_CTIME);
	ret = fsi_write(fs, ino, &inode);
out:
	fs_unlock(fs);
	if (r)
		iref_unpin(fs, r);
	return ret;
}

ssize_t file_read(struct fs *fs, ext2_ino_t ino, void *buf, size_t size,
		  off_t off)
{
	struct ext2_inode_large inode;
	uint64_t isize;
	ssize_t ret;

	fs_lock(fs);
	ret = fsi_read(fs, ino, &inode);
	if (ret)
		goto out;
	ret = check_data_inode(fs, ino, &inode);
	if (ret)
		goto out;
	if (off < 0) {
		ret = -EINVAL;
		goto out;
	}
	if (file_uses_iomap(fs, &inode)) {
		fs_unlock(fs);
		return iomap_read(fs, ino, buf, size, off);
	}
	isize = EXT2_I_SIZE(&inode);
	if ((uint64_t)off >= isize || !size) {
		ret = 0;
		goto out;
	}
	if (size > isize - off)
		size = isize - off;
	if (size > SSIZE_MAX)
		size = SSIZE_MAX;
	if (inode.i_flags & EXT4_INLINE_DATA_FL)
		ret = inline_read(fs, ino, &inode, buf, size, off);
	else
		ret = blocks_read(fs, ino, &inode, buf, size, off);
out:
	fs_unlock(fs);
	return ret;
}

ssize_t file_write(struct fs *fs, ext2_ino_t ino, const void *buf,
		   size_t size, off_t off, int append,
		   const struct fs_cred *cred)
{
	struct ext2_inode_large inode;
	uint64_t pos, max;
	ssize_t ret, done;
	__u16 mode;
	int killed = 0;

	fs_lock(fs);
	ret = fs_writable(fs);
	if (ret)
		goto out;
	ret = fsi_read(fs, ino, &inode);
	if (ret)
		goto out;
	ret = check_data_inode(fs, ino, &inode);
	if (ret)
		goto out;
	if ((inode.i_flags & EXT2_IMMUTABLE_FL) ||
	    ((inode.i_flags & EXT2_APPEND_FL) && !append)) {
		ret = -EPERM;
		goto out;
	}
	if (!append && off < 0) {
		ret = -EINVAL;
		goto out;
	}
	if (!size)
		goto out;
	pos = append ? EXT2_I_SIZE(&inode) : (uint64_t)off;
	max = file_max_size(fs, &inode);
	if (pos >= max) {
		ret = -EFBIG;
		goto out;
	}
	if (size > max - pos)
		size = max - pos;
	if (size > SSIZE_MAX)
		size = SSIZE_MAX;
	/* As the kernel: privileges go before the data is written. */
	mode = inode.i_mode;
	file_kill_priv(fs, &inode, cred);
	if (mode != inode.i_mode) {
		killed = 1;
		fsi_touch(&inode, FSI_TOUCH_CTIME);
		ret = fsi_write(fs, ino, &inode);
		if (ret)
			goto out;
	}
	ret = maybe_make_inline(fs, ino, &inode, pos + size);
	if (ret)
		goto out;
	if (file_uses_iomap(fs, &inode)) {
		fs_unlock(fs);
		ret = iomap_write(fs, ino, buf, size, off, append);
		goto notify;
	}

	done = 0;
	if (inode.i_flags & EXT4_INLINE_DATA_FL) {
		ret = inline_write(fs, ino, &inode, buf, size, pos);
		if (ret < 0)
			goto out;
		if (ret == 0)
			done = size;
		else
			ret = inline_expand(fs, ino, &inode);
		if (ret < 0)
			goto out;
	}
	if (!done) {
		done = blocks_write(fs, ino, &inode, buf, size, pos);
		if (done < 0) {
			ret = done;
			goto out;
		}
		/* Pick up the size and block map the file layer wrote. */
		ret = fsi_read(fs, ino, &inode);
		if (ret)
			goto out;
	}
	fsi_touch(&inode, FSI_TOUCH_MTIME | FSI_TOUCH_CTIME);
	ret = fsi_write(fs, ino, &inode);
	if (!ret)
		ret = done;
out:
	fs_unlock(fs);
notify:
	/* The kernel caches the mode: tell it what changed behind it. */
	if (killed)
		fs_notify_attr(fs, ino);
	return ret;
}

/*
 * Data and metadata both live in libext2fs and its io channel until a
 * full flush; there is nothing cheaper that makes one file durable.
 */
int file_fsync(struct fs *fs, ext2_ino_t ino, int datasync)
{
	(void)ino;
	(void)datasync;
	return fs_sync(fs);
}

int file_fallocate(struct fs *fs, ext2_ino_t ino, int mode, off_t off,
		   off_t len)
{
	struct ext2_inode_large inode;
	ext2_filsys e2 = fs->e2;
	uint64_t isize, end;
	blk64_t first, last;
	unsigned touch = FSI_TOUCH_CTIME;
	errcode_t err;
	int flags, ret, wret;

	fs_lock(fs);
	if (off < 0 || len <= 0) {
		ret = -EINVAL;
		goto out;
	}
	ret = fs_writable(fs);
	if (ret)
		goto out;
	ret = fsi_read(fs, ino, &inode);
	if (ret)
		goto out;
	ret = check_data_inode(fs, ino, &inode);
	if (ret == -EINVAL)
		ret = -ENODEV;
	if (ret)
		goto out;
	if (inode.i_flags & EXT2_IMMUTABLE_FL) {
		ret = -EPERM;
		goto out;
	}
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE |
		     FALLOC_FL_ZERO_RANGE | FALLOC_FL_COLLAPSE_RANGE |
		     FALLOC_FL_INSERT_RANGE)) {
		ret = -EOPNOTSUPP;
		goto out;
	}
	/* As the VFS: collapse and insert take no other flag. */
	if ((mode & (FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE)) &&
	    mode != FALLOC_FL_COLLAPSE_RANGE && mode != FALLOC_FL_INSERT_RANGE) {
		ret = -EOPNOTSUPP;
		goto out;
	}
	/* fallocate is about blocks: as ext4, leave the inode first. */
	if (inode.i_flags & EXT4_INLINE_DATA_FL) {
		ret = inline_expand(fs, ino, &inode);
		if (ret)
			goto out;
	}
	/* Metadata only: one implementation for iomap and legacy files. */
	if (mode & (FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE)) {
		fs_unlock(fs);
		return iomap_shift(fs, ino, mode, off, len);
	}
	if (file_uses_iomap(fs, &inode)) {
		fs_unlock(fs);
		return iomap_fallocate(fs, ino, mode, off, len);
	}
	end = (uint64_t)off + (uint64_t)len;
	/* As ext4: a block map can have holes punched, nothing else. */
	if (!(inode.i_flags & EXT4_EXTENTS_FL) &&
	    !(mode & FALLOC_FL_PUNCH_HOLE)) {
		ret = -EOPNOTSUPP;
		goto out;
	}
	if (end > file_max_size(fs, &inode)) {
		ret = -EFBIG;
		goto out;
	}
	if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
		ret = legacy_punch(fs, ino, &inode, off, end);
		goto out;
	}
	if (mode & FALLOC_FL_PUNCH_HOLE) {
		ret = -EOPNOTSUPP; /* punching needs KEEP_SIZE, alone */
		goto out;
	}
	/* Zeroing: punched, then preallocated again as unwritten. */
	if (mode & FALLOC_FL_ZERO_RANGE) {
		ret = legacy_punch(fs, ino, &inode, off, end);
		if (ret)
			goto out;
		touch |= FSI_TOUCH_MTIME;
	}
	isize = EXT2_I_SIZE(&inode);
	first = off / e2->blocksize;
	last = (end - 1) / e2->blocksize;
	flags = EXT2_FALLOCATE_FORCE_UNINIT;
	map_cache_forget(fs, ino);
	err = ext2fs_fallocate(e2, flags, ino, (struct ext2_inode *)&inode,
			       ~0ULL, first, last - first + 1);
	ret = FS_ERR(fs, err, ino);
	if (!ret && !(mode & FALLOC_FL_KEEP_SIZE) && end > isize) {
		ret = zero_tail(fs, ino, &inode, isize);
		if (!ret)
			ret = set_isize(fs, ino, &inode, end);
		if (!ret)
			touch |= FSI_TOUCH_MTIME;
	}
	/* Whatever was allocated, even on failure, is in the inode's map. */
	fsi_touch(&inode, touch);
	wret = fsi_write(fs, ino, &inode);
	if (!ret)
		ret = wret;
out:
	fs_unlock(fs);
	return ret;
}

off_t file_lseek(struct fs *fs, ext2_ino_t ino, off_t off, int whence)
{
	return iomap_seek(fs, ino, off, whence);
}

ssize_t file_copy_range(struct fs *fs, ext2_ino_t ino_in, off_t off_in,
			ext2_ino_t ino_out, off_t off_out, size_t len,
			const struct fs_cred *cred)
{
	struct ext2_inode_large in, out;
	int ret;

	fs_lock(fs);
	ret = fs_writable(fs) ?: fsi_read(fs, ino_in, &in) ?:
	      fsi_read(fs, ino_out, &out);
	if (!ret && (!file_uses_iomap(fs, &in) || !file_uses_iomap(fs, &out)))
		ret = -EOPNOTSUPP; /* the kernel falls back to read/write */
	if (!ret && (out.i_flags & (EXT2_IMMUTABLE_FL | EXT2_APPEND_FL)))
		ret = -EPERM;
	fs_unlock(fs);
	if (ret)
		return ret;
	(void)cred; /* the kernel strips privileges before the copy */
	return iomap_copy_range(fs, ino_in, off_in, ino_out, off_out, len);
}
