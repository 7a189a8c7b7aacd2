/*
 * Unit tests of lib/support's cache_io and fault_io managers: eviction
 * order, budget, write-back and fsync accounting, pins, transactions,
 * invalidation, direct-IO coherence, fault propagation, OFD locking, and
 * whole filesystems built through the cache (then e2fsck -fn).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "unit.h"
#include "support/cache_io.h"
#include "support/fault_io.h"

#define BS 4096

static unsigned char pat(blk64_t blk, int gen, size_t i)
{
	return (unsigned char)(blk * 31 + gen * 7 + i / 512 + 1);
}

static void fill(unsigned char *buf, blk64_t blk, int gen)
{
	size_t i;

	for (i = 0; i < BS; i++)
		buf[i] = pat(blk, gen, i);
}

static int is_fill(const unsigned char *buf, blk64_t blk, int gen)
{
	unsigned char want[BS];

	fill(want, blk, gen);
	return memcmp(buf, want, BS) == 0;
}

/* A scratch file of nblocks blocks, block b holding fill(b, 0). */
static const char *raw_image(const char *name, unsigned nblocks)
{
	static char path[512];
	unsigned char buf[BS];
	unsigned b;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", unit_scratch(), name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror(path);
		exit(1);
	}
	for (b = 0; b < nblocks; b++) {
		fill(buf, b, 0);
		if (pwrite(fd, buf, BS, (off_t)b * BS) != BS) {
			perror("pwrite");
			exit(1);
		}
	}
	close(fd);
	return path;
}

/* Does the file (not the cache) hold fill(blk, gen) at blk? */
static int disk_is(const char *path, blk64_t blk, int gen)
{
	unsigned char buf[BS];
	int fd = open(path, O_RDONLY);
	int ok;

	ok = fd >= 0 && pread(fd, buf, BS, (off_t)blk * BS) == BS &&
	     is_fill(buf, blk, gen);
	if (fd >= 0)
		close(fd);
	return ok;
}

static io_channel raw_open_mgr(io_manager mgr, const char *path,
			       unsigned long long budget)
{
	io_channel ch = NULL;
	errcode_t err = mgr->open(path, IO_FLAG_RW, &ch);

	if (err) {
		printf("FAIL open %s: %ld\n", path, (long)err);
		exit(1);
	}
	if (io_channel_set_blksize(ch, BS) ||
	    cache_io_set_budget(ch, budget)) {
		printf("FAIL setting up %s\n", path);
		exit(1);
	}
	return ch;
}

static io_channel raw_open(const char *path, unsigned long long budget)
{
	return raw_open_mgr(cache_io_manager, path, budget);
}

static struct cache_io_stats stats(io_channel ch)
{
	struct cache_io_stats st;

	memset(&st, 0, sizeof(st));
	cache_io_stats(ch, &st);
	return st;
}

static errcode_t read1(io_channel ch, blk64_t blk, unsigned char *buf)
{
	return io_channel_read_blk64(ch, blk, 1, buf);
}

static errcode_t write_gen(io_channel ch, blk64_t blk, int gen)
{
	unsigned char buf[BS];

	fill(buf, blk, gen);
	return io_channel_write_blk64(ch, blk, 1, buf);
}

static int cached(io_channel ch, blk64_t blk)
{
	return cache_io_block_state(ch, blk) & CACHE_IO_CACHED;
}

/* ---- the cache on a plain file ---- */

static void test_second_chance(void)
{
	const char *path = raw_image("clock.img", 16);
	io_channel ch = raw_open(path, 4 * BS);
	unsigned char buf[BS];
	blk64_t b;

	for (b = 0; b < 4; b++)
		CHECK_EQ(read1(ch, b, buf), 0);
	CHECK_EQ(read1(ch, 0, buf), 0); /* 0 gets its second chance */
	CHECK(is_fill(buf, 0, 0));
	CHECK_EQ(read1(ch, 4, buf), 0);
	CHECK(!cached(ch, 1));
	CHECK(cached(ch, 0) && cached(ch, 2) && cached(ch, 3) && cached(ch, 4));
	CHECK_EQ(read1(ch, 5, buf), 0);
	CHECK(!cached(ch, 2));
	CHECK_EQ(read1(ch, 6, buf), 0);
	CHECK(!cached(ch, 3));
	CHECK(cached(ch, 0));
	CHECK_EQ(read1(ch, 7, buf), 0); /* its bit was spent: 0 goes now */
	CHECK(!cached(ch, 0));
	CHECK(cached(ch, 4) && cached(ch, 5) && cached(ch, 6) && cached(ch, 7));
	CHECK_EQ(stats(ch).hits, 1);
	CHECK_EQ(stats(ch).misses, 8);
	CHECK_EQ(stats(ch).evictions, 4);
	CHECK_EQ(io_channel_close(ch), 0);
}

/*
 * Random reads, writes, byte writes, zeroouts and direct IO against a
 * model of the file: contents always match, the budget always holds.
 */
