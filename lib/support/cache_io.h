/*
 * cache_io_manager: a libext2fs io_manager that does its own IO on the
 * image fd, with a write-back block cache under a byte budget, an OFD lock
 * on the image, coherence helpers for direct IO on the same fd, and the
 * hooks the journal will use (pinning, transactions, held write-back,
 * barriers).
 *
 * Pass cache_io_manager to ext2fs_open2(). io options (the io_options
 * argument of ext2fs_open2, or io_channel_set_options):
 *   cache_size=N   budget in bytes; suffixes k, m, g (KiB, MiB, GiB).
 *                  Default CACHE_IO_DEFAULT_BUDGET. 0 disables caching
 *                  (writes then go straight through).
 *   offset=N       the filesystem starts N bytes into the image or device
 *                  (a partition of a disk image); same suffixes. Every
 *                  block and byte address of the channel is relative to
 *                  it. Only at open: EBUSY once anything is cached.
 * Give ext2fs_open2 a non-NULL io_options ("" will do): with NULL it
 * splits the device name at a '?' and takes the rest as options.
 *
 * The budget counts cached block bytes. It holds between calls except
 * when pinned blocks, or dirty blocks while write-back is held, do not
 * fit: those cannot be dropped, so they push the cache over until
 * released. Reads and writes larger than the whole
 * budget go around the cache (dirty cached blocks stay coherent).
 *
 * Changing the block size (io_channel_set_blksize) writes back and drops
 * the whole cache; it fails with EBUSY while anything is pinned, a
 * transaction is open or write-back is held. IO_FLAG_DIRECT_IO and
 * IO_FLAG_NOCACHE are ignored.
 *
 * Open fails with EBUSY when another open file description holds a
 * conflicting OFD lock on the image (a read-write open takes a write lock,
 * a read-only open a read lock): the image is in use by another process,
 * or by another open in this one. The lock covers the whole file, whatever
 * offset= says: one writer per image, not per partition. IO_FLAG_EXCLUSIVE (from
 * EXT2_FLAG_EXCLUSIVE) opens block devices with O_EXCL, which fails with
 * EBUSY while the device is mounted.
 *
 * Every function below takes the channel libext2fs hands out (fs->io): a
 * cache_io channel, or a fault_io channel stacked on one, which is looked
 * through. Other channels get EXT2_ET_MAGIC_IO_CHANNEL. They are safe to
 * call from any thread; the cache has its own lock.
 */
#ifndef SUPPORT_CACHE_IO_H
#define SUPPORT_CACHE_IO_H

#include <stdio.h>
#include <sys/types.h>

#include <ext2fs/ext2fs.h>

extern io_manager cache_io_manager;

#define CACHE_IO_DEFAULT_BUDGET (32ULL << 20)

/* Changes the byte budget, writing back and evicting down to it. */
errcode_t cache_io_set_budget(io_channel ch, unsigned long long bytes);

/*
 * Writes back every dirty unpinned block (unless write-back is held), in
 * block order with adjacent blocks merged into one pwritev. If `sync`,
 * then fdatasync()s the fd, but only if anything was written to it since
 * the last fdatasync (by the cache, or direct IO reported through
 * cache_io_note_write). io_channel_flush() is cache_io_flush(ch, 1).
 */
errcode_t cache_io_flush(io_channel ch, int sync);

/*
 * Ordering point: every write issued so far (the cache's unpinned dirty
 * blocks and direct writes noted with cache_io_note_write) is on stable
 * storage before this returns, so before any later write. Pinned blocks,
 * and all dirty blocks while write-back is held, are not "issued" yet.
 */
errcode_t cache_io_barrier(io_channel ch);

/*
 * Drops the cached copies of blocks [start, start + count), dirty and
 * pinned ones included, without writing them: for blocks just freed.
 */
errcode_t cache_io_invalidate(io_channel ch, blk64_t start, blk64_t count);

/*
 * Makes fs call cache_io_invalidate for every block it frees, through the
 * block_alloc_stats and block_alloc_stats_range callbacks, chaining to
 * the callbacks installed before. Removed when the channel closes.
 */
errcode_t cache_io_install_free_hook(ext2_filsys fs);

/* ---- direct IO on the image fd (the data executor) ---- */

/* The image fd; -1 if ch is not a cache channel. Do not close it. */
int cache_io_get_fd(io_channel ch);
/*
 * Where the filesystem starts in that fd (offset=), in bytes: direct IO
 * adds it to the filesystem's byte addresses; everything else in this
 * interface (sync_range too) takes addresses relative to it.
 */
unsigned long long cache_io_get_offset(io_channel ch);

#define CACHE_IO_SYNC_READ  0
#define CACHE_IO_SYNC_WRITE 1

