/*
 * Dropping cached blocks without writing them: blocks libext2fs frees
 * (through its block_alloc_stats callbacks, so a reused block never
 * serves stale data and a freed dirty block is never written), and blocks
 * discarded, zeroed or overwritten around the cache.
 */
#include <stdlib.h>

#include "support/cache_io_internal.h"

errcode_t cio_drop_range(struct cio *c, blk64_t start, blk64_t count,
			 int count_stats)
{
	int ret;
	size_t i;

	c->scratch.n = 0;
	ret = bc_collect_range(&c->bc, start, count, &c->scratch);
	for (i = 0; i < c->scratch.n; i++)
		bc_delete(&c->bc, c->scratch.v[i]);
	if (count_stats)
		c->st.invalidations += c->scratch.n;
	cio_txn_forget(c, start, count);
	return ret ? EXT2_ET_NO_MEMORY : 0;
}

/* Takes c->lock. */
static errcode_t invalidate(struct cio *c, blk64_t start, blk64_t count)
{
	errcode_t err;

	pthread_mutex_lock(&c->lock);
	err = cio_drop_range(c, start, count, 1);
	pthread_mutex_unlock(&c->lock);
	return err;
}

errcode_t cache_io_invalidate(io_channel ch, blk64_t start, blk64_t count)
{
	struct cio *c = cio_of(ch);

	return c ? invalidate(c, start, count) : EXT2_ET_MAGIC_IO_CHANNEL;
}

/* ---- the free-block hook ---- */

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
	invalidate(c, start, end - start);
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

void cio_drop_free_hooks(struct cio *c)
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