static void test_random_model(unsigned long long budget, unsigned seed)
{
	enum { NBLK = 64 };
	const char *path = raw_image("model.img", NBLK);
	static unsigned char model[NBLK * BS], buf[NBLK * BS];
	io_channel ch = raw_open(path, budget);
	struct cache_io_stats st;
	int fd, i, over = 0, wrong = 0, errs = 0, op;

	srand(seed);
	for (i = 0; i < NBLK; i++)
		fill(model + (size_t)i * BS, i, 0);
	for (op = 0; op < 3000; op++) {
		int kind = rand() % 10;
		blk64_t blk = rand() % NBLK;
		int count = 1 + rand() % 20;
		size_t len, off, k;

		if (rand() % 4 == 0)
			count = -(1 + rand() % (3 * BS));
		len = count < 0 ? (size_t)-count : (size_t)count * BS;
		if (blk * BS + len > sizeof(model))
			continue;
		off = blk * BS;
		switch (kind) {
		case 0: case 1: case 2: case 3:
			errs += io_channel_read_blk64(ch, blk, count, buf) != 0;
			wrong += memcmp(buf, model + off, len) != 0;
			break;
		case 4: case 5: case 6:
			for (k = 0; k < len; k++)
				buf[k] = rand();
			errs += io_channel_write_blk64(ch, blk, count, buf) != 0;
			memcpy(model + off, buf, len);
			break;
		case 7:
			off = rand() % (sizeof(model) - 7000);
			len = 1 + rand() % 6000;
			for (k = 0; k < len; k++)
				buf[k] = rand();
			errs += io_channel_write_byte(ch, off, len, buf) != 0;
			memcpy(model + off, buf, len);
			break;
		case 8:
			count = 1 + rand() % 4;
			if (blk + count > NBLK)
				break;
			errs += io_channel_zeroout(ch, blk, count) != 0;
			memset(model + off, 0, (size_t)count * BS);
			break;
		case 9:
			/* The data executor: direct IO on the fd. */
			fd = cache_io_get_fd(ch);
			if (rand() % 2) {
				errs += cache_io_sync_range(ch, off, len,
						CACHE_IO_SYNC_READ) != 0;
				errs += pread(fd, buf, len, off) != (ssize_t)len;
				wrong += memcmp(buf, model + off, len) != 0;
			} else {
				for (k = 0; k < len; k++)
					buf[k] = rand();
				errs += cache_io_sync_range(ch, off, len,
						CACHE_IO_SYNC_WRITE) != 0;
				errs += pwrite(fd, buf, len, off) != (ssize_t)len;
				cache_io_note_write(ch);
				memcpy(model + off, buf, len);
			}
			break;
		}
		if (op % 97 == 0)
			errs += io_channel_flush(ch) != 0;
		st = stats(ch);
		over += st.cached_bytes > budget;
	}
	st = stats(ch);
	printf("     budget %llu: max cached %llu, %llu hits, %llu misses, %llu runs\n",
	       budget, st.max_cached_bytes, st.hits, st.misses,
	       st.writeback_runs);
	CHECK_EQ(errs, 0);
	CHECK_EQ(wrong, 0);
	CHECK_EQ(over, 0);
	CHECK(st.max_cached_bytes <= budget);
	CHECK_EQ(io_channel_close(ch), 0);
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0 && pread(fd, buf, sizeof(buf), 0) == sizeof(buf));
	CHECK(memcmp(buf, model, sizeof(model)) == 0);
	close(fd);
}

static void test_writeback_and_fsync(void)
{
	const char *path = raw_image("wb.img", 64);
	io_channel ch = raw_open(path, 1 << 20);
	unsigned char buf[BS];
	struct cache_io_stats st;
	unsigned long long fsyncs;
	blk64_t b;

	CHECK_EQ(io_channel_flush(ch), 0);
	CHECK_EQ(stats(ch).fsyncs, 0); /* nothing written yet */
	CHECK_EQ(write_gen(ch, 5, 1), 0);
	CHECK(disk_is(path, 5, 0));
	CHECK_EQ(cache_io_block_state(ch, 5), CACHE_IO_CACHED | CACHE_IO_DIRTY);
	CHECK_EQ(read1(ch, 5, buf), 0);
	CHECK(is_fill(buf, 5, 1));
	CHECK_EQ(io_channel_flush(ch), 0);
	CHECK(disk_is(path, 5, 1));
	CHECK_EQ(cache_io_block_state(ch, 5), CACHE_IO_CACHED);
	fsyncs = stats(ch).fsyncs;
	CHECK_EQ(fsyncs, 1);
	CHECK_EQ(io_channel_flush(ch), 0);
	CHECK_EQ(read1(ch, 9, buf), 0);
	CHECK_EQ(io_channel_flush(ch), 0);
	CHECK_EQ(cache_io_barrier(ch), 0);
	CHECK_EQ(stats(ch).fsyncs, fsyncs); /* reads and no-ops: no fsync */
	cache_io_note_write(ch);
	CHECK_EQ(cache_io_barrier(ch), 0);
	CHECK_EQ(stats(ch).fsyncs, fsyncs + 1);
	CHECK_EQ(write_gen(ch, 6, 1), 0);
	CHECK_EQ(cache_io_flush(ch, 0), 0); /* written, not synced */
	CHECK(disk_is(path, 6, 1));
	CHECK_EQ(stats(ch).fsyncs, fsyncs + 1);
	CHECK_EQ(cache_io_flush(ch, 1), 0);
	CHECK_EQ(stats(ch).fsyncs, fsyncs + 2);

	/* Ten adjacent blocks and one apart: two pwritev calls. */
	st = stats(ch);
	for (b = 20; b < 30; b++)
		write_gen(ch, 49 - b, 2);
	write_gen(ch, 40, 2);
	CHECK_EQ(io_channel_flush(ch), 0);
	CHECK_EQ(stats(ch).writeback_runs - st.writeback_runs, 2);
	CHECK_EQ(stats(ch).writebacks - st.writebacks, 11);
	CHECK(disk_is(path, 20, 2) && disk_is(path, 29, 2) && disk_is(path, 40, 2));

	/* A dirty block evicted under pressure is written first. */
	CHECK_EQ(cache_io_set_budget(ch, 2 * BS), 0);
	CHECK_EQ(write_gen(ch, 50, 3), 0);
	CHECK_EQ(read1(ch, 51, buf), 0);
	CHECK_EQ(read1(ch, 52, buf), 0);
	CHECK(!cached(ch, 50));
	CHECK(disk_is(path, 50, 3));
	CHECK_EQ(io_channel_close(ch), 0);
}

