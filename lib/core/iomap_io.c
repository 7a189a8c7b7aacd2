/*
 * The userspace executor: moves file data between the caller's buffer and
 * the image fd at the addresses the iomap engine hands out. The mapping is
 * computed under fs->lock; the IO itself runs outside it, under the
 * inode's IO lock (shared for reads and overwrites, exclusive when blocks
 * are allocated or converted, or the size shrinks), so a read can never
 * see blocks that another file got after a truncate freed them.
 */
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/iomap.h"
#include "support/cache_io.h"

/*
 * The image fd is shared with the metadata cache: dirty cached copies of
 * the range go out before a direct read, and are dropped by a direct write.
 * addr is the filesystem's byte address; in the fd it is data_off further
 * (offset=, a partition of a disk image).
 */
static int pread_full(struct fs *fs, void *buf, size_t len, uint64_t addr)
{
	errcode_t err = cache_io_sync_range(fs->e2->io, addr, len,
					    CACHE_IO_SYNC_READ);

	if (err)
		return -EIO;
	addr += fs->data_off;
	while (len) {
		ssize_t n = uncache_pread(fs, buf, len, addr);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* the image ends inside the filesystem */
		buf = (char *)buf + n;
		len -= n;
		addr += n;
	}
	return 0;
}

/* Zeros for new blocks' unwritten parts (a block is at most 64 KiB). */
static const char zeros[65536];

/* Writes the iovecs (modified) at addr, all of them or an error. */
static int pwritev_full(struct fs *fs, struct iovec *iov, int cnt,
			uint64_t addr)
{
	int fd = fs->data_fd;
	uint64_t start = addr;
	size_t len = 0;
	errcode_t err;

	for (int i = 0; i < cnt; i++)
		len += iov[i].iov_len;
	err = cache_io_sync_range(fs->e2->io, addr, len, CACHE_IO_SYNC_WRITE);
	if (err)
		return -EIO;
	addr += fs->data_off;
	while (cnt) {
		ssize_t n = pwritev(fd, iov, cnt, addr);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		addr += n;
		while (cnt && (size_t)n >= iov->iov_len) {
			n -= iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= n;
		}
	}
	cache_io_note_write(fs->e2->io);
	uncache_written(fs, start + fs->data_off, len);
	return 0;
}

static int pwrite_full(struct fs *fs, const void *buf, size_t len,
		       uint64_t addr)
{
	struct iovec iov = { (void *)buf, len };

	return pwritev_full(fs, &iov, 1, addr);
}

int iomap_write_zeros(struct fs *fs, uint64_t len, uint64_t addr)
{
	while (len) {
		size_t n = len < sizeof(zeros) ? len : sizeof(zeros);
		int ret = pwrite_full(fs, zeros, n, addr);

		if (ret)
			return ret;
		len -= n;
		addr += n;
	}
	return 0;
}

int file_uses_iomap(struct fs *fs, const struct ext2_inode_large *inode)
{
	if (fs->iomap_mode == FS_IOMAP_OFF || !LINUX_S_ISREG(inode->i_mode))
		return 0;
	if (inode->i_flags &
	    (EXT4_INLINE_DATA_FL | EXT4_ENCRYPT_FL | EXT4_VERITY_FL))
		return 0;
	return fs->iomap_hardlinks || inode->i_links_count <= 1;
}

ssize_t iomap_read(struct fs *fs, ext2_ino_t ino, void *buf, size_t size,
		   off_t off)
{
	struct ext2_inode_large inode;
	struct iref *r;
	uint64_t pos = off, end;
	ssize_t ret;

	r = iref_pin(fs, ino, 0);
	if (!r)
		return -ENOMEM;
	fs_lock(fs);
	ret = fsi_read(fs, ino, &inode);
	fs_unlock(fs);
	if (ret)
		goto out;
	end = fsi_size(&inode);
	if (pos >= end || !size)
		goto out;
	if (size > end - pos)
		size = end - pos;
	end = pos + size;
	while (pos < end) {
		struct iomap map;
		uint64_t n;
		char *dst = (char *)buf + (pos - off);

		fs_lock(fs);
		ret = iomap_begin(fs, ino, pos, end - pos, IOMAP_OP_READ, &map);
		fs_unlock(fs);
		if (ret)
			goto out;
		n = map.offset + map.length - pos;
		if (n > end - pos)
			n = end - pos;
		if (map.type == IOMAP_MAPPED) {
			ret = pread_full(fs, dst, n,
					 map.addr + (pos - map.offset));
			if (ret)
				goto out;
		} else if (map.type == IOMAP_INLINE) {
			ret = -EIO; /* file_uses_iomap said no to these */
			goto out;
		} else {
			memset(dst, 0, n);
		}
		pos += n;
	}
out:
	iref_unpin(fs, r);
	return ret < 0 ? ret : (ssize_t)(pos - off);
}

/*
 * Under the shared lock: is [pos, end) all written blocks, so the data
 * can go straight over it? Anything else needs the exclusive lock.
 */
