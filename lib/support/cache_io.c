/*
 * cache_io_manager: the io_manager the core opens images with. This file
 * owns the channel: open (the image fd and its OFD lock), close, the ops
 * table, options, the budget and the statistics. The cache's data path
 * is cache_io_rw.c, write-back and eviction cache_io_writeback.c,
 * invalidation cache_io_invalidate.c, the journal's hooks
 * cache_io_journal.c; the data structure is blkcache.c.
 *
 * One mutex guards a channel: libext2fs calls arrive under the core's
 * lock, but the data executor calls sync_range/note_write from its own
 * threads. IO to the fd is issued under the mutex, so the cache and the
 * device never disagree about which copy is newer.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/cache_io_internal.h"
#include "support/fault_io.h"
#include "support/image_users.h"

struct cio *cio_of(io_channel ch)
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

/* The budget in blocks of the current size; spares stay within it. */
static void set_cap(struct cio *c)
{
	c->cap = cap_of(c->budget, c->bc.blksize);
	bc_set_keep(&c->bc, c->cap);
}

/* The hash starts at most this large and grows with use (bc_insert). */
static size_t hash_hint(size_t cap)
{
	return cap < 65536 ? cap : 65536;
}

/* ---- reads and writes ---- */

static errcode_t cio_read_blk64(io_channel ch, unsigned long long blk,
				int count, void *buf)
{
	struct cio *c = ch->private_data;
	size_t len = cio_chan_bytes(ch, count);
	errcode_t err;

	if (!len)
		return 0;
	pthread_mutex_lock(&c->lock);
	if (!cio_blocks_ok(c, blk, len))
		err = EINVAL;
	else
		err = cio_read_blocks(c, blk, len, buf);
	pthread_mutex_unlock(&c->lock);
	/* Outside the lock: e2fsck's handler reads again from in here. */
	if (err)
		err = cio_chan_read_error(ch, blk, count, buf, err);
	return err;
}

static errcode_t cio_write_blk64(io_channel ch, unsigned long long blk,
				 int count, const void *buf)
{
	struct cio *c = ch->private_data;
	size_t len = cio_chan_bytes(ch, count);
	errcode_t err;

	if (!len)
		return 0;
	if (!c->rw)
		return EXT2_ET_RO_FILSYS;
	pthread_mutex_lock(&c->lock);
	if (!cio_blocks_ok(c, blk, len))
		err = EINVAL;
	else
		err = cio_write_blocks(c, blk, len, buf);
	pthread_mutex_unlock(&c->lock);
	if (err)
		err = cio_chan_write_error(ch, blk, count, buf, err);
	return err;
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
	if (!cio_range_ok(offset, count))
		err = EINVAL;
	else
		err = cio_write_bytes(c, offset, count, buf);
	pthread_mutex_unlock(&c->lock);
	return err;
}

static errcode_t cio_flush(io_channel ch)
{
	return cache_io_flush(ch, 1);
}

/* ---- block size and options ---- */

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
	err = cio_flush_locked(c, 0);
	if (err)
		goto out;
	if (bc_reset(&c->bc, blksize, hash_hint(cap_of(c->budget, blksize)))) {
		err = EXT2_ET_NO_MEMORY;
		goto out;
	}
	set_cap(c);
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

/*
 * Moves block 0 to byte `bytes` of the fd. Only before the first IO:
 * what is cached was read at the old place.
 */
static errcode_t set_offset(io_channel ch, unsigned long long bytes)
{
	struct cio *c = ch->private_data;
	errcode_t err = 0;

	if (bytes > (unsigned long long)INT64_MAX)
		return EXT2_ET_INVALID_ARGUMENT;
	pthread_mutex_lock(&c->lock);
	if (c->bc.nr)
		err = EBUSY;
	else
		c->offset = bytes;
	pthread_mutex_unlock(&c->lock);
	return err;
}

static errcode_t cio_set_option(io_channel ch, const char *option,
				const char *arg)
{
	unsigned long long bytes;

	if (strcmp(option, "cache_size") && strcmp(option, "offset"))
		return EXT2_ET_INVALID_ARGUMENT;
	if (parse_size(arg, &bytes))
		return EXT2_ET_INVALID_ARGUMENT;
	if (!strcmp(option, "offset"))
		return set_offset(ch, bytes);
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

/* ---- discard, zeroout, readahead ---- */

/* Byte range in the fd of blocks [blk, blk + count), or EINVAL. */
static errcode_t blk_range(struct cio *c, unsigned long long blk,
			   unsigned long long count, unsigned long long *off,
			   unsigned long long *len)
{
	size_t bs = c->bc.blksize;

	if (blk > (unsigned long long)INT64_MAX / bs ||
	    count > (unsigned long long)INT64_MAX / bs ||
	    !cio_range_ok(blk * bs, count * bs) ||
	    !cio_range_ok(blk * bs + c->offset, count * bs))
		return EINVAL;
	*off = blk * bs + c->offset;
	*len = count * bs;
	return 0;
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

/*
 * Discards (zero == 0) or zeroes blocks [blk, blk + count) on the device:
 * BLKDISCARD / BLKZEROOUT on a block device, a punched hole / zeroed
 * range in a file. EXT2_ET_UNIMPLEMENTED where neither works; for zeroout
 * libext2fs then writes zeros through write_blk64.
 */
static errcode_t clear_range(io_channel ch, unsigned long long blk,
			     unsigned long long count, int zero)
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
	if (!zero) {
		err = cio_drop_range(c, blk, count, 1);
		if (err)
			goto out;
	}
	if (ch->flags & CHANNEL_FLAGS_BLOCK_DEVICE) {
		uint64_t range[2] = { off, len };

		r = ioctl(c->fd, zero ? BLKZEROOUT : BLKDISCARD, range);
	} else if (zero) {
		r = zero_file(c->fd, off, len);
	} else {
		r = fallocate(c->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)off, (off_t)len);
	}
	if (r < 0) {
		err = errno == EOPNOTSUPP || errno == ENOTTY ?
		      EXT2_ET_UNIMPLEMENTED : (errcode_t)errno;
		goto out;
	}
	c->unsynced = 1;
	/* The device now holds zeros: cached copies are stale. */
	if (zero)
		err = cio_drop_range(c, blk, count, 1);
out:
	pthread_mutex_unlock(&c->lock);
	return err;
}