static void test_partial_and_bypass(void)
{
	const char *path = raw_image("partial.img", 64);
	io_channel ch = raw_open(path, 4 * BS);
	unsigned char buf[8 * BS], blk[BS];
	struct cache_io_stats st;
	blk64_t b;

	/* Negative counts are bytes. */
	memset(buf, 0xaa, sizeof(buf));
	CHECK_EQ(io_channel_read_blk64(ch, 3, -100, buf), 0);
	fill(blk, 3, 0);
	CHECK(memcmp(buf, blk, 100) == 0 && buf[100] == 0xaa);
	memset(buf, 0x55, 100);
	CHECK_EQ(io_channel_write_blk64(ch, 3, -100, buf), 0);
	CHECK_EQ(read1(ch, 3, buf), 0);
	CHECK(buf[0] == 0x55 && buf[99] == 0x55);
	CHECK(memcmp(buf + 100, blk + 100, BS - 100) == 0);

	/* write_byte across a block boundary, read-modify-write both. */
	memset(buf, 0x66, 200);
	CHECK_EQ(io_channel_write_byte(ch, 10 * BS - 100, 200, buf), 0);
	CHECK_EQ(io_channel_flush(ch), 0);
	CHECK_EQ(io_channel_read_blk64(ch, 9, 2, buf), 0);
	fill(blk, 9, 0);
	CHECK(memcmp(buf, blk, BS - 100) == 0 && buf[BS - 100] == 0x66 &&
	      buf[BS + 99] == 0x66);

	/* Larger than the budget: around the cache, dirty blocks laid over. */
	CHECK_EQ(write_gen(ch, 12, 4), 0);
	st = stats(ch);
	CHECK_EQ(io_channel_read_blk64(ch, 10, 8, buf), 0);
	CHECK_EQ(stats(ch).bypass_reads, st.bypass_reads + 1);
	CHECK(is_fill(buf + 2 * BS, 12, 4));
	CHECK(is_fill(buf + 5 * BS, 15, 0));
	CHECK(!cached(ch, 15));
	CHECK(cached(ch, 12));
	for (b = 0; b < 8; b++)
		fill(buf + b * BS, 10 + b, 5);
	CHECK_EQ(io_channel_write_blk64(ch, 10, 8, buf), 0);
	CHECK_EQ(stats(ch).bypass_writes, st.bypass_writes + 1);
	CHECK(!cached(ch, 12)); /* its dirty copy was stale */
	CHECK(disk_is(path, 12, 5) && disk_is(path, 17, 5));
	CHECK_EQ(io_channel_flush(ch), 0);
	CHECK(disk_is(path, 12, 5));

	/* A multi-block read fills the cache with one preadv. */
	CHECK_EQ(cache_io_set_budget(ch, 16 * BS), 0);
	st = stats(ch);
	CHECK_EQ(io_channel_read_blk64(ch, 30, 4, buf), 0);
	CHECK(is_fill(buf, 30, 0) && is_fill(buf + 3 * BS, 33, 0));
	CHECK(cached(ch, 30) && cached(ch, 33));
	CHECK_EQ(stats(ch).bytes_read - st.bytes_read, 4 * BS);

	/* Reads past the end of the image. */
	CHECK_EQ(io_channel_read_blk64(ch, 63, 2, buf), EXT2_ET_SHORT_READ);
	CHECK(is_fill(buf, 63, 0));
	CHECK(!cached(ch, 64));

	/* A new block size flushes and drops everything. */
	CHECK_EQ(write_gen(ch, 2, 6), 0);
	CHECK_EQ(io_channel_set_blksize(ch, 1024), 0);
	CHECK(disk_is(path, 2, 6));
	CHECK_EQ(stats(ch).cached_bytes, 0);
	CHECK_EQ(io_channel_read_blk64(ch, 9, 1, buf), 0);
	fill(blk, 2, 6);
	CHECK(memcmp(buf, blk + 1024, 1024) == 0);
	CHECK_EQ(io_channel_close(ch), 0);
}

static void test_pin_txn_hold(void)
{
	const char *path = raw_image("pin.img", 64);
	io_channel ch = raw_open(path, 4 * BS);
	unsigned char buf[BS];
	blk64_t *blocks = NULL;
	size_t n = 0;
	blk64_t b;

	/* A pinned dirty block is neither written nor evicted. */
	CHECK_EQ(write_gen(ch, 3, 1), 0);
	CHECK_EQ(cache_io_pin(ch, 3, 1), 0);
	CHECK_EQ(cache_io_block_state(ch, 3),
		 CACHE_IO_CACHED | CACHE_IO_DIRTY | CACHE_IO_PINNED);
	CHECK_EQ(io_channel_flush(ch), 0);
	CHECK(disk_is(path, 3, 0));
	for (b = 10; b < 20; b++)
		read1(ch, b, buf);
	CHECK(cached(ch, 3));
	CHECK(disk_is(path, 3, 0));
	CHECK(stats(ch).cached_bytes <= 4 * BS);
	CHECK_EQ(cache_io_sync_range(ch, 3 * BS, 10, CACHE_IO_SYNC_READ), EBUSY);
	CHECK_EQ(cache_io_unpin(ch, 3, 1), 0);
	CHECK_EQ(cache_io_block_state(ch, 3), CACHE_IO_CACHED | CACHE_IO_DIRTY);
	CHECK_EQ(io_channel_flush(ch), 0);
	CHECK(disk_is(path, 3, 1));

	/* Pinning an uncached block reads it in. */
	CHECK_EQ(cache_io_pin(ch, 30, 2), 0);
	CHECK_EQ(cache_io_block_state(ch, 31), CACHE_IO_CACHED | CACHE_IO_PINNED);
	CHECK_EQ(cache_io_unpin(ch, 30, 2), 0);

	/* A transaction collects what it dirtied, pinned. */
	CHECK_EQ(cache_io_txn_begin(ch, CACHE_IO_TXN_PIN), 0);
	CHECK_EQ(cache_io_txn_begin(ch, 0), EBUSY);
	write_gen(ch, 7, 2);
	write_gen(ch, 3, 2);
	write_gen(ch, 7, 3);
	write_gen(ch, 9, 2);
	for (b = 40; b < 46; b++) /* over budget: pinned blocks stay */
		write_gen(ch, b, 2);
	CHECK_EQ(cache_io_invalidate(ch, 9, 1), 0); /* freed meanwhile */
	memset(buf, 0x77, 16);
	CHECK_EQ(io_channel_write_byte(ch, 12 * BS + 5, 16, buf), 0);
	CHECK_EQ(cache_io_txn_end(ch, &blocks, &n), 0);
	CHECK_EQ(n, 9);
	if (n == 9)
		CHECK(blocks[0] == 3 && blocks[1] == 7 && blocks[2] == 12 &&
		      blocks[3] == 40 && blocks[8] == 45);
	free(blocks);
	CHECK_EQ(cache_io_block_state(ch, 7),
		 CACHE_IO_CACHED | CACHE_IO_DIRTY | CACHE_IO_PINNED);
	CHECK_EQ(stats(ch).pinned_bytes, 9 * BS);
	CHECK_EQ(io_channel_flush(ch), 0);
	CHECK(disk_is(path, 7, 0) && disk_is(path, 45, 0));
	CHECK_EQ(cache_io_txn_end(ch, &blocks, &n), EXT2_ET_INVALID_ARGUMENT);
	/* Without the pin flag the blocks are only recorded. */
	CHECK_EQ(cache_io_txn_begin(ch, 0), 0);
	write_gen(ch, 50, 1);
	CHECK_EQ(cache_io_txn_end(ch, &blocks, &n), 0);
	CHECK(n == 1 && blocks[0] == 50);
	free(blocks);
	CHECK(!(cache_io_block_state(ch, 50) & CACHE_IO_PINNED));
	CHECK_EQ(cache_io_unpin(ch, 0, 64), 0);
	CHECK(stats(ch).cached_bytes <= 4 * BS);
	CHECK(disk_is(path, 7, 3) && disk_is(path, 45, 2) && disk_is(path, 3, 2));
	CHECK_EQ(io_channel_flush(ch), 0);
	CHECK(disk_is(path, 50, 1));

	/* Held write-back: nothing reaches the file until released. */
	CHECK_EQ(cache_io_hold_writeback(ch, 1), 0);
	for (b = 20; b < 28; b++)
		write_gen(ch, b, 4);
	CHECK_EQ(io_channel_flush(ch), 0);
	CHECK_EQ(cache_io_barrier(ch), 0);
	CHECK(disk_is(path, 20, 0) && disk_is(path, 27, 0));
	CHECK_EQ(stats(ch).dirty_bytes, 8 * BS);
	CHECK_EQ(cache_io_hold_writeback(ch, 0), 0);
	CHECK(stats(ch).cached_bytes <= 4 * BS);
	CHECK(disk_is(path, 20, 4)); /* evicted to get back to budget */
	CHECK_EQ(cache_io_barrier(ch), 0);
	CHECK(disk_is(path, 27, 4));
	CHECK_EQ(stats(ch).dirty_bytes, 0);

	/* Close writes even pinned blocks: the image must be complete. */
	write_gen(ch, 60, 5);
	CHECK_EQ(cache_io_pin(ch, 60, 1), 0);
	CHECK_EQ(io_channel_close(ch), 0);
	CHECK(disk_is(path, 60, 5));
}

