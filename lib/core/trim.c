/*
 * Giving free space back to what holds the image: FITRIM (free extents
 * of a range punched out of an image file, or discarded on a block
 * device) and -o discard (blocks discarded once freed, in batches).
 *
 * A block freed in memory may still be named by metadata on the device
 * (an extent index block a tree change let go, say) until the next
 * flush: discarding it before then, a crash would leave that metadata
 * pointing at zeros. So every discard waits for a flush: FITRIM flushes
 * before it trims a group with such blocks, and -o discard collects
 * freed ranges and punches them after the flush that follows.
 *
 * Everything here runs under fs->lock: a block that is free in the
 * bitmap then is used by nobody, not even the data executor (which
 * writes only blocks allocated before it started), and cannot be
 * allocated until the lock is dropped.
 */
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/fs_internal.h"

/* trim->groups[] bits */
#define GRP_UNSYNCED 0x1 /* blocks freed since the last flush */
#define GRP_TRIMMED  0x2 /* free space all trimmed, nothing freed since */

/* -o discard commits its batch at the next unlock past either limit. */
#define DISCARD_BATCH_BYTES (8ull << 20)
#define DISCARD_BATCH_RANGES 4096

struct trim_range {
	blk64_t blk;
	blk64_t count;
};

struct trim {
	int blkdev;         /* BLKDISCARD, else punch the image file */
	int supported;      /* the device can discard at all */
	unsigned granule;   /* smallest useful discard, bytes */
	int discard;        /* -o discard */
	unsigned char *groups;
	blk64_t last_minblks; /* minlen of the last complete FITRIM */
	struct trim_range *pending; /* freed, to discard after a flush */
	size_t npending, cap;
	blk64_t pending_blocks;
	void (*old)(ext2_filsys e2, blk64_t blk, int inuse);
	void (*old_range)(ext2_filsys e2, blk64_t blk, blk_t num, int inuse);
};

/*
 * Whether a block device can discard, from sysfs (queue/discard_max_bytes
 * is 0 when it cannot); its granularity in *granule.
 */
static int blkdev_discards(dev_t rdev, unsigned *granule)
{
	unsigned long long max = 0, gran = 0;
	char path[96];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/queue/discard_max_bytes",
		 major(rdev), minor(rdev));
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%llu", &max) != 1)
		max = 0;
	fclose(f);
	snprintf(path, sizeof(path),
		 "/sys/dev/block/%u:%u/queue/discard_granularity", major(rdev),
		 minor(rdev));
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%llu", &gran) == 1 && gran && gran < (1u << 30))
			*granule = (unsigned)gran;
		fclose(f);
	}
	return max != 0;
}

/* Discards bytes of blocks [blk, blk + count) on the device: 0 or -errno. */
static int discard_blocks(struct fs *fs, blk64_t blk, blk64_t count)
{
	/* Device bytes: the filesystem starts data_off into it (offset=). */
	uint64_t off = fs->data_off + blk * fs->e2->blocksize;
	uint64_t len = count * fs->e2->blocksize;

	if (fs->trim->blkdev) {
		uint64_t r[2] = { off, len };

		return ioctl(fs->data_fd, BLKDISCARD, r) ? -errno : 0;
	}
	if (fallocate(fs->data_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len))
		return -errno;
	return 0;
}

/*
 * Discards the runs of free blocks that start in [start, end], whole up
 * to limit (as ext4 does: a run that starts in the range goes to its
 * end, within its group), if at least minblks long; adds the blocks
 * discarded to *done. 0 or -errno.
 */
static int discard_free(struct fs *fs, blk64_t start, blk64_t end,
			blk64_t limit, blk64_t minblks, blk64_t *done)
{
	ext2fs_block_bitmap map = fs->e2->block_map;
	blk64_t zero, used;
	int ret;

	while (start <= end) {
		if (ext2fs_find_first_zero_block_bitmap2(map, start, end, &zero))
			break;
		if (ext2fs_find_first_set_block_bitmap2(map, zero, limit, &used))
			used = limit + 1;
		if (used - zero >= minblks) {
			ret = discard_blocks(fs, zero, used - zero);
			if (ret)
				return ret;
			*done += used - zero;
		}
		start = used;
	}
	return 0;
}

/* Punches what -o discard collected; the flush that makes it safe is done. */
static void discard_pending(struct fs *fs)
{
	struct trim *t = fs->trim;
	blk64_t last = ext2fs_blocks_count(fs->e2->super) - 1, dummy = 0;
	size_t i;

	for (i = 0; i < t->npending; i++) {
		blk64_t end = t->pending[i].blk + t->pending[i].count - 1;

		if (end > last)
			end = last;
		/* Reused since it was freed: what is free now goes. */
		if (discard_free(fs, t->pending[i].blk, end, end, 1, &dummy))
			break;
	}
	t->npending = 0;
	t->pending_blocks = 0;
	fs->discard_due = 0;
}