/*
 * Call before direct IO on bytes [offset, offset + len) of the fd: dirty
 * cached blocks overlapping the range are written to the fd (no fsync
 * needed, the fd shares the page cache); for CACHE_IO_SYNC_WRITE the
 * cached copies are then dropped, since the direct write makes them stale.
 * Returns EBUSY (doing the rest) if a pinned dirty block overlaps, or
 * the error of the device hook below, which sees the caller's IO first.
 */
errcode_t cache_io_sync_range(io_channel ch, unsigned long long offset,
			      unsigned long long len, int how);

/* Call after a direct write completes, so the next flush fdatasync()s. */
void cache_io_note_write(io_channel ch);

/* ---- journaling hooks ---- */

/* cache_io_block_state() bits */
#define CACHE_IO_CACHED 0x1
#define CACHE_IO_DIRTY  0x2
#define CACHE_IO_PINNED 0x4

/* CACHE_IO_* bits for blk; 0 if not cached or ch is not a cache channel. */
int cache_io_block_state(io_channel ch, blk64_t blk);

/*
 * Pins blocks [blk, blk + count): they stay cached and are neither written
 * back nor evicted (they may push the cache over its budget) until
 * unpinned. Blocks not cached are read in first.
 */
errcode_t cache_io_pin(io_channel ch, blk64_t blk, blk64_t count);
/* Unpins; the blocks become ordinary (dirty or clean) cached blocks. */
errcode_t cache_io_unpin(io_channel ch, blk64_t blk, blk64_t count);

#define CACHE_IO_TXN_PIN 0x1 /* pin blocks as the transaction dirties them */

/*
 * Starts recording the blocks dirtied from now on (by write_blk*,
 * write_byte). EBUSY if a transaction is already open.
 */
errcode_t cache_io_txn_begin(io_channel ch, unsigned flags);
/*
 * Ends the transaction: *blocks (malloc'ed, caller frees; NULL if none)
 * gets the distinct blocks dirtied since cache_io_txn_begin, ascending,
 * minus those invalidated since; *count their number. Pins stay.
 */
errcode_t cache_io_txn_end(io_channel ch, blk64_t **blocks, size_t *count);

/*
 * on != 0: no dirty block reaches the device (flush, barrier, eviction
 * leave them; they may push the cache over budget). 0: back to normal,
 * evicting down to budget. close still writes everything.
 */
errcode_t cache_io_hold_writeback(io_channel ch, int on);

/*
 * Read-only channels only (EXT2_ET_INVALID_ARGUMENT otherwise): lays the
 * block buf over block blk in memory, for a journal replayed on a
 * read-only mount. Such blocks stay cached and are read as the block's
 * contents until the channel closes; nothing is ever written to the image.
 */
errcode_t cache_io_overlay(io_channel ch, blk64_t blk, const void *buf);

/* ---- statistics ---- */

struct cache_io_stats {
	unsigned long long hits;           /* blocks served from the cache */
	unsigned long long misses;         /* blocks read from the device */
	unsigned long long evictions;      /* blocks dropped to make room */
	unsigned long long invalidations;  /* blocks dropped by invalidate */
	unsigned long long writebacks;     /* blocks written back */
	unsigned long long writeback_runs; /* pwritev calls doing that */
	unsigned long long bypass_reads;   /* reads too large to cache */
	unsigned long long bypass_writes;
	unsigned long long readahead_blocks; /* asked for by cache_readahead */
	unsigned long long bytes_read;     /* from the fd, by the cache */
	unsigned long long bytes_written;
	unsigned long long fsyncs;
	unsigned long long budget;
	unsigned long long cached_bytes;
	unsigned long long max_cached_bytes; /* since open or set_budget */
	unsigned long long dirty_bytes;
	unsigned long long pinned_bytes;
};

errcode_t cache_io_stats(io_channel ch, struct cache_io_stats *st);
/* One line per counter, "cache: name value", to f. */
void cache_io_print_stats(io_channel ch, FILE *f);

/* ---- for fault injection (fault_io.c) ---- */

/*
 * Called before every read (write != 0: write) the cache issues to the
 * fd, and before the direct IO cache_io_sync_range is told of (how ==
 * CACHE_IO_SYNC_WRITE: a write), with its byte range (relative to
 * offset=); a non-zero errno return fails that IO as if the device had
 * returned it. Runs under the cache lock: it must not call
 * back into the channel.
 */
typedef int (*cache_io_dev_hook)(void *arg, int write,
				 unsigned long long offset, size_t len);
errcode_t cache_io_set_dev_hook(io_channel ch, cache_io_dev_hook fn,
				void *arg);

#endif