static void test_invalidate_and_sync_range(void)
{
	const char *path = raw_image("inval.img", 64);
	io_channel ch = raw_open(path, 1 << 20);
	unsigned char buf[BS];
	int fd = cache_io_get_fd(ch);

	CHECK(fd >= 0);
	CHECK_EQ(write_gen(ch, 20, 1), 0);
	CHECK_EQ(write_gen(ch, 21, 1), 0);
	CHECK_EQ(cache_io_invalidate(ch, 20, 1), 0);
	CHECK(!cached(ch, 20) && cached(ch, 21));
	CHECK_EQ(io_channel_flush(ch), 0);
	CHECK(disk_is(path, 20, 0)); /* dropped, never written */
	CHECK(disk_is(path, 21, 1));
	CHECK_EQ(stats(ch).invalidations, 1);

	/* Before a direct read: dirty blocks reach the fd, stay cached. */
	CHECK_EQ(write_gen(ch, 40, 2), 0);
	CHECK_EQ(write_gen(ch, 41, 2), 0);
	CHECK_EQ(cache_io_sync_range(ch, 40 * BS + 100, BS, CACHE_IO_SYNC_READ), 0);
	CHECK(disk_is(path, 40, 2) && disk_is(path, 41, 2));
	CHECK_EQ(cache_io_block_state(ch, 41), CACHE_IO_CACHED);
	/* Before a direct write: dropped, so the next read sees the fd. */
	CHECK_EQ(write_gen(ch, 42, 2), 0);
	CHECK_EQ(cache_io_sync_range(ch, 41 * BS, 2 * BS, CACHE_IO_SYNC_WRITE), 0);
	CHECK(!cached(ch, 41) && !cached(ch, 42) && cached(ch, 40));
	CHECK(disk_is(path, 42, 2));
	fill(buf, 42, 3);
	CHECK(pwrite(fd, buf, BS, 42 * BS) == BS);
	cache_io_note_write(ch);
	CHECK_EQ(read1(ch, 42, buf), 0);
	CHECK(is_fill(buf, 42, 3));

	/* zeroout and discard drop cached copies. */
	CHECK_EQ(write_gen(ch, 50, 1), 0);
	CHECK_EQ(io_channel_zeroout(ch, 50, 2), 0);
	CHECK(!cached(ch, 50));
	CHECK_EQ(read1(ch, 50, buf), 0);
	CHECK(buf[0] == 0 && buf[BS - 1] == 0);
	CHECK_EQ(write_gen(ch, 52, 1), 0);
	if (io_channel_discard(ch, 52, 1) == 0) {
		CHECK(!cached(ch, 52));
		CHECK_EQ(read1(ch, 52, buf), 0);
		CHECK(buf[0] == 0 && buf[BS - 1] == 0);
	}
	CHECK_EQ(io_channel_close(ch), 0);
}

static void test_options_and_stats(void)
{
	const char *path = raw_image("opts.img", 8);
	io_channel ch = raw_open(path, 1 << 20);
	unsigned char buf[BS];
	io_stats ios = NULL;

	CHECK_EQ(io_channel_set_options(ch, "cache_size=64K"), 0);
	CHECK_EQ(stats(ch).budget, 65536);
	CHECK_EQ(io_channel_set_options(ch, "cache_size=3m"), 0);
	CHECK_EQ(stats(ch).budget, 3 << 20);
	CHECK(io_channel_set_options(ch, "cache_size=lots") != 0);
	CHECK(io_channel_set_options(ch, "cache_size=5x") != 0);
	CHECK(io_channel_set_options(ch, "bogus=1") != 0);
	CHECK_EQ(stats(ch).budget, 3 << 20);
	read1(ch, 1, buf);
	write_gen(ch, 2, 1);
	io_channel_flush(ch);
	CHECK_EQ(ch->manager->get_stats(ch, &ios), 0);
	CHECK(ios && ios->bytes_read == BS && ios->bytes_written == BS);
	cache_io_print_stats(ch, stdout);
	CHECK_EQ(io_channel_close(ch), 0);
	CHECK_EQ(cache_io_get_fd(NULL), -1);
}

