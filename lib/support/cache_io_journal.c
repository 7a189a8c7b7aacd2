/*
 * cache_io_manager's hooks for the journal: pinned blocks, transactions
 * that collect the blocks they dirty, held write-back and the barrier
 * between data and metadata writes.
 */
#include <errno.h>
#include <stdlib.h>

#include "support/cache_io_internal.h"

errcode_t cio_txn_note(struct cio *c, struct bc_entry *e)
{
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

void cio_txn_forget(struct cio *c, blk64_t start, blk64_t count)
{
	size_t i, k = 0;

	if (!c->txn_open)
		return;
	for (i = 0; i < c->txn_n; i++)
		if (c->txn[i] < start || c->txn[i] - start >= count)
			c->txn[k++] = c->txn[i];
	c->txn_n = k;
}

errcode_t cache_io_barrier(io_channel ch)
{
	return cache_io_flush(ch, 1);
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

		if (!cio_blocks_ok(c, blk + i, c->bc.blksize)) {
			err = EINVAL;
		} else if (!e) {
			cio_make_room(c, 1);
			err = cio_load_block(c, blk + i, &e);
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
	cio_make_room(c, 0);
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
		cio_make_room(c, 0);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

errcode_t cache_io_overlay(io_channel ch, blk64_t blk, const void *buf)
{
	struct cio *c = cio_of(ch);
	struct bc_entry *e;
	errcode_t err;

	if (!c)
		return EXT2_ET_MAGIC_IO_CHANNEL;
	if (c->rw)
		return EXT2_ET_INVALID_ARGUMENT;
	pthread_mutex_lock(&c->lock);
	/* Held: no dirty block of a read-only channel ever reaches the fd. */
	c->held = 1;
	if (!cio_blocks_ok(c, blk, c->bc.blksize))
		err = EINVAL;
	else
		err = cio_write_bytes(c, blk * c->bc.blksize, c->bc.blksize,
				      buf);
	if (!err) {
		e = bc_lookup(&c->bc, blk);
		if (e)
			bc_pin(&c->bc, e);
		else
			err = EXT2_ET_NO_MEMORY;
	}
	pthread_mutex_unlock(&c->lock);
	return err;
}