void trim_synced(struct fs *fs)
{
	struct trim *t = fs->trim;
	dgrp_t g;

	if (!t)
		return;
	for (g = 0; g < fs->e2->group_desc_count; g++)
		t->groups[g] &= ~GRP_UNSYNCED;
	if (t->npending)
		discard_pending(fs);
}

void trim_commit_due(struct fs *fs)
{
	/* A failed flush keeps the batch for the next one. */
	fs->discard_due = 0;
	fs_flush_locked(fs);
}

/* Remembers a freed range for -o discard, merged with the last one. */
static void collect(struct fs *fs, blk64_t blk, blk64_t count)
{
	struct trim *t = fs->trim;
	struct trim_range *last = t->npending ? &t->pending[t->npending - 1] :
						NULL;

	if (last && last->blk + last->count == blk) {
		last->count += count;
	} else if (last && blk + count == last->blk) {
		last->blk = blk;
		last->count += count;
	} else {
		if (t->npending == t->cap) {
			size_t cap = t->cap ? t->cap * 2 : 64;
			struct trim_range *p;

			p = realloc(t->pending, cap * sizeof(*p));
			if (!p) {
				/* Discarding is a courtesy: commit what we have. */
				fs->discard_due = 1;
				return;
			}
			t->pending = p;
			t->cap = cap;
		}
		t->pending[t->npending].blk = blk;
		t->pending[t->npending].count = count;
		t->npending++;
	}
	t->pending_blocks += count;
	if (t->pending_blocks * fs->e2->blocksize >= DISCARD_BATCH_BYTES ||
	    t->npending >= DISCARD_BATCH_RANGES)
		fs->discard_due = 1;
}

/* Blocks [blk, end) were freed: mark their groups, collect them. */
static void freed(struct fs *fs, blk64_t blk, blk64_t end)
{
	ext2_filsys e2 = fs->e2;
	dgrp_t g, last;

	if (blk >= end || end > ext2fs_blocks_count(e2->super))
		return;
	last = ext2fs_group_of_blk2(e2, end - 1);
	for (g = ext2fs_group_of_blk2(e2, blk); g <= last; g++)
		fs->trim->groups[g] = GRP_UNSYNCED;
	if (fs->trim->discard)
		collect(fs, blk, end - blk);
}

static void hook_block(ext2_filsys e2, blk64_t blk, int inuse)
{
	struct fs *fs = e2->priv_data;

	if (inuse < 0)
		freed(fs, blk, blk + 1);
	if (fs->trim->old)
		fs->trim->old(e2, blk, inuse);
}

/* Is every block of [start, end) free? Range tests take 32-bit lengths. */
static int all_free(ext2_filsys e2, blk64_t start, blk64_t end)
{
	while (start < end) {
		blk64_t n = end - start < (1u << 31) ? end - start : (1u << 31);

		if (!ext2fs_test_block_bitmap_range2(e2->block_map, start,
						     (unsigned)n))
			return 0;
		start += n;
	}
	return 1;
}

/* The first block of the run of free blocks that ends at end. */
static blk64_t free_run_start(ext2_filsys e2, blk64_t end)
{
	blk64_t lo = e2->super->s_first_data_block, hi = end;

	/* [hi, end) is free; the run starts in [lo, hi]. */
	while (lo < hi) {
		blk64_t mid = lo + (hi - lo) / 2;

		if (all_free(e2, mid, end))
			hi = mid;
		else
			lo = mid + 1;
	}
	return hi;
}

/*
 * libext2fs 1.47.0 calls this with (blk + num, 0) for (blk, num): its
 * loop advances both first. Then the freed run is the free blocks just
 * below blk (the bitmap is updated already); counting older free blocks
 * of that run in too only makes them be discarded once more.
 */
static void hook_range(ext2_filsys e2, blk64_t blk, blk_t num, int inuse)
{
	struct fs *fs = e2->priv_data;

	if (inuse < 0 && num)
		freed(fs, blk, blk + num);
	else if (inuse < 0 && blk <= ext2fs_blocks_count(e2->super))
		freed(fs, free_run_start(e2, blk), blk);
	if (fs->trim->old_range)
		fs->trim->old_range(e2, blk, num, inuse);
}

