/*
 * cache_io_manager: the io_manager the core opens images with. Owns the
 * image fd and its OFD lock, the write-back block cache (policy: budget,
 * eviction, write-back runs, fsync tracking), transactions and pins for
 * the journal, coherence with direct IO, and the free-block hook. The
 * cache's data structure is blkcache.c.
 *
 * One mutex guards a channel: libext2fs calls arrive under the core's
 * lock, but the data executor calls sync_range/note_write from its own
 * threads. IO to the fd is issued under the mutex, so the cache and the
 * device never disagree about which copy is newer.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "support/blkcache.h"
#include "support/cache_io.h"
#include "support/fault_io.h"

#define CIO_MAGIC 0x43494f31u /* "CIO1" */
#define IOV_BATCH (IOV_MAX < 1024 ? IOV_MAX : 1024)

struct cio {
	unsigned magic;
	int fd;
	int rw;
	pthread_mutex_t lock;
	struct blkcache bc;
	unsigned long long budget;
	size_t cap;             /* budget in blocks */
	int held;               /* write-back held back */
	int unsynced;           /* written since the last fdatasync */
	int txn_open;
	unsigned txn_flags;
	blk64_t *txn;
	size_t txn_n, txn_cap;
	struct bc_vec scratch;  /* reused by range and write-back walks */
	struct iovec *iov;      /* IOV_BATCH entries */
	cache_io_dev_hook hook;
	void *hook_arg;
	struct cache_io_stats st;
	struct struct_io_stats io_stats;
};

static struct cio *cio_of(io_channel ch)
{
	while (ch && ch->magic == EXT2_ET_MAGIC_IO_CHANNEL) {
		if (ch->manager == cache_io_manager) {
			struct cio *c = ch->private_data;

			return c && c->magic == CIO_MAGIC ? c : NULL;
		}
		ch = fault_io_inner(ch);
	}
	return NULL;
}

static size_t cap_of(unsigned long long budget, size_t blksize)
{
	unsigned long long cap = budget / blksize;

	return cap > SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)cap;
}

/* The hash starts at most this large and grows with use (bc_insert). */
static size_t hash_hint(size_t cap)
{
	return cap < 65536 ? cap : 65536;
}

/* Byte ranges must fit off_t; hostile block numbers must not wrap. */
static int range_ok(unsigned long long off, unsigned long long len)
{
	return off <= (unsigned long long)INT64_MAX &&
	       len <= (unsigned long long)INT64_MAX - off;
}

static int blocks_ok(struct cio *c, unsigned long long blk, size_t len)
{
	return blk <= (unsigned long long)INT64_MAX / c->bc.blksize &&
	       range_ok(blk * c->bc.blksize, len);
}

/* ---- IO on the fd ---- */

/*
 * Moves all of iov at byte off, resuming after partial transfers. A read
 * that hits end of file stops there without error: *done tells.
 */
static errcode_t dev_io(struct cio *c, int write, struct iovec *iov, int cnt,
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

static errcode_t dev_buf(struct cio *c, int write, void *buf, size_t len,
			 unsigned long long off, size_t *done)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };

	return dev_io(c, write, &iov, 1, off, done);
}

static errcode_t sync_fd(struct cio *c)
{
	if (!c->unsynced)
		return 0;
	c->unsynced = 0;
	c->st.fsyncs++;
	if (fdatasync(c->fd) < 0) {
		c->unsynced = 1;
		return errno;
	}
	return 0;
}

/* ---- write-back and eviction ---- */

static void cache_insert(struct cio *c, struct bc_entry *e)
{
	unsigned long long bytes;

	bc_insert(&c->bc, e);
	bytes = (unsigned long long)c->bc.nr * c->bc.blksize;
	if (bytes > c->st.max_cached_bytes)
		c->st.max_cached_bytes = bytes;
}

/*
 * Writes the dirty entries v[0..n) (ascending blocks) in runs of adjacent
 * blocks, one pwritev each. Written entries become clean; a failed run
 * stays dirty and the other runs still go. Returns the first error.
 */
static errcode_t writeback(struct cio *c, struct bc_entry **v, size_t n)
{
	size_t bs = c->bc.blksize, i = 0;
	errcode_t first = 0;

	while (i < n) {
		size_t j = i + 1, k;
		errcode_t err;

		while (j < n && j - i < IOV_BATCH && v[j]->blk == v[j - 1]->blk + 1)
			j++;
		for (k = i; k < j; k++) {
			c->iov[k - i].iov_base = v[k]->data;
			c->iov[k - i].iov_len = bs;
		}
		err = dev_io(c, 1, c->iov, (int)(j - i), v[i]->blk * bs, NULL);
		if (err) {
			if (!first)
				first = err;
		} else {
			for (k = i; k < j; k++)
				bc_set_clean(&c->bc, v[k]);
			c->st.writebacks += j - i;
			c->st.writeback_runs++;
		}
		i = j;
	}
	return first;
}

static errcode_t writeback_all(struct cio *c, int with_pinned)
{
	c->scratch.n = 0;
	if (bc_collect_dirty(&c->bc, with_pinned, &c->scratch))
		return EXT2_ET_NO_MEMORY;
	return writeback(c, c->scratch.v, c->scratch.n);
}

