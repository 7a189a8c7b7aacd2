/*
 * cache_io_manager's data path: IO on the image fd, and reads and writes
 * through the block cache (read-ahead of missing runs, read-modify-write
 * of partial blocks, write-through when the cache is full, bypass of IO
 * larger than the whole cache).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support/cache_io_internal.h"

/* ---- IO on the fd ---- */

errcode_t cio_dev_io(struct cio *c, int write, struct iovec *iov, int cnt,
		     unsigned long long off, size_t *done)
{
	size_t total = 0, want = 0;
	errcode_t err = 0;
	int i;

	for (i = 0; i < cnt; i++)
		want += iov[i].iov_len;
	if (done)
		*done = 0;
	if (!want)
		return 0;
	if (c->hook) {
		int e = c->hook(c->hook_arg, write, off, want);

		if (e)
			return e;
	}
	if (!cio_range_ok(off + c->offset, want))
		return EINVAL;
	off += c->offset;
	while (cnt > 0) {
		ssize_t r;

		if (write)
			r = pwritev(c->fd, iov, cnt, (off_t)(off + total));
		else
			r = preadv(c->fd, iov, cnt, (off_t)(off + total));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			err = errno;
			break;
		}
		if (r == 0) {
			if (write)
				err = EXT2_ET_SHORT_WRITE;
			break;
		}
		total += r;
		while (cnt > 0 && (size_t)r >= iov->iov_len) {
			r -= iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0 && r) {
			iov->iov_base = (char *)iov->iov_base + r;
			iov->iov_len -= r;
		}
	}
	if (write) {
		c->st.bytes_written += total;
		if (total)
			c->unsynced = 1;
	} else {
		c->st.bytes_read += total;
	}
	if (done)
		*done = total;
	return err;
}

errcode_t cio_dev_buf(struct cio *c, int write, void *buf, size_t len,
		      unsigned long long off, size_t *done)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };

	return cio_dev_io(c, write, &iov, 1, off, done);
}

errcode_t cio_dev_run(struct cio *c, int write, struct bc_entry **v, size_t n,
		      size_t *done)
{
	size_t bs = c->bc.blksize, i;

	for (i = 0; i < n; i++) {
		c->iov[i].iov_base = v[i]->data;
		c->iov[i].iov_len = bs;
	}
	return cio_dev_io(c, write, c->iov, (int)n, v[0]->blk * bs, done);
}

/* ---- filling the cache ---- */

static void cache_insert(struct cio *c, struct bc_entry *e)
{
	unsigned long long bytes;

	bc_insert(&c->bc, e);
	bytes = (unsigned long long)c->bc.nr * c->bc.blksize;
	if (bytes > c->st.max_cached_bytes)
		c->st.max_cached_bytes = bytes;
}

static errcode_t mark_dirty(struct cio *c, struct bc_entry *e)
{
	bc_set_dirty(&c->bc, e);
	return c->txn_open ? cio_txn_note(c, e) : 0;
}

/*
 * Bytes past the end of the image read as zeros: this serves
 * read-modify-write and pinning, where a block beyond the end is about to
 * be written anyway.
 */
errcode_t cio_load_block(struct cio *c, blk64_t blk, struct bc_entry **ep)
{
	size_t bs = c->bc.blksize, done;
	struct bc_entry *e;
	errcode_t err;

	e = bc_alloc(&c->bc, blk);
	if (!e)
		return EXT2_ET_NO_MEMORY;
	c->st.misses++;
	err = cio_dev_buf(c, 0, e->data, bs, blk * bs, &done);
	if (err) {
		bc_free(&c->bc, e);
		return err;
	}
	memset(e->data + done, 0, bs - done);
	cache_insert(c, e);
	*ep = e;
	return 0;
}

/* ---- reading ---- */

/*
 * Reads n uncached blocks from blk, len bytes of which go to buf, into
 * the cache with one preadv. Falls back to reading straight into buf when
 * the cache cannot take them.
 */
