/*
 * cache_io_manager's write-back: dirty blocks go to the image in block
 * order, adjacent ones merged into one pwritev; eviction under budget
 * pressure; fdatasync only when something was written since the last one;
 * coherence of the cache with direct IO on the same fd.
 */
#include <errno.h>
#include <unistd.h>

#include "support/cache_io_internal.h"

static int to_write(const struct bc_entry *e, unsigned skip)
{
	return (e->flags & (BC_DIRTY | skip)) == BC_DIRTY;
}

/*
 * Writes the dirty entries of v[0..n) (ascending blocks) that have none
 * of the `skip` flags, in runs of adjacent blocks, one pwritev each.
 * Written entries become clean; a failed run stays dirty and the other
 * runs still go. Returns the first error.
 */
static errcode_t write_runs(struct cio *c, struct bc_entry **v, size_t n,
			    unsigned skip)
{
	errcode_t first = 0;
	size_t i = 0;

	while (i < n) {
		size_t j = i + 1, k;
		errcode_t err;

		if (!to_write(v[i], skip)) {
			i++;
			continue;
		}
		while (j < n && j - i < IOV_BATCH && to_write(v[j], skip) &&
		       v[j]->blk == v[j - 1]->blk + 1)
			j++;
		err = cio_dev_run(c, 1, v + i, j - i, NULL);
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

errcode_t cio_flush_locked(struct cio *c, unsigned how)
{
	int all = !!(how & CIO_FLUSH_ALL);
	errcode_t err = 0, err2;

	if (all || !c->held) {
		c->scratch.n = 0;
		if (bc_collect_dirty(&c->bc, all, &c->scratch))
			err = EXT2_ET_NO_MEMORY;
		else
			err = write_runs(c, c->scratch.v, c->scratch.n,
					 all ? 0 : BC_PINNED);
	}
	if (how & CIO_FLUSH_SYNC) {
		err2 = sync_fd(c);
		if (!err)
			err = err2;
	}
	return err;
}

/*
 * Nothing more can go when what is left is pinned, or dirty while
 * write-back is held or failing. The first dirty victim triggers a
 * write-back of every dirty block, in merged runs, rather than one block
 * at a time.
 */
void cio_make_room(struct cio *c, size_t n)
{
	unsigned skip = c->held ? BC_DIRTY : 0;
	int wrote = 0;

	while (c->bc.nr + n > c->cap) {
		struct bc_entry *e = bc_victim(&c->bc, skip);

		if (!e)
			return;
		if (e->flags & BC_DIRTY) {
			if (wrote || cio_flush_locked(c, 0))
				skip |= BC_DIRTY;
			wrote = 1;
			continue;
		}
		bc_delete(&c->bc, e);
		c->st.evictions++;
	}
}

errcode_t cache_io_flush(io_channel ch, int sync)
{
	struct cio *c = cio_of(ch);
	errcode_t err;

	if (!c)
		return EXT2_ET_MAGIC_IO_CHANNEL;
	pthread_mutex_lock(&c->lock);
	err = cio_flush_locked(c, sync ? CIO_FLUSH_SYNC : 0);
	pthread_mutex_unlock(&c->lock);
	return err;
}

errcode_t cache_io_sync_range(io_channel ch, unsigned long long offset,
			      unsigned long long len, int how)
{
	struct cio *c = cio_of(ch);
	blk64_t start, count;
	errcode_t err = 0;
	int busy = 0;
	size_t i, bs;

	if (!c)
		return EXT2_ET_MAGIC_IO_CHANNEL;
	if (!len)
		return 0;
	if (!cio_range_ok(offset, len))
		return EINVAL;
	pthread_mutex_lock(&c->lock);
	/* The caller's IO on the fd is device IO too: fault injection sees it. */
	if (c->hook) {
		int e = c->hook(c->hook_arg, how == CACHE_IO_SYNC_WRITE, offset,
				len);

		if (e) {
			err = e;
			goto out;
		}
	}
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
	for (i = 0; i < c->scratch.n; i++)
		if ((c->scratch.v[i]->flags & (BC_DIRTY | BC_PINNED)) ==
		    (BC_DIRTY | BC_PINNED))
			busy = 1;
	err = write_runs(c, c->scratch.v, c->scratch.n, BC_PINNED);
	/*
	 * The direct write makes the clean copies stale. Dirty ones (pinned,
	 * or whose write failed) must stay; the caller hears of them.
	 */
	if (how == CACHE_IO_SYNC_WRITE)
		for (i = 0; i < c->scratch.n; i++)
			if (!(c->scratch.v[i]->flags & BC_DIRTY))
				bc_delete(&c->bc, c->scratch.v[i]);
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