/*
 * Evicts until n more blocks fit the budget, or nothing more can go
 * (pinned blocks, dirty ones while write-back is held or failing). The
 * first dirty victim triggers a write-back of every dirty block, in
 * merged runs, rather than one block at a time.
 */
static void make_room(struct cio *c, size_t n)
{
	unsigned skip = c->held ? BC_DIRTY : 0;
	int wrote = 0;

	while (c->bc.nr + n > c->cap) {
		struct bc_entry *e = bc_victim(&c->bc, skip);

		if (!e)
			return;
		if (e->flags & BC_DIRTY) {
			if (wrote || writeback_all(c, 0))
				skip |= BC_DIRTY;
			wrote = 1;
			continue;
		}
		bc_delete(&c->bc, e);
		c->st.evictions++;
	}
}

/* Drops cached blocks [start, start + count) without writing them. */
static errcode_t drop_range(struct cio *c, blk64_t start, blk64_t count,
			    int count_stats)
{
	size_t i, k = 0;
	int ret;

	c->scratch.n = 0;
	ret = bc_collect_range(&c->bc, start, count, &c->scratch);
	for (i = 0; i < c->scratch.n; i++)
		bc_delete(&c->bc, c->scratch.v[i]);
	if (count_stats)
		c->st.invalidations += c->scratch.n;
	if (c->txn_open) {
		for (i = 0; i < c->txn_n; i++)
			if (c->txn[i] < start || c->txn[i] - start >= count)
				c->txn[k++] = c->txn[i];
		c->txn_n = k;
	}
	return ret ? EXT2_ET_NO_MEMORY : 0;
}

/* ---- reading and writing through the cache ---- */

static errcode_t mark_dirty(struct cio *c, struct bc_entry *e)
{
	bc_set_dirty(&c->bc, e);
	if (!c->txn_open)
		return 0;
	if (!(e->flags & BC_TXN)) {
		if (c->txn_n == c->txn_cap) {
			size_t cap = c->txn_cap ? 2 * c->txn_cap : 64;
			blk64_t *t = realloc(c->txn, cap * sizeof(*t));

			if (!t)
				return EXT2_ET_NO_MEMORY;
			c->txn = t;
			c->txn_cap = cap;
		}
		c->txn[c->txn_n++] = e->blk;
		e->flags |= BC_TXN;
	}
	if (c->txn_flags & CACHE_IO_TXN_PIN)
		bc_pin(&c->bc, e);
	return 0;
}

/*
 * Reads blk into a new cache entry. Bytes past the end of the image read
 * as zeros: this serves read-modify-write and pinning, where a block
 * beyond the end is about to be written anyway.
 */
static errcode_t load_block(struct cio *c, blk64_t blk, struct bc_entry **ep)
{
	size_t bs = c->bc.blksize, done;
	struct bc_entry *e;
	errcode_t err;

	e = bc_alloc(&c->bc, blk);
	if (!e)
		return EXT2_ET_NO_MEMORY;
	c->st.misses++;
	err = dev_buf(c, 0, e->data, bs, blk * bs, &done);
	if (err) {
		free(e);
		return err;
	}
	memset(e->data + done, 0, bs - done);
	cache_insert(c, e);
	*ep = e;
	return 0;
}

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
		return dev_buf(c, 1, (void *)buf, bs, blk * bs, NULL);
	tmp = malloc(bs);
	if (!tmp)
		return EXT2_ET_NO_MEMORY;
	err = dev_buf(c, 0, tmp, bs, blk * bs, &done);
	if (!err) {
		memset(tmp + done, 0, bs - done);
		memcpy(tmp + boff, buf, part);
		err = dev_buf(c, 1, tmp, bs, blk * bs, NULL);
	}
	free(tmp);
	return err;
}

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
	make_room(c, n);
	if (c->bc.nr + n <= c->cap) {
		for (got = 0; got < n; got++) {
			ents[got] = bc_alloc(&c->bc, blk + got);
			if (!ents[got])
				break;
		}
	}
	if (got < n) {
		for (i = 0; i < got; i++)
			free(ents[i]);
		err = dev_buf(c, 0, buf, len, blk * bs, &done);
		if (!err && done < len) {
			memset(buf + done, 0, len - done);
			err = EXT2_ET_SHORT_READ;
		}
		return err;
	}
	for (i = 0; i < n; i++) {
		c->iov[i].iov_base = ents[i]->data;
		c->iov[i].iov_len = bs;
	}
	err = dev_io(c, 0, c->iov, (int)n, blk * bs, &done);
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
			free(ents[i]);
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
	err = dev_buf(c, 0, buf, len, blk * bs, &done);
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
			memcpy(buf + off, e->data, len - off < bs ? len - off : bs);
	}
	/* Past the end of the image only blocks not yet written back count. */
	for (i = done / bs; done < len && i < nblk; i++) {
		struct bc_entry *e = bc_lookup(&c->bc, blk + i);

		if (!e || !(e->flags & BC_DIRTY))
			return EXT2_ET_SHORT_READ;
	}
	return 0;
}