static errcode_t read_run(struct cio *c, blk64_t blk, size_t n,
			  unsigned char *buf, size_t len)
{
	size_t bs = c->bc.blksize, done, i, got = 0;
	struct bc_entry *ents[IOV_BATCH];
	errcode_t err;

	c->st.misses += n;
	cio_make_room(c, n);
	if (c->bc.nr + n <= c->cap) {
		for (got = 0; got < n; got++) {
			ents[got] = bc_alloc(&c->bc, blk + got);
			if (!ents[got])
				break;
		}
	}
	if (got < n) {
		for (i = 0; i < got; i++)
			bc_free(&c->bc, ents[i]);
		err = cio_dev_buf(c, 0, buf, len, blk * bs, &done);
		if (!err && done < len) {
			memset(buf + done, 0, len - done);
			err = EXT2_ET_SHORT_READ;
		}
		return err;
	}
	err = cio_dev_run(c, 0, ents, n, &done);
	for (i = 0; i < n && i * bs < len; i++) {
		size_t part = len - i * bs < bs ? len - i * bs : bs;

		memcpy(buf + i * bs, ents[i]->data, part);
	}
	if (!err && done < len) {
		memset(buf + done, 0, len - done);
		err = EXT2_ET_SHORT_READ;
	}
	/* A block only partly inside the image is never cached. */
	for (i = 0; i < n; i++) {
		if (!err && (i + 1) * bs <= done)
			cache_insert(c, ents[i]);
		else
			bc_free(&c->bc, ents[i]);
	}
	return err;
}

/*
 * A read larger than the whole cache: straight into buf, then the dirty
 * cached blocks of the range are laid over what the device returned.
 */
static errcode_t bypass_read(struct cio *c, blk64_t blk, size_t len,
			     unsigned char *buf)
{
	size_t bs = c->bc.blksize, nblk = (len + bs - 1) / bs, done, i;
	errcode_t err;

	c->st.bypass_reads++;
	err = cio_dev_buf(c, 0, buf, len, blk * bs, &done);
	if (err)
		return err;
	if (done < len)
		memset(buf + done, 0, len - done);
	c->scratch.n = 0;
	if (bc_collect_range(&c->bc, blk, nblk, &c->scratch))
		return EXT2_ET_NO_MEMORY;
	for (i = 0; i < c->scratch.n; i++) {
		struct bc_entry *e = c->scratch.v[i];
		size_t off = (e->blk - blk) * bs;

		if (e->flags & BC_DIRTY)
			memcpy(buf + off, e->data,
			       len - off < bs ? len - off : bs);
	}
	/* Past the end of the image only blocks not yet written back count. */
	for (i = done / bs; done < len && i < nblk; i++) {
		struct bc_entry *e = bc_lookup(&c->bc, blk + i);

		if (!e || !(e->flags & BC_DIRTY))
			return EXT2_ET_SHORT_READ;
	}
	return 0;
}

errcode_t cio_read_blocks(struct cio *c, blk64_t blk, size_t len,
			  unsigned char *buf)
{
	size_t bs = c->bc.blksize, nblk = (len + bs - 1) / bs, i = 0;

	if (nblk > c->cap)
		return bypass_read(c, blk, len, buf);
	while (i < nblk) {
		size_t off = i * bs, j;
		struct bc_entry *e = bc_lookup(&c->bc, blk + i);
		errcode_t err;

		if (e) {
			memcpy(buf + off, e->data,
			       len - off < bs ? len - off : bs);
			e->flags |= BC_REF;
			c->st.hits++;
			i++;
			continue;
		}
		for (j = i + 1; j < nblk && j - i < IOV_BATCH; j++)
			if (bc_lookup(&c->bc, blk + j))
				break;
		err = read_run(c, blk + i, j - i, buf + off,
			       len - off < (j - i) * bs ? len - off :
							  (j - i) * bs);
		if (err)
			return err;
		i = j;
	}
	return 0;
}

/* ---- writing ---- */

/*
 * Writes part bytes at boff into uncached block blk without caching it:
 * for when the cache has no room and the block may go to the device now.
 */