int trim_init(struct fs *fs, int discard)
{
	struct trim *t;
	struct stat st;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->groups = calloc(fs->e2->group_desc_count, 1);
	if (!t->groups) {
		free(t);
		return -ENOMEM;
	}
	if (fstat(fs->data_fd, &st)) {
		free(t->groups);
		free(t);
		return -errno;
	}
	t->granule = st.st_blksize;
	t->blkdev = S_ISBLK(st.st_mode);
	t->supported = t->blkdev ? blkdev_discards(st.st_rdev, &t->granule) : 1;
	t->discard = discard && t->supported && !fs->readonly;
	fs->trim = t;
	fs->e2->priv_data = fs;
	ext2fs_set_block_alloc_stats_callback(fs->e2, hook_block, &t->old);
	ext2fs_set_block_alloc_stats_range_callback(fs->e2, hook_range,
						    &t->old_range);
	return 0;
}

void trim_fini(struct fs *fs)
{
	struct trim *t = fs->trim;

	if (!t)
		return;
	/* What -o discard holds goes after one last flush. */
	if (fs->e2 && t->npending)
		fs_flush_locked(fs);
	if (fs->e2) {
		ext2fs_set_block_alloc_stats_callback(fs->e2, t->old, NULL);
		ext2fs_set_block_alloc_stats_range_callback(fs->e2,
							    t->old_range, NULL);
	}
	fs->trim = NULL;
	fs->discard_due = 0;
	free(t->pending);
	free(t->groups);
	free(t);
}

/*
 * Trims blocks [start, end] of group g (lock held): flushes first if
 * blocks were freed there since the last flush. 0 or -errno.
 */
static int trim_group(struct fs *fs, dgrp_t g, blk64_t start, blk64_t end,
		      blk64_t minblks, blk64_t *done)
{
	struct trim *t = fs->trim;
	ext2_filsys e2 = fs->e2;
	blk64_t glast = ext2fs_group_last_block2(e2, g);
	int whole, ret;

	if ((t->groups[g] & GRP_TRIMMED) && minblks >= t->last_minblks)
		return 0;
	if (ext2fs_bg_free_blocks_count(e2, g) < minblks)
		return 0;
	if (t->groups[g] & GRP_UNSYNCED) {
		ret = fs_flush_locked(fs);
		if (ret)
			return ret;
	}
	ret = discard_free(fs, start, end, glast, minblks, done);
	whole = start <= ext2fs_group_first_block2(e2, g) && end >= glast;
	if (!ret && whole)
		t->groups[g] |= GRP_TRIMMED;
	return ret;
}

int trim_fs(struct fs *fs, uint64_t start, uint64_t len, uint64_t minlen,
	    uint64_t *trimmed)
{
	ext2_filsys e2;
	blk64_t first, last, bstart, bend, minblks, done = 0;
	unsigned ratio, bs;
	dgrp_t g, glast;
	int ret = 0;

	*trimmed = 0;
	fs_lock(fs);
	e2 = fs->e2;
	bs = e2->blocksize;
	ratio = EXT2FS_CLUSTER_RATIO(e2);
	first = e2->super->s_first_data_block;
	last = ext2fs_blocks_count(e2->super) - 1;
	/* ext4's rules: minlen in whole clusters, at most a group's worth. */
	minblks = (minlen / bs + ratio - 1) / ratio * ratio;
	bstart = start / bs;
	if (minblks > e2->super->s_blocks_per_group || bstart > last ||
	    len < bs) {
		ret = -EINVAL;
		goto out;
	}
	ret = fs_writable(fs);
	if (ret)
		goto out;
	if (!fs->trim->supported) {
		ret = -EOPNOTSUPP;
		goto out;
	}
	/* Runs shorter than the device's discard granule free nothing. */
	if (minlen < fs->trim->granule)
		minblks = ((fs->trim->granule + bs - 1) / bs + ratio - 1) /
			  ratio * ratio;
	if (minblks > e2->super->s_blocks_per_group)
		goto out;
	bend = bstart + len / bs - 1;
	if (bend > last || bend < bstart)
		bend = last;
	if (bend <= first)
		goto out;
	if (bstart < first)
		bstart = first;
	glast = ext2fs_group_of_blk2(e2, bend);
	for (g = ext2fs_group_of_blk2(e2, bstart); g <= glast; g++) {
		blk64_t gs = ext2fs_group_first_block2(e2, g);
		blk64_t ge = ext2fs_group_last_block2(e2, g);

		ret = trim_group(fs, g, gs > bstart ? gs : bstart,
				 ge < bend ? ge : bend, minblks, &done);
		if (ret)
			goto out;
		/* Other requests get their turn between groups. */
		fs_unlock(fs);
		fs_lock(fs);
	}
	fs->trim->last_minblks = minblks;
out:
	*trimmed = done * bs;
	fs_unlock(fs);
	return ret;
}