static errcode_t cache_read(struct cio *c, blk64_t blk, size_t len,
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
			memcpy(buf + off, e->data, len - off < bs ? len - off : bs);
			e->flags |= BC_REF;
			c->st.hits++;
			i++;
			continue;
		}
		for (j = i + 1; j < nblk && j - i < IOV_BATCH; j++)
			if (bc_lookup(&c->bc, blk + j))
				break;
		err = read_run(c, blk + i, j - i, buf + off,
			       len - off < (j - i) * bs ? len - off : (j - i) * bs);
		if (err)
			return err;
		i = j;
	}
	return 0;
}

/*
 * Writes len bytes at byte offset off into the cache, dirtying the
 * blocks: whole uncached blocks are filled without reading, partial ones
 * read first. Uncached blocks that do not fit go straight to the device
 * unless a transaction or held write-back needs them kept; those push
 * the cache over budget instead. Then evicts back down to budget.
 */
static errcode_t cache_write(struct cio *c, unsigned long long off, size_t len,
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
			make_room(c, n);
			if (c->bc.nr + n > c->cap && through_ok) {
				err = dev_buf(c, 1, (void *)buf, n * bs,
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
			make_room(c, 1);
			if (c->bc.nr + 1 > c->cap && through_ok) {
				err = write_through(c, blk, boff, part, buf);
				buf += part;
				off += part;
				continue;
			}
			err = load_block(c, blk, &e);
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
	make_room(c, 0);
	return err;
}

/*
 * A write larger than the whole cache goes straight to the device; cached
 * copies of the blocks it covers are stale and dropped. A partial last
 * block goes through the cache.
 */
static errcode_t bypass_write(struct cio *c, blk64_t blk, size_t len,
			      const unsigned char *buf)
{
	size_t bs = c->bc.blksize, full = len / bs;
	errcode_t err;

	c->st.bypass_writes++;
	err = drop_range(c, blk, full, 0);
	if (!err && full)
		err = dev_buf(c, 1, (void *)buf, full * bs, blk * bs, NULL);
	if (!err && len % bs)
		err = cache_write(c, (blk + full) * bs, len % bs, buf + full * bs);
	return err;
}

/* ---- io_manager operations ---- */

static size_t count_bytes(io_channel ch, int count)
{
	return count < 0 ? (size_t)-(long long)count :
			   (size_t)count * ch->block_size;
}

static errcode_t cio_read_blk64(io_channel ch, unsigned long long blk,
				int count, void *buf)
{
	struct cio *c = ch->private_data;
	size_t len = count_bytes(ch, count);
	errcode_t err;

	if (!len)
		return 0;
	pthread_mutex_lock(&c->lock);
	if (!blocks_ok(c, blk, len))
		err = EINVAL;
	else
		err = cache_read(c, blk, len, buf);
	pthread_mutex_unlock(&c->lock);
	/* Outside the lock: e2fsck's handler reads again from in here. */
	if (err && ch->read_error)
		err = ch->read_error(ch, blk, count, buf, len, 0, err);
	return err;
}

static errcode_t cio_read_blk(io_channel ch, unsigned long blk, int count,
			      void *buf)
{
	return cio_read_blk64(ch, blk, count, buf);
}

static errcode_t cio_write_blk64(io_channel ch, unsigned long long blk,
				 int count, const void *buf)
{
	struct cio *c = ch->private_data;
	size_t len = count_bytes(ch, count);
	size_t nblk = (len + ch->block_size - 1) / ch->block_size;
	errcode_t err;

	if (!len)
		return 0;
	if (!c->rw)
		return EXT2_ET_RO_FILSYS;
	pthread_mutex_lock(&c->lock);
	if (!blocks_ok(c, blk, len))
		err = EINVAL;
	else if (nblk > c->cap && !c->txn_open && !c->held &&
		 !c->bc.nr_pinned)
		err = bypass_write(c, blk, len, buf);
	else
		err = cache_write(c, blk * c->bc.blksize, len, buf);
	pthread_mutex_unlock(&c->lock);
	if (err && ch->write_error)
		err = ch->write_error(ch, blk, count, buf, len, 0, err);
	return err;
}

static errcode_t cio_write_blk(io_channel ch, unsigned long blk, int count,
			       const void *buf)
{
	return cio_write_blk64(ch, blk, count, buf);
}

/* libext2fs writes the changed bytes of the superblock through this. */
static errcode_t cio_write_byte(io_channel ch, unsigned long offset,
				int count, const void *buf)
{
	struct cio *c = ch->private_data;
	errcode_t err;

	if (count <= 0)
		return count ? EXT2_ET_INVALID_ARGUMENT : 0;
	if (!c->rw)
		return EXT2_ET_RO_FILSYS;
	pthread_mutex_lock(&c->lock);
	if (!range_ok(offset, count))
		err = EINVAL;
	else
		err = cache_write(c, offset, count, buf);
	pthread_mutex_unlock(&c->lock);
	return err;
}

static errcode_t flush_locked(struct cio *c, int sync)
{
	errcode_t err = 0, err2;

	if (!c->held)
		err = writeback_all(c, 0);
	if (sync) {
		err2 = sync_fd(c);
		if (!err)
			err = err2;
	}
	return err;
}

static errcode_t cio_flush(io_channel ch)
{
	return cache_io_flush(ch, 1);
}

static errcode_t cio_set_blksize(io_channel ch, int blksize)
{
	struct cio *c = ch->private_data;
	errcode_t err;

	if (blksize <= 0)
		return EXT2_ET_INVALID_ARGUMENT;
	if (blksize == ch->block_size)
		return 0;
	pthread_mutex_lock(&c->lock);
	/* Cached blocks are keyed by the old size: write them, drop them. */
	if (c->txn_open || c->held || c->bc.nr_pinned) {
		err = EBUSY;
		goto out;
	}
	err = writeback_all(c, 0);
	if (err)
		goto out;
	if (bc_reset(&c->bc, blksize, hash_hint(cap_of(c->budget, blksize)))) {
		err = EXT2_ET_NO_MEMORY;
		goto out;
	}
	c->cap = cap_of(c->budget, blksize);
	ch->block_size = blksize;
out:
	pthread_mutex_unlock(&c->lock);
	return err;
}

/* "64M", "4096", "1g": bytes. */
static int parse_size(const char *arg, unsigned long long *out)
{
	unsigned long long v, mult = 1;
	char *end;

	if (!arg || *arg < '0' || *arg > '9')
		return -1;
	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno)
		return -1;
	switch (*end) {
	case 'k': case 'K':
		mult = 1ULL << 10;
		end++;
		break;
	case 'm': case 'M':
		mult = 1ULL << 20;
		end++;
		break;
	case 'g': case 'G':
		mult = 1ULL << 30;
		end++;
		break;
	}
	if (*end || v > ~0ULL / mult)
		return -1;
	*out = v * mult;
	return 0;
}

static errcode_t cio_set_option(io_channel ch, const char *option,
				const char *arg)
{
	unsigned long long bytes;

	if (strcmp(option, "cache_size"))
		return EXT2_ET_INVALID_ARGUMENT;
	if (parse_size(arg, &bytes))
		return EXT2_ET_INVALID_ARGUMENT;
	return cache_io_set_budget(ch, bytes);
}

static errcode_t cio_get_stats(io_channel ch, io_stats *stats)
{
	struct cio *c = ch->private_data;

	pthread_mutex_lock(&c->lock);
	c->io_stats.num_fields = 2;
	c->io_stats.bytes_read = c->st.bytes_read;
	c->io_stats.bytes_written = c->st.bytes_written;
	pthread_mutex_unlock(&c->lock);
	if (stats)
		*stats = &c->io_stats;
	return 0;
}

/* Byte range of blocks [blk, blk + count), or EINVAL. */
static errcode_t blk_range(struct cio *c, unsigned long long blk,
			   unsigned long long count, unsigned long long *off,
			   unsigned long long *len)
{
	size_t bs = c->bc.blksize;

	if (blk > (unsigned long long)INT64_MAX / bs ||
	    count > (unsigned long long)INT64_MAX / bs ||
	    !range_ok(blk * bs, count * bs))
		return EINVAL;
	*off = blk * bs;
	*len = count * bs;
	return 0;
}

static int is_blockdev(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISBLK(st.st_mode);
}

static errcode_t cio_discard(io_channel ch, unsigned long long blk,
			     unsigned long long count)
{
	struct cio *c = ch->private_data;
	unsigned long long off, len;
	errcode_t err;
	int r;

	if (!c->rw)
		return EXT2_ET_RO_FILSYS;
	pthread_mutex_lock(&c->lock);
	err = blk_range(c, blk, count, &off, &len);
	if (err)
		goto out;
	/* Discarded blocks have no contents worth keeping. */
	err = drop_range(c, blk, count, 1);
	if (err)
		goto out;
	if (ch->flags & CHANNEL_FLAGS_BLOCK_DEVICE) {
		uint64_t range[2] = { off, len };

		r = ioctl(c->fd, BLKDISCARD, range);
	} else {
		r = fallocate(c->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)off, (off_t)len);
	}
	if (r < 0)
		err = errno == EOPNOTSUPP || errno == ENOTTY ?
		      EXT2_ET_UNIMPLEMENTED : (errcode_t)errno;
	else
		c->unsynced = 1;
out:
	pthread_mutex_unlock(&c->lock);
	return err;
}

