/*
 * What the files of cache_io_manager share: the channel's private state
 * and the helpers one file provides to the others. Private to
 * lib/support; users include cache_io.h.
 *
 *   cache_io.c            the io_manager: ops table, open/close, options,
 *                         budget, statistics
 *   cache_io_chan.c       channel helpers, shared with fault_io.c
 *   cache_io_rw.c         IO on the fd; reads and writes through the cache
 *   cache_io_writeback.c  dirty runs, eviction, flush and fdatasync policy,
 *                         coherence with direct IO
 *   cache_io_invalidate.c dropping cached blocks: freed, discarded or
 *                         zeroed ones
 *   cache_io_journal.c    pins, transactions, held write-back, barriers
 *
 * Functions taking a struct cio run under c->lock unless they say
 * otherwise.
 */
#ifndef SUPPORT_CACHE_IO_INTERNAL_H
#define SUPPORT_CACHE_IO_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/uio.h>

#include "support/blkcache.h"
#include "support/cache_io.h"

#define CIO_MAGIC 0x43494f31u /* "CIO1" */
#define IOV_BATCH (IOV_MAX < 1024 ? IOV_MAX : 1024)

struct cio {
	unsigned magic;
	int fd;
	int rw;
	/* Where block 0 is in the fd (offset= option): added to every IO. */
	unsigned long long offset;
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

/* Byte ranges must fit off_t; hostile block numbers must not wrap. */
static inline int cio_range_ok(unsigned long long off, unsigned long long len)
{
	return off <= (unsigned long long)INT64_MAX &&
	       len <= (unsigned long long)INT64_MAX - off;
}

static inline int cio_blocks_ok(struct cio *c, unsigned long long blk,
				size_t len)
{
	return blk <= (unsigned long long)INT64_MAX / c->bc.blksize &&
	       cio_range_ok(blk * c->bc.blksize, len);
}

/* ---- cache_io.c ---- */

/* The cache under ch, looking through fault_io; NULL if there is none. */
struct cio *cio_of(io_channel ch);

/* ---- cache_io_chan.c ---- */

/*
 * Channel helpers for io_managers (cache_io and fault_io): a new channel
 * of manager m named name with private data priv, refcount 1 (NULL on
 * ENOMEM); its release; the byte length of a count as read_blk takes it;
 * the 32-bit read_blk and write_blk ops, which call the manager's 64-bit
 * ones; and the channel's read_error / write_error handlers, called on a
 * failed IO when set (they return err otherwise).
 */
io_channel cio_chan_new(io_manager m, const char *name, void *priv);
void cio_chan_free(io_channel ch);
size_t cio_chan_bytes(io_channel ch, int count);
errcode_t cio_chan_read_blk(io_channel ch, unsigned long blk, int count,
			    void *buf);
errcode_t cio_chan_write_blk(io_channel ch, unsigned long blk, int count,
			     const void *buf);
errcode_t cio_chan_read_error(io_channel ch, unsigned long long blk,
			      int count, void *buf, errcode_t err);
errcode_t cio_chan_write_error(io_channel ch, unsigned long long blk,
			       int count, const void *buf, errcode_t err);

/* ---- cache_io_rw.c ---- */

/*
 * Moves all of iov at byte off of the fd, resuming after partial
 * transfers. A read that hits end of file stops there without error:
 * *done (if not NULL) tells how far it got.
 */
errcode_t cio_dev_io(struct cio *c, int write, struct iovec *iov, int cnt,
		     unsigned long long off, size_t *done);
errcode_t cio_dev_buf(struct cio *c, int write, void *buf, size_t len,
		      unsigned long long off, size_t *done);
/* IO of the data of v[0..n), entries of adjacent blocks from v[0]->blk. */
errcode_t cio_dev_run(struct cio *c, int write, struct bc_entry **v, size_t n,
		      size_t *done);

/* Reads blk into a new cache entry; bytes past the image read as zeros. */
errcode_t cio_load_block(struct cio *c, blk64_t blk, struct bc_entry **ep);

/* len bytes of the blocks from blk into buf: from the cache, or around it. */
errcode_t cio_read_blocks(struct cio *c, blk64_t blk, size_t len,
			  unsigned char *buf);
/* len bytes to the blocks from blk: into the cache, or around it. */
errcode_t cio_write_blocks(struct cio *c, blk64_t blk, size_t len,
			   const unsigned char *buf);
/* len bytes at byte offset off, into the cache. */
errcode_t cio_write_bytes(struct cio *c, unsigned long long off, size_t len,
			  const unsigned char *buf);

/* ---- cache_io_writeback.c ---- */

#define CIO_FLUSH_SYNC 0x1 /* then fdatasync, if anything was written */
#define CIO_FLUSH_ALL  0x2 /* pinned blocks too, and even while held */

/*
 * Writes back the dirty blocks: the unpinned ones unless write-back is
 * held, or all of them with CIO_FLUSH_ALL. Returns the first error.
 */
errcode_t cio_flush_locked(struct cio *c, unsigned how);
/* Evicts until n more blocks fit the budget, or nothing more can go. */
void cio_make_room(struct cio *c, size_t n);

/* ---- cache_io_invalidate.c ---- */

/* Drops cached blocks [start, start + count) without writing them. */
errcode_t cio_drop_range(struct cio *c, blk64_t start, blk64_t count,
			 int count_stats);
/* Removes the free hooks installed for c; takes the hooks' lock, not c's. */
void cio_drop_free_hooks(struct cio *c);

/* ---- cache_io_journal.c ---- */

/* Records a block just dirtied in the open transaction (and pins it). */
errcode_t cio_txn_note(struct cio *c, struct bc_entry *e);
/* Forgets the transaction's blocks in [start, start + count). */
void cio_txn_forget(struct cio *c, blk64_t start, blk64_t count);

#endif