static errcode_t write_through(struct cio *c, blk64_t blk, size_t boff,
			       size_t part, const unsigned char *buf)
{
	size_t bs = c->bc.blksize, done;
	unsigned char *tmp;
	errcode_t err;

	if (part == bs)
		return cio_dev_buf(c, 1, (void *)buf, bs, blk * bs, NULL);
	tmp = malloc(bs);
	if (!tmp)
		return EXT2_ET_NO_MEMORY;
	err = cio_dev_buf(c, 0, tmp, bs, blk * bs, &done);
	if (!err) {
		memset(tmp + done, 0, bs - done);
		memcpy(tmp + boff, buf, part);
		err = cio_dev_buf(c, 1, tmp, bs, blk * bs, NULL);
	}
	free(tmp);
	return err;
}

/*
 * Dirties the blocks: whole uncached blocks are filled without reading,
 * partial ones read first. Uncached blocks that do not fit go straight to
 * the device unless a transaction or held write-back needs them kept;
 * those push the cache over budget instead. Then evicts back down to
 * budget.
 */
errcode_t cio_write_bytes(struct cio *c, unsigned long long off, size_t len,
			  const unsigned char *buf)
{
	int through_ok = !c->txn_open && !c->held;
	size_t bs = c->bc.blksize;
	unsigned long long end = off + len;
	errcode_t err = 0;

	while (off < end && !err) {
		blk64_t blk = off / bs;
		size_t boff = off % bs;
		size_t part = end - off < bs - boff ? end - off : bs - boff;
		struct bc_entry *e = bc_lookup(&c->bc, blk);

		if (!e && part == bs) {
			size_t n = 1, i;

			while (n < IOV_BATCH && end - off >= (n + 1) * bs &&
			       !bc_lookup(&c->bc, blk + n))
				n++;
			cio_make_room(c, n);
			if (c->bc.nr + n > c->cap && through_ok) {
				err = cio_dev_buf(c, 1, (void *)buf, n * bs,
						  blk * bs, NULL);
				buf += n * bs;
				off += n * bs;
				continue;
			}
			for (i = 0; i < n && !err; i++) {
				e = bc_alloc(&c->bc, blk + i);
				if (!e) {
					err = EXT2_ET_NO_MEMORY;
					break;
				}
				memcpy(e->data, buf, bs);
				cache_insert(c, e);
				err = mark_dirty(c, e);
				buf += bs;
				off += bs;
			}
			continue;
		}
		if (!e) {
			cio_make_room(c, 1);
			if (c->bc.nr + 1 > c->cap && through_ok) {
				err = write_through(c, blk, boff, part, buf);
				buf += part;
				off += part;
				continue;
			}
			err = cio_load_block(c, blk, &e);
			if (err)
				break;
		} else {
			e->flags |= BC_REF;
		}
		memcpy(e->data + boff, buf, part);
		err = mark_dirty(c, e);
		buf += part;
		off += part;
	}
	cio_make_room(c, 0);
	return err;
}

/*
 * A write larger than the whole cache, when nothing needs its blocks kept
 * (no transaction, held write-back or pins), goes straight to the device;
 * cached copies of the blocks it covers are stale and dropped. A partial
 * last block goes through the cache.
 */
errcode_t cio_write_blocks(struct cio *c, blk64_t blk, size_t len,
			   const unsigned char *buf)
{
	size_t bs = c->bc.blksize, full = len / bs;
	errcode_t err;

	if ((len + bs - 1) / bs <= c->cap || c->txn_open || c->held ||
	    c->bc.nr_pinned)
		return cio_write_bytes(c, blk * bs, len, buf);
	c->st.bypass_writes++;
	err = cio_drop_range(c, blk, full, 0);
	if (!err && full)
		err = cio_dev_buf(c, 1, (void *)buf, full * bs, blk * bs, NULL);
	if (!err && len % bs)
		err = cio_write_bytes(c, (blk + full) * bs, len % bs,
				      buf + full * bs);
	return err;
}