/* Zeros [off, off + len) of a regular file, growing it if needed. */
static int zero_file(int fd, unsigned long long off, unsigned long long len)
{
	struct stat st;

	if (fallocate(fd, FALLOC_FL_ZERO_RANGE, (off_t)off, (off_t)len) == 0)
		return 0;
	if (errno != EOPNOTSUPP)
		return -1;
	if (fstat(fd, &st) < 0)
		return -1;
	if (off < (unsigned long long)st.st_size &&
	    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) < 0)
		return -1;
	if (off + len > (unsigned long long)st.st_size &&
	    ftruncate(fd, (off_t)(off + len)) < 0)
		return -1;
	return 0;
}

static errcode_t cio_zeroout(io_channel ch, unsigned long long blk,
			     unsigned long long count)
{
	struct cio *c = ch->private_data;
	unsigned long long off, len;
	errcode_t err;
	int r;

	if (!c->rw)
		return EXT2_ET_RO_FILSYS;
	pthread_mutex_lock(&c->lock);
	err = blk_range(c, blk, count, &off, &len);
	if (err)
		goto out;
	if (ch->flags & CHANNEL_FLAGS_BLOCK_DEVICE) {
		uint64_t range[2] = { off, len };

		r = ioctl(c->fd, BLKZEROOUT, range);
	} else {
		r = zero_file(c->fd, off, len);
	}
	if (r < 0) {
		/* libext2fs then writes zeros through write_blk64. */
		err = errno == EOPNOTSUPP || errno == ENOTTY ?
		      EXT2_ET_UNIMPLEMENTED : (errcode_t)errno;
		goto out;
	}
	c->unsynced = 1;
	/* The device now holds zeros: cached copies are stale. */
	err = drop_range(c, blk, count, 1);
out:
	pthread_mutex_unlock(&c->lock);
	return err;
}