/* ---- faults from the device ---- */

static void test_device_faults(void)
{
	const char *path = raw_image("fault.img", 64);
	io_channel ch = raw_open_mgr(fault_io_manager, path, 1 << 20);
	unsigned char buf[4 * BS];
	blk64_t b;

	CHECK_EQ(fault_io_set_device(ch, 1), 0);
	/* Write-back: the failed run stays dirty, the others go. */
	write_gen(ch, 50, 1);
	write_gen(ch, 52, 1);
	write_gen(ch, 54, 1);
	CHECK_EQ(fault_io_fail_write(ch, 1), 0);
	CHECK_EQ(io_channel_flush(ch), EIO);
	CHECK_EQ(fault_io_injected(ch), 1);
	CHECK(disk_is(path, 50, 0) && disk_is(path, 52, 1) && disk_is(path, 54, 1));
	CHECK(!(cache_io_block_state(ch, 50) & CACHE_IO_PINNED));
	CHECK_EQ(io_channel_flush(ch), 0);
	CHECK(disk_is(path, 50, 1));

	/* A read miss: the error reaches the caller, nothing is cached. */
	CHECK_EQ(fault_io_fail_read(ch, 2), 0);
	CHECK_EQ(read1(ch, 10, buf), 0);
	CHECK_EQ(io_channel_read_blk64(ch, 20, 4, buf), EIO);
	for (b = 20; b < 24; b++)
		CHECK(!cached(ch, b));
	CHECK_EQ(io_channel_read_blk64(ch, 20, 4, buf), 0);
	CHECK(is_fill(buf, 20, 0) && is_fill(buf + 3 * BS, 23, 0));
	CHECK(cached(ch, 10));

	/* Eviction of a dirty block under pressure that fails to write. */
	CHECK_EQ(cache_io_set_budget(ch, 2 * BS), 0);
	write_gen(ch, 30, 1);
	CHECK_EQ(fault_io_fail_write(ch, 1), 0);
	CHECK_EQ(read1(ch, 31, buf), 0);
	CHECK_EQ(read1(ch, 32, buf), 0);
	CHECK(cached(ch, 30)); /* kept: its data is nowhere else */
	CHECK(disk_is(path, 30, 0));
	CHECK_EQ(io_channel_flush(ch), 0);
	CHECK(disk_is(path, 30, 1));
	CHECK(stats(ch).cached_bytes <= 2 * BS);

	/* Channel-level faults: the Nth call fails, its neighbours do not. */
	CHECK_EQ(fault_io_set_device(ch, 0), 0);
	CHECK_EQ(fault_io_fail_write(ch, 2), 0);
	CHECK_EQ(write_gen(ch, 40, 2), 0);
	CHECK_EQ(write_gen(ch, 41, 2), EIO);
	CHECK_EQ(write_gen(ch, 42, 2), 0);
	CHECK_EQ(io_channel_flush(ch), 0);
	CHECK(disk_is(path, 40, 2) && disk_is(path, 41, 0) && disk_is(path, 42, 2));
	CHECK_EQ(io_channel_set_options(ch, "fail_read=1"), 0);
	CHECK_EQ(read1(ch, 5, buf), EIO);
	CHECK_EQ(read1(ch, 5, buf), 0);
	CHECK_EQ(io_channel_set_options(ch, "cache_size=8k"), 0);
	CHECK_EQ(stats(ch).budget, 8192);
	CHECK_EQ(io_channel_close(ch), 0);
}

/* Faults by block attached to a cache channel (FUSE4FS_FAULT). */
static void test_block_faults(void)
{
	static const char *const bad[] = { "", "read", "read=", "read=x",
					   "write=1x", "read=1;write=2",
					   "block=3", "read=1," };
	const char *path = raw_image("blkfault.img", 64);
	io_channel ch = raw_open(path, 1 << 20);
	unsigned char buf[4 * BS];
	struct fault *f;
	unsigned i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(fault_io_attach(ch, bad[i]) == NULL);
	f = fault_io_attach(ch, "read=21,write=30");
	CHECK(f != NULL);
	/* Every read touching block 21 fails, each time; others pass. */
	CHECK_EQ(read1(ch, 20, buf), 0);
	CHECK_EQ(io_channel_read_blk64(ch, 19, 4, buf), EIO);
	CHECK_EQ(read1(ch, 21, buf), EIO);
	CHECK_EQ(read1(ch, 22, buf), 0);
	CHECK(!cached(ch, 21));
	/* Direct IO announced through sync_range meets the same device. */
	CHECK_EQ(cache_io_sync_range(ch, 21 * BS + 100, 10, CACHE_IO_SYNC_READ),
		 EIO);
	CHECK_EQ(cache_io_sync_range(ch, 29 * BS, 2 * BS, CACHE_IO_SYNC_WRITE),
		 EIO);
	CHECK_EQ(cache_io_sync_range(ch, 31 * BS, BS, CACHE_IO_SYNC_WRITE), 0);
	/* Write-back of block 30 fails at every flush; block 31 goes. */
	write_gen(ch, 30, 1);
	write_gen(ch, 32, 1);
	CHECK_EQ(io_channel_flush(ch), EIO);
	CHECK_EQ(io_channel_flush(ch), EIO);
	CHECK(disk_is(path, 30, 0) && disk_is(path, 32, 1));
	CHECK_EQ(io_channel_close(ch), EIO);
	fault_io_detach(f);
}

/* ---- OFD lock ---- */