static errcode_t cio_discard(io_channel ch, unsigned long long blk,
			     unsigned long long count)
{
	return clear_range(ch, blk, count, 0);
}

static errcode_t cio_zeroout(io_channel ch, unsigned long long blk,
			     unsigned long long count)
{
	return clear_range(ch, blk, count, 1);
}

static errcode_t cio_cache_readahead(io_channel ch, unsigned long long blk,
				     unsigned long long count)
{
	struct cio *c = ch->private_data;
	unsigned long long off, len;

	if (blk_range(c, blk, count, &off, &len))
		return EINVAL;
	posix_fadvise(c->fd, (off_t)off, (off_t)len, POSIX_FADV_WILLNEED);
	pthread_mutex_lock(&c->lock);
	c->st.readahead_blocks += count;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* ---- open and close ---- */

/* A holder on its way out (see IMAGE_GRACE_MS) gets time to go. */
static errcode_t take_ofd_lock(int fd, int rw)
{
	struct flock fl = {
		.l_type = rw ? F_WRLCK : F_RDLCK,
		.l_whence = SEEK_SET,
		.l_start = 0,
		.l_len = 0,
	};
	const struct timespec poll = { 0, IMAGE_POLL_MS * 1000000L };
	int waited;

	for (waited = 0;; waited += IMAGE_POLL_MS) {
		if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
			return 0;
		if (errno != EAGAIN && errno != EACCES)
			return 0; /* no lock support: open unlocked */
		if (waited >= IMAGE_GRACE_MS)
			return EBUSY;
		nanosleep(&poll, NULL);
	}
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
	c = calloc(1, sizeof(*c));
	if (!c)
		return EXT2_ET_NO_MEMORY;
	c->magic = CIO_MAGIC;
	c->fd = -1;
	c->rw = !!(flags & IO_FLAG_RW);
	c->budget = CACHE_IO_DEFAULT_BUDGET;
	pthread_mutex_init(&c->lock, NULL);
	ch = cio_chan_new(cache_io_manager, name, c);
	c->iov = calloc(IOV_BATCH, sizeof(*c->iov));
	if (!ch || !c->iov ||
	    bc_init(&c->bc, 1024, hash_hint(cap_of(c->budget, 1024)))) {
		err = EXT2_ET_NO_MEMORY;
		goto fail;
	}
	set_cap(c);
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
	if (fstat(c->fd, &st) == 0 && S_ISBLK(st.st_mode))
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
	if (ch)
		cio_chan_free(ch);
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
	errcode_t err;

	if (--ch->refcount > 0)
		return 0;
	cio_drop_free_hooks(c);
	pthread_mutex_lock(&c->lock);
	/* A read-only channel's dirty blocks are overlays: never written. */
	err = c->rw ? cio_flush_locked(c, CIO_FLUSH_ALL | CIO_FLUSH_SYNC) : 0;
	pthread_mutex_unlock(&c->lock);
	if (close(c->fd) < 0 && !err)
		err = errno;
	c->magic = 0;
	cio_free(c);
	cio_chan_free(ch);
	return err;
}

static struct struct_io_manager cache_io_ops = {
	.magic = EXT2_ET_MAGIC_IO_MANAGER,
	.name = "cache I/O Manager",
	.open = cio_open,
	.close = cio_close,
	.set_blksize = cio_set_blksize,
	.read_blk = cio_chan_read_blk,
	.write_blk = cio_chan_write_blk,
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

/* ---- budget, fd, statistics, device hook ---- */

errcode_t cache_io_set_budget(io_channel ch, unsigned long long bytes)
{
	struct cio *c = cio_of(ch);

	if (!c)
		return EXT2_ET_MAGIC_IO_CHANNEL;
	pthread_mutex_lock(&c->lock);
	c->budget = bytes;
	set_cap(c);
	cio_make_room(c, 0);
	bc_rehash(&c->bc, hash_hint(c->cap) > c->bc.nr ? hash_hint(c->cap) :
						       c->bc.nr);
	c->st.max_cached_bytes = (unsigned long long)c->bc.nr * c->bc.blksize;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int cache_io_get_fd(io_channel ch)
{
	struct cio *c = cio_of(ch);

	return c ? c->fd : -1;
}

unsigned long long cache_io_get_offset(io_channel ch)
{
	struct cio *c = cio_of(ch);

	return c ? c->offset : 0;
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
	P(readahead_blocks);
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