static errcode_t cio_cache_readahead(io_channel ch, unsigned long long blk,
				     unsigned long long count)
{
	struct cio *c = ch->private_data;
	unsigned long long off, len;

	if (blk_range(c, blk, count, &off, &len))
		return EINVAL;
	posix_fadvise(c->fd, (off_t)off, (off_t)len, POSIX_FADV_WILLNEED);
	return 0;
}

/* ---- free-block hook registry ---- */

struct free_hook {
	struct free_hook *next;
	ext2_filsys fs;
	struct cio *c;
	void (*old)(ext2_filsys fs, blk64_t blk, int inuse);
	void (*old_range)(ext2_filsys fs, blk64_t blk, blk_t num, int inuse);
};

static pthread_mutex_t hooks_lock = PTHREAD_MUTEX_INITIALIZER;
static struct free_hook *hooks;

static int find_hook(ext2_filsys fs, struct free_hook *out)
{
	struct free_hook *h;
	int found = 0;

	pthread_mutex_lock(&hooks_lock);
	for (h = hooks; h; h = h->next) {
		if (h->fs == fs) {
			*out = *h;
			found = 1;
			break;
		}
	}
	pthread_mutex_unlock(&hooks_lock);
	return found;
}

static void invalidate_cio(struct cio *c, blk64_t start, blk64_t count)
{
	pthread_mutex_lock(&c->lock);
	drop_range(c, start, count, 1);
	pthread_mutex_unlock(&c->lock);
}

/* Is every block of [start, end) free in the in-memory bitmap? */
static int all_free(ext2_filsys fs, blk64_t start, blk64_t end)
{
	while (start < end) {
		blk64_t n = end - start < (1U << 31) ? end - start : (1U << 31);

		if (!ext2fs_test_block_bitmap_range2(fs->block_map, start,
						     (unsigned)n))
			return 0;
		start += n;
	}
	return 1;
}

/* With bigalloc a free releases whole clusters. */
static void invalidate_clusters(struct cio *c, ext2_filsys fs, blk64_t start,
				blk64_t end)
{
	blk64_t ratio = EXT2FS_CLUSTER_RATIO(fs);

	start -= start % ratio;
	end = (end + ratio - 1) / ratio * ratio;
	invalidate_cio(c, start, end - start);
}

static void hook_block(ext2_filsys fs, blk64_t blk, int inuse)
{
	struct free_hook h;

	if (!find_hook(fs, &h))
		return;
	if (inuse < 0)
		invalidate_clusters(h.c, fs, blk, blk + 1);
	if (h.old)
		h.old(fs, blk, inuse);
}

/*
 * Where the run of free blocks that ends at `end` starts: exponential
 * search back from end, then binary search, with bitmap range tests.
 */
static blk64_t free_run_start(ext2_filsys fs, blk64_t end)
{
	blk64_t first = fs->super->s_first_data_block, lo = end, bad;
	blk64_t step = 1;

	if (!fs->block_map || end <= first ||
	    end > ext2fs_blocks_count(fs->super))
		return end;
	/* Invariant: [lo, end) is free. Range tests take 32-bit lengths. */
	for (;;) {
		if (lo == first)
			return lo;
		bad = lo - first > step ? lo - step : first;
		if (!all_free(fs, bad, lo))
			break;
		lo = bad;
		if (step < (1ULL << 30))
			step <<= 1;
	}
	/* [bad, end) holds a used block: the run starts in (bad, lo]. */
	while (lo - bad > 1) {
		blk64_t mid = bad + (lo - bad) / 2;

		if (all_free(fs, mid, lo))
			lo = mid;
		else
			bad = mid;
	}
	return lo;
}

/*
 * libext2fs 1.47.0 calls this with (blk + num, 0) instead of (blk, num):
 * its loop advances both before the call. Then the freed run is found
 * in the bitmap (already updated): the free blocks just below blk. Any
 * older free blocks of that run lose their cached copies too, which is
 * harmless: nothing of a free block is worth keeping.
 */
static void hook_range(ext2_filsys fs, blk64_t blk, blk_t num, int inuse)
{
	struct free_hook h;

	if (!find_hook(fs, &h))
		return;
	if (inuse < 0 && num)
		invalidate_clusters(h.c, fs, blk, blk + num);
	else if (inuse < 0)
		invalidate_clusters(h.c, fs, free_run_start(fs, blk), blk);
	if (h.old_range)
		h.old_range(fs, blk, num, inuse);
}