static void test_ofd_lock(void)
{
	const char *path = raw_image("lock.img", 8);
	io_channel a = NULL, b = NULL, c = NULL;
	int status = -1, held[2];
	char byte;
	pid_t pid;

	CHECK_EQ(cache_io_manager->open(path, IO_FLAG_RW, &a), 0);
	CHECK_EQ(cache_io_manager->open(path, IO_FLAG_RW, &b), EBUSY);
	CHECK_EQ(cache_io_manager->open(path, 0, &b), EBUSY);
	pid = fork();
	if (pid == 0) {
		io_channel x = NULL;

		_exit(cache_io_manager->open(path, IO_FLAG_RW, &x) == EBUSY ? 0 : 1);
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_EQ(io_channel_close(a), 0);

	CHECK_EQ(cache_io_manager->open(path, 0, &b), 0);
	CHECK_EQ(cache_io_manager->open(path, 0, &c), 0); /* readers share */
	CHECK_EQ(cache_io_manager->open(path, IO_FLAG_RW, &a), EBUSY);
	CHECK_EQ(io_channel_close(b), 0);
	CHECK_EQ(io_channel_close(c), 0);
	CHECK_EQ(cache_io_manager->open(path, IO_FLAG_RW, &a), 0);
	CHECK_EQ(io_channel_close(a), 0);
	CHECK_EQ(cache_io_manager->open("/nonexistent/x", 0, &a), ENOENT);

	/* A holder that lets go soon (a server after umount) is waited for. */
	CHECK_EQ(pipe(held), 0);
	pid = fork();
	if (pid == 0) {
		io_channel x = NULL;

		if (cache_io_manager->open(path, IO_FLAG_RW, &x))
			_exit(1);
		if (write(held[1], "", 1) != 1)
			_exit(1);
		usleep(300000);
		_exit(0);
	}
	CHECK(pid > 0 && read(held[0], &byte, 1) == 1);
	close(held[0]);
	close(held[1]);
	CHECK_EQ(cache_io_manager->open(path, IO_FLAG_RW, &a), 0);
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	      WEXITSTATUS(status) == 0);
	CHECK_EQ(io_channel_close(a), 0);
}

/* Block devices: O_EXCL, BLKZEROOUT, BLKDISCARD, through a loop device. */
static void test_blockdev(void)
{
	const char *path = raw_image("bdev.img", 256);
	io_channel ch = NULL, ch2 = NULL;
	unsigned char buf[BS];
	char dev[64];
	errcode_t err;

	if (unit_losetup(path, 0, dev, sizeof(dev))) {
		unit_skip("block device tests: no loop device");
		return;
	}
	CHECK_EQ(cache_io_manager->open(dev, IO_FLAG_RW | IO_FLAG_EXCLUSIVE, &ch), 0);
	if (!ch)
		goto out;
	CHECK(ch->flags & CHANNEL_FLAGS_BLOCK_DEVICE);
	CHECK_EQ(cache_io_manager->open(dev, IO_FLAG_RW | IO_FLAG_EXCLUSIVE, &ch2),
		 EBUSY);
	CHECK_EQ(cache_io_manager->open(dev, IO_FLAG_RW, &ch2), EBUSY);
	CHECK_EQ(io_channel_set_blksize(ch, BS), 0);
	CHECK_EQ(write_gen(ch, 5, 1), 0);
	CHECK(disk_is(dev, 5, 0));
	CHECK_EQ(io_channel_flush(ch), 0);
	CHECK(disk_is(dev, 5, 1));
	CHECK_EQ(write_gen(ch, 10, 1), 0);
	CHECK_EQ(io_channel_zeroout(ch, 10, 4), 0);
	CHECK(!cached(ch, 10));
	CHECK_EQ(read1(ch, 10, buf), 0);
	CHECK(buf[0] == 0 && buf[BS - 1] == 0);
	err = io_channel_discard(ch, 20, 4);
	CHECK(err == 0 || err == EXT2_ET_UNIMPLEMENTED);
	CHECK_EQ(io_channel_close(ch), 0);
out:
	unit_run("losetup -d %s", dev);
}

/* ---- threads: libext2fs under one lock, executors beside it ---- */

struct thr {
	io_channel ch;
	int id;
	int bad;
};

static void *thread_main(void *arg)
{
	struct thr *t = arg;
	unsigned char buf[BS];
	unsigned seed = t->id;
	int i;

	for (i = 1; i <= 400; i++) {
		blk64_t b = t->id * 16 + rand_r(&seed) % 16;
		int fd = cache_io_get_fd(t->ch);

		if (i % 5 == 0) {
			fill(buf, b, i);
			if (cache_io_sync_range(t->ch, b * BS, BS, CACHE_IO_SYNC_WRITE) ||
			    pwrite(fd, buf, BS, b * BS) != BS)
				t->bad++;
			cache_io_note_write(t->ch);
		} else if (write_gen(t->ch, b, i)) {
			t->bad++;
		}
		if (read1(t->ch, b, buf) || !is_fill(buf, b, i))
			t->bad++;
		if (i % 7 == 0 && io_channel_flush(t->ch))
			t->bad++;
	}
	return NULL;
}

static void test_threads(void)
{
	const char *path = raw_image("threads.img", 64);
	io_channel ch = raw_open(path, 8 * BS);
	struct thr t[4];
	pthread_t tid[4];
	int i, bad = 0;

	for (i = 0; i < 4; i++) {
		t[i].ch = ch;
		t[i].id = i;
		t[i].bad = 0;
		pthread_create(&tid[i], NULL, thread_main, &t[i]);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(tid[i], NULL);
		bad += t[i].bad;
	}
	CHECK_EQ(bad, 0);
	CHECK(stats(ch).max_cached_bytes <= 8 * BS);
	CHECK_EQ(io_channel_close(ch), 0);
}

/* ---- whole filesystems through the cache ---- */

static unsigned char file_byte(unsigned n, size_t i)
{
	return (unsigned char)(n * 13 + i * 7 + i / 4096);
}

