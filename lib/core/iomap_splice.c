/*
 * File data by reference: for a front-end that moves the bytes of a read
 * itself, from the image fd into its reply (splice), without copying them
 * through a buffer of its own. The mapping comes from the iomap engine; the
 * inode's IO lock, held shared until the front-end is done, keeps the
 * blocks from being freed and given to another file in between.
 */
#include "core/iomap.h"
#include "support/cache_io.h"

/* Appends [addr, addr + len) (or zeros) to segs, merging with the last. */
static int add_seg(struct fs_data_seg *segs, unsigned max, unsigned *n,
		   uint64_t addr, uint64_t len, int zero)
{
	struct fs_data_seg *last = *n ? &segs[*n - 1] : NULL;

	if (last && last->zero == zero &&
	    (zero || last->addr + last->len == addr)) {
		last->len += len;
		return 0;
	}
	if (*n == max)
		return -E2BIG;
	segs[*n].addr = zero ? 0 : addr;
	segs[*n].len = len;
	segs[*n].zero = zero;
	(*n)++;
	return 0;
}

ssize_t file_read_pin(struct fs *fs, ext2_ino_t ino, off_t off, size_t size,
		      struct fs_data_seg *segs, unsigned max, unsigned *nsegs,
		      struct fs_data_pin **pin)
{
	struct ext2_inode_large inode;
	uint64_t pos = off, end;
	struct iref *r;
	int ret;

	*nsegs = 0;
	*pin = NULL;
	if (off < 0)
		return -EINVAL;
	r = iref_pin(fs, ino, 0);
	if (!r)
		return -ENOMEM;
	fs_lock(fs);
	ret = fsi_read(fs, ino, &inode);
	if (!ret && !file_uses_iomap(fs, &inode))
		ret = -EOPNOTSUPP;
	fs_unlock(fs);
	if (ret)
		goto fail;
	end = fsi_size(&inode);
	if (pos >= end || !size)
		goto fail;
	if (size < end - pos)
		end = pos + size;
	while (pos < end) {
		struct iomap map;
		uint64_t n, addr;

		fs_lock(fs);
		ret = iomap_begin(fs, ino, pos, end - pos, IOMAP_OP_READ, &map);
		fs_unlock(fs);
		if (ret)
			goto fail;
		if (map.type == IOMAP_INLINE) {
			ret = -EIO; /* file_uses_iomap said no to these */
			goto fail;
		}
		n = map.offset + map.length - pos;
		if (n > end - pos)
			n = end - pos;
		addr = map.addr + (pos - map.offset);
		if (map.type == IOMAP_MAPPED &&
		    cache_io_sync_range(fs->e2->io, addr, n,
					CACHE_IO_SYNC_READ)) {
			ret = -EIO;
			goto fail;
		}
		/* The segments are in the fd: past offset=. */
		ret = add_seg(segs, max, nsegs, addr + fs->data_off, n,
			      map.type != IOMAP_MAPPED);
		if (ret)
			goto fail;
		pos += n;
	}
	*pin = (struct fs_data_pin *)r;
	return pos - off;
fail:
	*nsegs = 0;
	iref_unpin(fs, r);
	return ret;
}

void fs_data_unpin(struct fs *fs, struct fs_data_pin *pin,
		   const struct fs_data_seg *segs, unsigned nsegs)
{
	for (unsigned i = 0; i < nsegs; i++)
		if (!segs[i].zero)
			uncache_read(fs, segs[i].addr, segs[i].len);
	if (pin)
		iref_unpin(fs, (struct iref *)pin);
}

int fs_data_fd(struct fs *fs)
{
	return fs->data_fd;
}