static void drop_hooks(struct cio *c)
{
	struct free_hook **pp, *h;

	pthread_mutex_lock(&hooks_lock);
	pp = &hooks;
	while ((h = *pp)) {
		if (h->c == c) {
			*pp = h->next;
			free(h);
		} else {
			pp = &h->next;
		}
	}
	pthread_mutex_unlock(&hooks_lock);
}

errcode_t cache_io_install_free_hook(ext2_filsys fs)
{
	struct cio *c = cio_of(fs->io);
	struct free_hook *h, tmp;

	if (!c)
		return EXT2_ET_MAGIC_IO_CHANNEL;
	if (find_hook(fs, &tmp))
		return 0;
	h = calloc(1, sizeof(*h));
	if (!h)
		return EXT2_ET_NO_MEMORY;
	h->fs = fs;
	h->c = c;
	pthread_mutex_lock(&hooks_lock);
	ext2fs_set_block_alloc_stats_callback(fs, hook_block, &h->old);
	ext2fs_set_block_alloc_stats_range_callback(fs, hook_range,
						    &h->old_range);
	h->next = hooks;
	hooks = h;
	pthread_mutex_unlock(&hooks_lock);
	return 0;
}

/* ---- open and close ---- */

static errcode_t take_ofd_lock(int fd, int rw)
{
	struct flock fl = {
		.l_type = rw ? F_WRLCK : F_RDLCK,
		.l_whence = SEEK_SET,
		.l_start = 0,
		.l_len = 0,
	};

	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	if (errno == EAGAIN || errno == EACCES)
		return EBUSY;
	/* Filesystems without lock support: open unlocked. */
	return 0;
}