static errcode_t make_file(ext2_filsys fs, ext2_ino_t dir, const char *name,
			   unsigned n, size_t size)
{
	struct ext2_inode inode;
	ext2_file_t file;
	unsigned char *data;
	unsigned written;
	ext2_ino_t ino;
	errcode_t err;
	size_t i;

	err = ext2fs_new_inode(fs, dir, LINUX_S_IFREG | 0644, NULL, &ino);
	if (err)
		return err;
	err = ext2fs_link(fs, dir, name, ino, EXT2_FT_REG_FILE);
	if (err == EXT2_ET_DIR_NO_SPACE) {
		err = ext2fs_expand_dir(fs, dir);
		if (!err)
			err = ext2fs_link(fs, dir, name, ino, EXT2_FT_REG_FILE);
	}
	if (err)
		return err;
	ext2fs_inode_alloc_stats2(fs, ino, +1, 0);
	memset(&inode, 0, sizeof(inode));
	inode.i_mode = LINUX_S_IFREG | 0644;
	inode.i_links_count = 1;
	inode.i_atime = inode.i_ctime = inode.i_mtime = time(NULL);
	if (ext2fs_has_feature_extents(fs->super)) {
		ext2_extent_handle_t h;

		/* Sets up an empty extent tree in inode. */
		err = ext2fs_extent_open2(fs, ino, &inode, &h);
		if (err)
			return err;
		ext2fs_extent_free(h);
	}
	err = ext2fs_write_new_inode(fs, ino, &inode);
	if (err)
		return err;
	data = malloc(size + 1);
	for (i = 0; i < size; i++)
		data[i] = file_byte(n, i);
	err = ext2fs_file_open(fs, ino, EXT2_FILE_WRITE, &file);
	if (!err) {
		err = ext2fs_file_write(file, data, size, &written);
		if (!err && written != size)
			err = EXT2_ET_SHORT_WRITE;
		if (!err)
			err = ext2fs_file_set_size2(file, size);
		if (!err)
			err = ext2fs_file_close(file);
		else
			ext2fs_file_close(file);
	}
	free(data);
	return err;
}

static errcode_t remove_file(ext2_filsys fs, ext2_ino_t dir, const char *name)
{
	struct ext2_inode inode;
	ext2_ino_t ino;
	errcode_t err;

	err = ext2fs_lookup(fs, dir, name, strlen(name), NULL, &ino);
	if (!err)
		err = ext2fs_unlink(fs, dir, name, ino, 0);
	if (!err)
		err = ext2fs_read_inode(fs, ino, &inode);
	if (!err)
		err = ext2fs_punch(fs, ino, &inode, NULL, 0, ~0ULL);
	if (err)
		return err;
	inode.i_links_count = 0;
	inode.i_dtime = time(NULL);
	err = ext2fs_write_inode(fs, ino, &inode);
	if (!err)
		ext2fs_inode_alloc_stats2(fs, ino, -1, 0);
	return err;
}

static int check_file(ext2_filsys fs, ext2_ino_t dir, const char *name,
		      unsigned n, size_t size)
{
	unsigned char *data = malloc(size + 1);
	ext2_file_t file;
	unsigned got = 0;
	__u64 fsize = 0;
	ext2_ino_t ino;
	int ok = 0;
	size_t i;

	if (!ext2fs_lookup(fs, dir, name, strlen(name), NULL, &ino) &&
	    !ext2fs_file_open(fs, ino, 0, &file)) {
		ok = !ext2fs_file_read(file, data, size, &got) && got == size &&
		     !ext2fs_file_get_lsize(file, &fsize) && fsize == size;
		for (i = 0; ok && i < size; i++)
			ok = data[i] == file_byte(n, i);
		ext2fs_file_close(file);
	}
	free(data);
	return ok;
}

static size_t file_size(unsigned n)
{
	return (size_t)(n * 37 * 1024 + n * 3) % (400 * 1024);
}

