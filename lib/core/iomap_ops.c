/*
 * File operations that ride on the mappings: fallocate modes, SEEK_DATA /
 * SEEK_HOLE and copy_file_range. Metadata changes go through libext2fs;
 * any data that has to be zeroed goes through the executor.
 */
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/iomap.h"

/* Zeroes [pos, pos+len) where it is written; holes and unwritten stay. */
static int zero_written(struct fs *fs, ext2_ino_t ino, uint64_t pos,
			uint64_t len)
{
	uint64_t end = pos + len;
	struct iomap map;
	int ret;

	while (pos < end) {
		uint64_t n;

		ret = iomap_begin(fs, ino, pos, end - pos, IOMAP_OP_REPORT,
				  &map);
		if (ret)
			return ret;
		n = map.offset + map.length - pos;
		if (n > end - pos)
			n = end - pos;
		if (map.type == IOMAP_MAPPED) {
			ret = iomap_write_zeros(fs, n,
						map.addr + (pos - map.offset));
			if (ret)
				return ret;
		}
		pos += n;
	}
	return 0;
}

/* Allocates [pos, end) as unwritten where nothing is allocated. */
static int alloc_range(struct fs *fs, ext2_ino_t ino, uint64_t pos,
		       uint64_t end)
{
	struct iomap map;
	int ret;

	while (pos < end) {
		ret = iomap_begin(fs, ino, pos, end - pos, IOMAP_OP_WRITE, &map);
		if (ret)
			return ret;
		pos = map.offset + map.length;
	}
	return 0;
}

static int set_size_at_least(struct fs *fs, ext2_ino_t ino, uint64_t size)
{
	struct ext2_inode_large inode;
	int ret = fsi_read(fs, ino, &inode);

	if (ret || fsi_size(&inode) >= size)
		return ret;
	if (ext2fs_inode_size_set(fs->e2, (struct ext2_inode *)&inode, size))
		return -EFBIG;
	return fsi_write(fs, ino, &inode);
}

static int stamp_times(struct fs *fs, ext2_ino_t ino, unsigned which)
{
	struct ext2_inode_large inode;
	int ret = fsi_read(fs, ino, &inode);

	if (ret)
		return ret;
	fsi_touch(&inode, which);
	return fsi_write(fs, ino, &inode);
}

int iomap_fallocate(struct fs *fs, ext2_ino_t ino, int mode, uint64_t off,
		    uint64_t len)
{
	uint64_t bs = fs->e2->blocksize, end = off + len;
	struct ext2_inode_large inode;
	struct iref *r;
	int ret;

	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE |
		     FALLOC_FL_ZERO_RANGE))
		return -EOPNOTSUPP;
	if ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE))
		return -EOPNOTSUPP;
	if ((mode & FALLOC_FL_PUNCH_HOLE) && (mode & FALLOC_FL_ZERO_RANGE))
		return -EOPNOTSUPP;
	if (!len || end < off)
		return -EINVAL;

	r = iref_pin(fs, ino, 1);
	if (!r)
		return -ENOMEM;
	fs_lock(fs);
	ret = fs_writable(fs) ?: fsi_read(fs, ino, &inode);
	if (ret)
		goto out;
	if (inode.i_flags & EXT2_IMMUTABLE_FL ||
	    ((inode.i_flags & EXT2_APPEND_FL) && mode & ~FALLOC_FL_KEEP_SIZE)) {
		ret = -EPERM;
		goto out;
	}
	/*
	 * As ext4: a block map can have holes punched in it, but it cannot
	 * mark blocks unwritten, which every other mode needs.
	 */
	if (!file_uses_iomap(fs, &inode) ||
	    (!(inode.i_flags & EXT4_EXTENTS_FL) &&
	     !(mode & FALLOC_FL_PUNCH_HOLE))) {
		ret = -EOPNOTSUPP;
		goto out;
	}
	if (end > file_max_size(fs, &inode)) {
		ret = -EFBIG;
		goto out;
	}

	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
		uint64_t first = (off + bs - 1) / bs * bs, last = end / bs * bs;

		if (first >= last)
			ret = zero_written(fs, ino, off, len);
		else
			ret = zero_written(fs, ino, off, first - off) ?:
			      zero_written(fs, ino, last, end - last) ?:
			      iomap_punch(fs, ino, first, last);
		/* Zero range keeps the space allocated, now unwritten. */
		if (!ret && (mode & FALLOC_FL_ZERO_RANGE))
			ret = alloc_range(fs, ino, off / bs * bs, end);
		if (!ret && (mode & FALLOC_FL_ZERO_RANGE) &&
		    !(mode & FALLOC_FL_KEEP_SIZE))
			ret = set_size_at_least(fs, ino, end);
		if (!ret)
			ret = stamp_times(fs, ino,
					  FSI_TOUCH_MTIME | FSI_TOUCH_CTIME);
		goto out;
	}
	ret = alloc_range(fs, ino, off / bs * bs, end);
	if (!ret && !(mode & FALLOC_FL_KEEP_SIZE))
		ret = set_size_at_least(fs, ino, end);
	if (!ret)
		ret = stamp_times(fs, ino, FSI_TOUCH_CTIME);
out:
	fs_unlock(fs);
	iref_unpin(fs, r);
	return ret;
}

off_t iomap_seek(struct fs *fs, ext2_ino_t ino, off_t off, int whence)
{
	struct ext2_inode_large inode;
	uint64_t pos = off, size;
	struct iomap map;
	off_t ret;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	if (off < 0)
		return -ENXIO;
	fs_lock(fs);
	ret = fsi_read(fs, ino, &inode);
	if (ret)
		goto out;
	size = fsi_size(&inode);
	if (pos >= size) {
		ret = -ENXIO;
		goto out;
	}
	/* Reporting reads the block map only: legacy files too. */
	while (pos < size) {
		int data;

		ret = iomap_begin(fs, ino, pos, size - pos, IOMAP_OP_REPORT,
				  &map);
		if (ret)
			goto out;
		/* Unwritten extents read as zeros: holes, as ext4 says. */
		data = map.type == IOMAP_MAPPED || map.type == IOMAP_INLINE;
		if (data == (whence == SEEK_DATA)) {
			ret = pos;
			goto out;
		}
		if (map.offset + map.length <= pos)
			break;
		pos = map.offset + map.length;
	}
	ret = whence == SEEK_DATA ? -ENXIO : (off_t)size;
out:
	fs_unlock(fs);
	return ret;
}

ssize_t iomap_copy_range(struct fs *fs, ext2_ino_t ino_in, off_t off_in,
			 ext2_ino_t ino_out, off_t off_out, size_t len)
{
	size_t chunk = 1 << 20, done = 0;
	char *buf;
	ssize_t ret = 0;

	if (ino_in == ino_out && off_in < off_out + (off_t)len &&
	    off_out < off_in + (off_t)len)
		return -EINVAL; /* overlapping ranges of one file */
	buf = malloc(chunk);
	if (!buf)
		return -ENOMEM;
	while (done < len) {
		size_t want = len - done < chunk ? len - done : chunk;
		ssize_t n = iomap_read(fs, ino_in, buf, want, off_in + done);

		if (n <= 0) {
			ret = n;
			break;
		}
		ret = iomap_write(fs, ino_out, buf, n, off_out + done, 0);
		if (ret <= 0)
			break;
		done += ret;
		if ((size_t)ret < want)
			break;
	}
	free(buf);
	return done ? (ssize_t)done : ret;
}