static void cio_free(struct cio *c)
{
	bc_destroy(&c->bc);
	bc_vec_free(&c->scratch);
	free(c->iov);
	free(c->txn);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static errcode_t cio_open(const char *name, int flags, io_channel *chp)
{
	int oflags = (flags & IO_FLAG_RW ? O_RDWR : O_RDONLY) | O_CLOEXEC;
	io_channel ch = NULL;
	struct cio *c = NULL;
	struct stat st;
	errcode_t err;

	if (!name || !*name)
		return EXT2_ET_BAD_DEVICE_NAME;
	ch = calloc(1, sizeof(*ch));
	c = calloc(1, sizeof(*c));
	if (!ch || !c) {
		free(ch);
		free(c);
		return EXT2_ET_NO_MEMORY;
	}
	c->magic = CIO_MAGIC;
	c->fd = -1;
	c->rw = !!(flags & IO_FLAG_RW);
	c->budget = CACHE_IO_DEFAULT_BUDGET;
	pthread_mutex_init(&c->lock, NULL);
	ch->name = strdup(name);
	c->iov = calloc(IOV_BATCH, sizeof(*c->iov));
	if (!ch->name || !c->iov ||
	    bc_init(&c->bc, 1024, hash_hint(cap_of(c->budget, 1024)))) {
		err = EXT2_ET_NO_MEMORY;
		goto fail;
	}
	c->cap = cap_of(c->budget, 1024);
	/* O_EXCL without O_CREAT means "not mounted" only for devices. */
	if ((flags & IO_FLAG_EXCLUSIVE) && stat(name, &st) == 0 &&
	    S_ISBLK(st.st_mode))
		oflags |= O_EXCL;
	c->fd = open(name, oflags);
	if (c->fd < 0) {
		err = errno;
		goto fail;
	}
	err = take_ofd_lock(c->fd, c->rw);
	if (err)
		goto fail;

	ch->magic = EXT2_ET_MAGIC_IO_CHANNEL;
	ch->manager = cache_io_manager;
	ch->block_size = 1024;
	ch->refcount = 1;
	ch->private_data = c;
	if (is_blockdev(c->fd))
		ch->flags |= CHANNEL_FLAGS_BLOCK_DEVICE;
	else
		ch->flags |= CHANNEL_FLAGS_DISCARD_ZEROES;
	if (flags & IO_FLAG_THREADS)
		ch->flags |= CHANNEL_FLAGS_THREADS;
	*chp = ch;
	return 0;

fail:
	if (c->fd >= 0)
		close(c->fd);
	free(ch->name);
	free(ch);
	cio_free(c);
	return err;
}

/*
 * The last close writes every dirty block, pinned or held ones too: the
 * image must be complete when the fd goes. Closing the fd releases the
 * OFD lock.
 */
static errcode_t cio_close(io_channel ch)
{
	struct cio *c = ch->private_data;
	errcode_t err, err2;

	if (--ch->refcount > 0)
		return 0;
	drop_hooks(c);
	pthread_mutex_lock(&c->lock);
	err = writeback_all(c, 1);
	err2 = sync_fd(c);
	if (!err)
		err = err2;
	pthread_mutex_unlock(&c->lock);
	if (close(c->fd) < 0 && !err)
		err = errno;
	c->magic = 0;
	cio_free(c);
	free(ch->name);
	ch->magic = 0;
	free(ch);
	return err;
}

static struct struct_io_manager cache_io_ops = {
	.magic = EXT2_ET_MAGIC_IO_MANAGER,
	.name = "cache I/O Manager",
	.open = cio_open,
	.close = cio_close,
	.set_blksize = cio_set_blksize,
	.read_blk = cio_read_blk,
	.write_blk = cio_write_blk,
	.flush = cio_flush,
	.write_byte = cio_write_byte,
	.set_option = cio_set_option,
	.get_stats = cio_get_stats,
	.read_blk64 = cio_read_blk64,
	.write_blk64 = cio_write_blk64,
	.discard = cio_discard,
	.cache_readahead = cio_cache_readahead,
	.zeroout = cio_zeroout,
};

io_manager cache_io_manager = &cache_io_ops;

/* ---- the public extras ---- */

errcode_t cache_io_set_budget(io_channel ch, unsigned long long bytes)
{
	struct cio *c = cio_of(ch);

	if (!c)
		return EXT2_ET_MAGIC_IO_CHANNEL;
	pthread_mutex_lock(&c->lock);
	c->budget = bytes;
	c->cap = cap_of(bytes, c->bc.blksize);
	make_room(c, 0);
	bc_rehash(&c->bc, hash_hint(c->cap) > c->bc.nr ? hash_hint(c->cap) : c->bc.nr);
	c->st.max_cached_bytes = (unsigned long long)c->bc.nr * c->bc.blksize;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

errcode_t cache_io_flush(io_channel ch, int sync)
{
	struct cio *c = cio_of(ch);
	errcode_t err;

	if (!c)
		return EXT2_ET_MAGIC_IO_CHANNEL;
	pthread_mutex_lock(&c->lock);
	err = flush_locked(c, sync);
	pthread_mutex_unlock(&c->lock);
	return err;
}

errcode_t cache_io_barrier(io_channel ch)
{
	return cache_io_flush(ch, 1);
}

errcode_t cache_io_invalidate(io_channel ch, blk64_t start, blk64_t count)
{
	struct cio *c = cio_of(ch);
	errcode_t err;

	if (!c)
		return EXT2_ET_MAGIC_IO_CHANNEL;
	pthread_mutex_lock(&c->lock);
	err = drop_range(c, start, count, 1);
	pthread_mutex_unlock(&c->lock);
	return err;
}

int cache_io_get_fd(io_channel ch)
{
	struct cio *c = cio_of(ch);

	return c ? c->fd : -1;
}

errcode_t cache_io_sync_range(io_channel ch, unsigned long long offset,
			      unsigned long long len, int how)
{
	struct cio *c = cio_of(ch);
	size_t i, k = 0, bs;
	blk64_t start, count;
	errcode_t err = 0;
	int busy = 0;

	if (!c)
		return EXT2_ET_MAGIC_IO_CHANNEL;
	if (!len)
		return 0;
	if (!range_ok(offset, len))
		return EINVAL;
	pthread_mutex_lock(&c->lock);
	if (!c->bc.nr || (how == CACHE_IO_SYNC_READ && !c->bc.nr_dirty))
		goto out;
	bs = c->bc.blksize;
	start = offset / bs;
	count = (offset + len - 1) / bs - start + 1;
	c->scratch.n = 0;
	if (bc_collect_range(&c->bc, start, count, &c->scratch)) {
		err = EXT2_ET_NO_MEMORY;
		goto out;
	}
	for (i = 0; i < c->scratch.n; i++) {
		struct bc_entry *e = c->scratch.v[i];

		if (!(e->flags & BC_DIRTY))
			continue;
		if (e->flags & BC_PINNED)
			busy = 1;
		else
			c->scratch.v[k++] = e;
	}
	err = writeback(c, c->scratch.v, k);
	if (how == CACHE_IO_SYNC_WRITE) {
		c->scratch.n = 0;
		if (bc_collect_range(&c->bc, start, count, &c->scratch) &&
		    !err)
			err = EXT2_ET_NO_MEMORY;
		for (i = 0; i < c->scratch.n; i++)
			if (!(c->scratch.v[i]->flags & BC_DIRTY))
				bc_delete(&c->bc, c->scratch.v[i]);
	}
	if (!err && busy)
		err = EBUSY;
out:
	pthread_mutex_unlock(&c->lock);
	return err;
}

void cache_io_note_write(io_channel ch)
{
	struct cio *c = cio_of(ch);

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->unsynced = 1;
	pthread_mutex_unlock(&c->lock);
}

int cache_io_block_state(io_channel ch, blk64_t blk)
{
	struct cio *c = cio_of(ch);
	struct bc_entry *e;
	int state = 0;

	if (!c)
		return 0;
	pthread_mutex_lock(&c->lock);
	e = bc_lookup(&c->bc, blk);
	if (e) {
		state = CACHE_IO_CACHED;
		if (e->flags & BC_DIRTY)
			state |= CACHE_IO_DIRTY;
		if (e->flags & BC_PINNED)
			state |= CACHE_IO_PINNED;
	}
	pthread_mutex_unlock(&c->lock);
	return state;
}

errcode_t cache_io_pin(io_channel ch, blk64_t blk, blk64_t count)
{
	struct cio *c = cio_of(ch);
	errcode_t err = 0;
	blk64_t i;

	if (!c)
		return EXT2_ET_MAGIC_IO_CHANNEL;
	pthread_mutex_lock(&c->lock);
	for (i = 0; i < count && !err; i++) {
		struct bc_entry *e = bc_lookup(&c->bc, blk + i);

		if (!blocks_ok(c, blk + i, c->bc.blksize)) {
			err = EINVAL;
		} else if (!e) {
			make_room(c, 1);
			err = load_block(c, blk + i, &e);
		}
		if (!err)
			bc_pin(&c->bc, e);
	}
	pthread_mutex_unlock(&c->lock);
	return err;
}

errcode_t cache_io_unpin(io_channel ch, blk64_t blk, blk64_t count)
{
	struct cio *c = cio_of(ch);
	errcode_t err = 0;
	size_t i;

	if (!c)
		return EXT2_ET_MAGIC_IO_CHANNEL;
	pthread_mutex_lock(&c->lock);
	c->scratch.n = 0;
	if (bc_collect_range(&c->bc, blk, count, &c->scratch))
		err = EXT2_ET_NO_MEMORY;
	for (i = 0; i < c->scratch.n; i++)
		bc_unpin(&c->bc, c->scratch.v[i]);
	make_room(c, 0);
	pthread_mutex_unlock(&c->lock);
	return err;
}

errcode_t cache_io_txn_begin(io_channel ch, unsigned flags)
{
	struct cio *c = cio_of(ch);
	errcode_t err = 0;

	if (!c)
		return EXT2_ET_MAGIC_IO_CHANNEL;
	pthread_mutex_lock(&c->lock);
	if (c->txn_open) {
		err = EBUSY;
	} else {
		c->txn_open = 1;
		c->txn_flags = flags;
		c->txn_n = 0;
	}
	pthread_mutex_unlock(&c->lock);
	return err;
}

static int cmp_blk64(const void *a, const void *b)
{
	blk64_t x = *(const blk64_t *)a, y = *(const blk64_t *)b;

	return x < y ? -1 : x > y;
}

errcode_t cache_io_txn_end(io_channel ch, blk64_t **blocks, size_t *count)
{
	struct cio *c = cio_of(ch);
	size_t i, k = 0;

	*blocks = NULL;
	*count = 0;
	if (!c)
		return EXT2_ET_MAGIC_IO_CHANNEL;
	pthread_mutex_lock(&c->lock);
	if (!c->txn_open) {
		pthread_mutex_unlock(&c->lock);
		return EXT2_ET_INVALID_ARGUMENT;
	}
	qsort(c->txn, c->txn_n, sizeof(*c->txn), cmp_blk64);
	for (i = 0; i < c->txn_n; i++) {
		struct bc_entry *e;

		if (k && c->txn[k - 1] == c->txn[i])
			continue;
		c->txn[k++] = c->txn[i];
		e = bc_lookup(&c->bc, c->txn[i]);
		if (e)
			e->flags &= ~BC_TXN;
	}
	if (k) {
		*blocks = c->txn;
		*count = k;
		c->txn = NULL;
		c->txn_cap = 0;
	}
	c->txn_n = 0;
	c->txn_open = 0;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

errcode_t cache_io_hold_writeback(io_channel ch, int on)
{
	struct cio *c = cio_of(ch);

	if (!c)
		return EXT2_ET_MAGIC_IO_CHANNEL;
	pthread_mutex_lock(&c->lock);
	c->held = !!on;
	if (!c->held)
		make_room(c, 0);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

errcode_t cache_io_stats(io_channel ch, struct cache_io_stats *st)
{
	struct cio *c = cio_of(ch);
	unsigned long long bs;

	if (!c)
		return EXT2_ET_MAGIC_IO_CHANNEL;
	pthread_mutex_lock(&c->lock);
	bs = c->bc.blksize;
	*st = c->st;
	st->budget = c->budget;
	st->cached_bytes = c->bc.nr * bs;
	st->dirty_bytes = c->bc.nr_dirty * bs;
	st->pinned_bytes = c->bc.nr_pinned * bs;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

void cache_io_print_stats(io_channel ch, FILE *f)
{
	struct cache_io_stats st;

	if (cache_io_stats(ch, &st))
		return;
#define P(field) fprintf(f, "cache: %-16s %llu\n", #field, st.field)
	P(hits);
	P(misses);
	P(evictions);
	P(invalidations);
	P(writebacks);
	P(writeback_runs);
	P(bypass_reads);
	P(bypass_writes);
	P(bytes_read);
	P(bytes_written);
	P(fsyncs);
	P(budget);
	P(cached_bytes);
	P(max_cached_bytes);
	P(dirty_bytes);
	P(pinned_bytes);
#undef P
}

errcode_t cache_io_set_dev_hook(io_channel ch, cache_io_dev_hook fn, void *arg)
{
	struct cio *c = cio_of(ch);

	if (!c)
		return EXT2_ET_MAGIC_IO_CHANNEL;
	pthread_mutex_lock(&c->lock);
	c->hook = fn;
	c->hook_arg = arg;
	pthread_mutex_unlock(&c->lock);
	return 0;
}