static void test_e2e(const char *name, const char *mkfs_args,
		     const char *io_options, unsigned long long budget)
{
	const char *path = unit_mkfs(name, mkfs_args, 65536);
	ext2_filsys fs = NULL;
	ext2_ino_t sub = 0, gone;
	char fname[64];
	int bad = 0;
	unsigned n;

	printf("     e2e %s %s %s\n", name, mkfs_args, io_options ? io_options : "");
	CHECK_EQ(ext2fs_open2(path, io_options, EXT2_FLAG_RW | EXT2_FLAG_64BITS,
			      0, 0, cache_io_manager, &fs), 0);
	if (!fs)
		return;
	CHECK_EQ(stats(fs->io).budget, budget);
	CHECK_EQ(ext2fs_read_bitmaps(fs), 0);
	CHECK_EQ(cache_io_install_free_hook(fs), 0);
	CHECK_EQ(ext2fs_mkdir(fs, EXT2_ROOT_INO, 0, "sub"), 0);
	CHECK_EQ(ext2fs_lookup(fs, EXT2_ROOT_INO, "sub", 3, NULL, &sub), 0);
	for (n = 0; n < 120; n++) {
		snprintf(fname, sizeof(fname), "file-with-a-longish-name-%u", n);
		bad += make_file(fs, n % 2 ? sub : EXT2_ROOT_INO, fname, n,
				 file_size(n)) != 0;
	}
	for (n = 0; n < 120; n += 3) {
		snprintf(fname, sizeof(fname), "file-with-a-longish-name-%u", n);
		bad += remove_file(fs, n % 2 ? sub : EXT2_ROOT_INO, fname) != 0;
	}
	CHECK_EQ(bad, 0);
	CHECK(stats(fs->io).max_cached_bytes <= budget);
	if (budget >= (1 << 20))
		CHECK(stats(fs->io).invalidations > 0);
	CHECK_EQ(ext2fs_close_free(&fs), 0);
	unit_fsck(path);

	CHECK_EQ(ext2fs_open2(path, io_options, EXT2_FLAG_64BITS, 0, 0,
			      cache_io_manager, &fs), 0);
	if (!fs)
		return;
	for (n = 0; n < 120; n++) {
		snprintf(fname, sizeof(fname), "file-with-a-longish-name-%u", n);
		if (n % 3 == 0)
			bad += !ext2fs_lookup(fs, n % 2 ? sub : EXT2_ROOT_INO,
					      fname, strlen(fname), NULL, &gone);
		else
			bad += !check_file(fs, n % 2 ? sub : EXT2_ROOT_INO,
					   fname, n, file_size(n));
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(ext2fs_close_free(&fs), 0);
}

static int prev_calls;

static void prev_hook(ext2_filsys fs, blk64_t blk, int inuse)
{
	(void)fs;
	(void)blk;
	(void)inuse;
	prev_calls++;
}

/* A freed block's dirty cached copy never reaches the disk. */
static void test_free_hook(void)
{
	const char *path = unit_mkfs("free.img", "-t ext4 -b 4096", 32768);
	unsigned char buf[BS];
	ext2_filsys fs = NULL;
	blk64_t b1 = 0, b2 = 0, len = 0;
	int fd;

	CHECK_EQ(ext2fs_open2(path, NULL, EXT2_FLAG_RW | EXT2_FLAG_64BITS, 0, 0,
			      cache_io_manager, &fs), 0);
	if (!fs)
		return;
	CHECK_EQ(ext2fs_read_bitmaps(fs), 0);
	ext2fs_set_block_alloc_stats_callback(fs, prev_hook, NULL);
	CHECK_EQ(cache_io_install_free_hook(fs), 0);
	CHECK_EQ(cache_io_install_free_hook(fs), 0); /* once is enough */

	CHECK_EQ(ext2fs_new_block2(fs, 1000, NULL, &b1), 0);
	ext2fs_block_alloc_stats2(fs, b1, +1);
	CHECK_EQ(prev_calls, 1);
	CHECK_EQ(write_gen(fs->io, b1, 9), 0);
	CHECK(cache_io_block_state(fs->io, b1) & CACHE_IO_DIRTY);
	ext2fs_block_alloc_stats2(fs, b1, -1);
	CHECK_EQ(prev_calls, 2);
	CHECK(!cached(fs->io, b1));

	CHECK_EQ(ext2fs_new_range(fs, 0, 2000, 4, NULL, &b2, &len), 0);
	ext2fs_block_alloc_stats_range(fs, b2, 4, +1);
	CHECK_EQ(write_gen(fs->io, b2, 9), 0);
	CHECK_EQ(write_gen(fs->io, b2 + 3, 9), 0);
	ext2fs_block_alloc_stats_range(fs, b2, 4, -1);
	CHECK(!cached(fs->io, b2) && !cached(fs->io, b2 + 3));
	CHECK_EQ(ext2fs_close_free(&fs), 0);

	fd = open(path, O_RDONLY);
	CHECK(fd >= 0 && pread(fd, buf, BS, b1 * BS) == BS && !is_fill(buf, b1, 9));
	CHECK(pread(fd, buf, BS, (b2 + 3) * BS) == BS && !is_fill(buf, b2 + 3, 9));
	close(fd);
	unit_fsck(path);
}

/* IO errors under libext2fs: reported, retried, image stays consistent. */
static void test_e2e_faults(void)
{
	const char *path = unit_mkfs("efault.img", "-t ext4 -b 4096", 32768);
	ext2_filsys fs = NULL;

	CHECK_EQ(ext2fs_open2(path, "cache_size=1m&fail_device=1",
			      EXT2_FLAG_RW | EXT2_FLAG_64BITS, 0, 0,
			      fault_io_manager, &fs), 0);
	if (!fs)
		return;
	CHECK_EQ(ext2fs_read_bitmaps(fs), 0);
	CHECK_EQ(cache_io_install_free_hook(fs), 0);
	CHECK_EQ(stats(fs->io).budget, 1 << 20);
	CHECK_EQ(make_file(fs, EXT2_ROOT_INO, "a", 1, 100000), 0);
	fault_io_fail_write(fs->io, 1);
	CHECK_EQ(ext2fs_flush(fs), EIO);
	CHECK_EQ(fault_io_injected(fs->io), 1);
	CHECK_EQ(ext2fs_flush(fs), 0);
	CHECK_EQ(make_file(fs, EXT2_ROOT_INO, "b", 2, 50000), 0);
	CHECK_EQ(ext2fs_close_free(&fs), 0);
	unit_fsck(path);
	CHECK_EQ(ext2fs_open2(path, NULL, EXT2_FLAG_64BITS, 0, 0,
			      cache_io_manager, &fs), 0);
	if (!fs)
		return;
	CHECK(check_file(fs, EXT2_ROOT_INO, "a", 1, 100000));
	CHECK(check_file(fs, EXT2_ROOT_INO, "b", 2, 50000));
	CHECK_EQ(ext2fs_close_free(&fs), 0);
}

/* Two rw opens of one image through libext2fs: the second is refused. */
static void test_e2e_lock(void)
{
	const char *path = unit_mkfs("lockfs.img", "-t ext4", 16384);
	ext2_filsys fs = NULL, fs2 = NULL;

	CHECK_EQ(ext2fs_open2(path, NULL, EXT2_FLAG_RW | EXT2_FLAG_EXCLUSIVE,
			      0, 0, cache_io_manager, &fs), 0);
	CHECK_EQ(ext2fs_open2(path, NULL, EXT2_FLAG_RW, 0, 0, cache_io_manager,
			      &fs2), EBUSY);
	CHECK_EQ(ext2fs_open2(path, NULL, 0, 0, 0, cache_io_manager, &fs2),
		 EBUSY);
	if (fs)
		CHECK_EQ(ext2fs_close_free(&fs), 0);
	CHECK_EQ(ext2fs_open2(path, NULL, 0, 0, 0, cache_io_manager, &fs2), 0);
	if (fs2)
		CHECK_EQ(ext2fs_close_free(&fs2), 0);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_second_chance();
	test_random_model(16 * BS, 1);
	test_random_model(5 * BS, 2);
	test_random_model(0, 3);
	test_random_model(1 << 20, 4);
	test_writeback_and_fsync();
	test_partial_and_bypass();
	test_pin_txn_hold();
	test_invalidate_and_sync_range();
	test_options_and_stats();
	test_device_faults();
	test_block_faults();
	test_ofd_lock();
	test_blockdev();
	test_threads();
	test_free_hook();
	test_e2e("e2e4k.img", "-t ext4 -b 4096", NULL, CACHE_IO_DEFAULT_BUDGET);
	test_e2e("tiny4k.img", "-t ext4 -b 4096", "cache_size=64K", 64 << 10);
	test_e2e("tiny1k.img", "-t ext2 -b 1024", "cache_size=64K", 64 << 10);
	test_e2e_faults();
	test_e2e_lock();
	return unit_done();
}