static int range_is_overwrite(struct fs *fs, ext2_ino_t ino, uint64_t pos,
			      uint64_t end)
{
	struct iomap map;

	while (pos < end) {
		if (iomap_begin(fs, ino, pos, end - pos, IOMAP_OP_REPORT,
				&map) ||
		    map.type != IOMAP_MAPPED)
			return 0;
		pos = map.offset + map.length;
	}
	return 1;
}

/*
 * Writes one mapping's share of the data. The rest of a new or unwritten
 * block reads as zeros from now on, so its zeros go out in the same
 * pwritev as the data (a small file's last block costs one syscall).
 */
static int write_segment(struct fs *fs, const struct iomap *map,
			 const char *src, uint64_t pos, uint64_t n)
{
	uint64_t bs = fs->e2->blocksize;
	uint64_t addr = map->addr + (pos - map->offset);
	uint64_t head = 0, tail = 0;
	struct iovec iov[3];
	int cnt = 0;

	if (map->type == IOMAP_UNWRITTEN || (map->flags & IOMAP_F_NEW)) {
		head = pos % bs;
		tail = (pos + n) % bs ? bs - (pos + n) % bs : 0;
	}
	if (head)
		iov[cnt++] = (struct iovec){ (void *)zeros, head };
	iov[cnt++] = (struct iovec){ (void *)src, n };
	if (tail)
		iov[cnt++] = (struct iovec){ (void *)zeros, tail };
	return pwritev_full(fs, iov, cnt, addr - head);
}

ssize_t iomap_write(struct fs *fs, ext2_ino_t ino, const void *buf,
		    size_t size, off_t off, int append)
{
	struct ext2_inode_large inode;
	/* Appenders race for EOF: one at a time. */
	int exclusive = append;
	uint64_t pos, start, end;
	struct iref *r;
	ssize_t ret;

again:
	r = iref_pin(fs, ino, exclusive);
	if (!r)
		return -ENOMEM;
	fs_lock(fs);
	ret = fsi_read(fs, ino, &inode);
	if (ret)
		goto unlock;
	start = append ? fsi_size(&inode) : (uint64_t)off;
	end = start + size;
	if (end < start || end > file_max_size(fs, &inode)) {
		ret = -EFBIG;
		goto unlock;
	}
	if (!exclusive && !range_is_overwrite(fs, ino, start, end)) {
		fs_unlock(fs);
		iref_unpin(fs, r);
		exclusive = 1;
		goto again;
	}
	fs_unlock(fs);

	pos = start;
	while (pos < end) {
		struct iomap map;
		uint64_t n;

		fs_lock(fs);
		ret = iomap_begin(fs, ino, pos, end - pos,
				  exclusive ? IOMAP_OP_WRITE : IOMAP_OP_READ,
				  &map);
		fs_unlock(fs);
		if (ret)
			break;
		if (map.type == IOMAP_INLINE || map.type == IOMAP_HOLE) {
			ret = -EIO;
			break;
		}
		n = map.offset + map.length - pos;
		if (n > end - pos)
			n = end - pos;
		ret = write_segment(fs, &map, (const char *)buf + (pos - start),
				    pos, n);
		if (ret) {
			fs_lock(fs);
			iomap_end(fs, ino, &map);
			fs_unlock(fs);
			break;
		}
		pos += n;
	}
	fs_lock(fs);
	if (pos > start) {
		int err = ioend(fs, ino, start, pos - start, 0);

		if (err)
			ret = err;
		else
			ret = pos - start; /* a short write keeps what it did */
	}
unlock:
	fs_unlock(fs);
	iref_unpin(fs, r);
	return ret;
}

/* Zeroes [from, to of its block) if that block is written. */
static int zero_partial_block(struct fs *fs, ext2_ino_t ino, uint64_t from)
{
	uint64_t bs = fs->e2->blocksize;
	struct iomap map;
	int ret;

	if (!(from % bs))
		return 0;
	ret = iomap_begin(fs, ino, from, 1, IOMAP_OP_REPORT, &map);
	if (ret || map.type != IOMAP_MAPPED)
		return ret;
	return iomap_write_zeros(fs, bs - from % bs,
			    map.addr + (from - map.offset));
}

int iomap_truncate_locked(struct fs *fs, ext2_ino_t ino,
			  struct ext2_inode_large *inode, uint64_t size)
{
	uint64_t old = fsi_size(inode);
	errcode_t err;
	int ret;

	if (size > file_max_size(fs, inode))
		return -EFBIG;
	ret = fsi_write(fs, ino, inode);
	if (ret)
		return ret;
	/* Bytes past EOF in the last block must read as zeros once inside. */
	ret = zero_partial_block(fs, ino, size < old ? size : old);
	if (ret)
		return ret;
	/* Even at the same size: blocks past EOF go, as ext4's truncate. */
	if (size <= old) {
		ret = iomap_punch(fs, ino, size, ~0ULL);
		if (ret)
			return ret;
		ret = fsi_read(fs, ino, inode);
		if (ret)
			return ret;
	}
	err = ext2fs_inode_size_set(fs->e2, (struct ext2_inode *)inode, size);
	if (err)
		return FS_ERR(fs, err, ino);
	return fsi_write(fs, ino, inode);
}
