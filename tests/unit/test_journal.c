/*
 * Journal recovery (lib/core/journal.c) on logs written here block by
 * block, in each tag format and checksum version: revoke records,
 * escaped blocks, a log that wraps, an uncommitted tail, a read-only
 * replay that leaves the image alone, and damaged logs that must be
 * refused with nothing written.
 */
#include <fcntl.h>

#include "unit.h"
#include "core/jbd2_format.h"

#define NTARGET 4
/* jw_open's start: two blocks before the end, so that the log wraps. */
#define START_NEAR_END 0xffffffffu

struct jw {
	const char *path;
	int fd;
	unsigned bs;
	blk64_t *map; /* journal block -> fs block */
	uint32_t first, maxlen;
	uint32_t incompat;
	int csum;
	unsigned tag_bytes;
	uint32_t seed;
	uint32_t next; /* journal block written next */
	unsigned char uuid[16];
	blk64_t target[NTARGET]; /* free blocks the log writes */
	blk64_t nblocks;
};

static uint32_t crc(uint32_t seed, const void *p, size_t len)
{
	return ext2fs_crc32c_le(seed, p, len);
}

static void put_jblock(struct jw *w, uint32_t jblk, const void *buf)
{
	if (pwrite(w->fd, buf, w->bs, (off_t)w->map[jblk] * w->bs) != w->bs) {
		perror("pwrite");
		exit(1);
	}
}

static uint32_t take_jblock(struct jw *w)
{
	uint32_t b = w->next;

	w->next = w->next + 1 < w->maxlen ? w->next + 1 : w->first;
	return b;
}

static void header(unsigned char *b, uint32_t type, uint32_t seq)
{
	jbd2_put32(b + JH_MAGIC, JBD2_MAGIC);
	jbd2_put32(b + JH_BLOCKTYPE, type);
	jbd2_put32(b + JH_SEQUENCE, seq);
}

static void set_tail(struct jw *w, unsigned char *b)
{
	if (w->csum)
		jbd2_put32(b + w->bs - JBD2_TAIL_SIZE, crc(w->seed, b, w->bs));
}

static void fill(unsigned char *b, unsigned bs, int v)
{
	memset(b, v, bs);
}

/*
 * One transaction: revoke records, then blocks blks[i] <- datas[i], then
 * (if commit) its commit block. Returns the journal block of the first
 * data block, for tests that damage it.
 */
static uint32_t write_trans(struct jw *w, uint32_t seq, const blk64_t *revs,
			    int nrev, const blk64_t *blks,
			    unsigned char *const *datas, int n, int commit)
{
	unsigned char *b = calloc(1, w->bs), *d = malloc(w->bs);
	unsigned off = JH_SIZE,
		 rec = w->incompat & JBD2_FEATURE_INCOMPAT_64BIT ? 8 : 4;
	uint32_t desc_jblk, first_data = 0;
	unsigned char seqbe[4];
	int i;

	jbd2_put32(seqbe, seq);
	if (nrev) {
		header(b, JBD2_REVOKE_BLOCK, seq);
		for (i = 0; i < nrev; i++, off += rec) {
			if (rec == 8) {
				jbd2_put32(b + JR_RECORDS + i * 8,
					   revs[i] >> 32);
				jbd2_put32(b + JR_RECORDS + i * 8 + 4,
					   (uint32_t)revs[i]);
			} else {
				jbd2_put32(b + JR_RECORDS + i * 4,
					   (uint32_t)revs[i]);
			}
		}
		jbd2_put32(b + JR_COUNT, JR_RECORDS + nrev * rec);
		set_tail(w, b);
		put_jblock(w, take_jblock(w), b);
		memset(b, 0, w->bs);
	}
	header(b, JBD2_DESCRIPTOR_BLOCK, seq);
	desc_jblk = take_jblock(w);
	off = JH_SIZE;
	for (i = 0; i < n; i++) {
		unsigned char *t = b + off;
		unsigned flags = i ? JBD2_FLAG_SAME_UUID : 0;
		uint32_t jblk = take_jblock(w), c;

		if (!i)
			first_data = jblk;
		memcpy(d, datas[i], w->bs);
		if (jbd2_get32(d) == JBD2_MAGIC) {
			memset(d, 0, 4);
			flags |= JBD2_FLAG_ESCAPE;
		}
		if (i == n - 1)
			flags |= JBD2_FLAG_LAST_TAG;
		c = crc(crc(w->seed, seqbe, 4), d, w->bs);
		jbd2_put32(t + TAG_BLOCKNR, (uint32_t)blks[i]);
		if (w->incompat & JBD2_FEATURE_INCOMPAT_64BIT)
			jbd2_put32(t + TAG_BLOCKNR_HIGH, blks[i] >> 32);
		if (w->incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3) {
			jbd2_put32(t + TAG3_FLAGS, flags);
			jbd2_put32(t + TAG3_CHECKSUM, c);
		} else {
			t[TAG_FLAGS] = flags >> 8;
			t[TAG_FLAGS + 1] = flags;
			if (w->csum) {
				t[TAG_CHECKSUM] = c >> 8;
				t[TAG_CHECKSUM + 1] = c;
			}
		}
		off += w->tag_bytes;
		if (!(flags & JBD2_FLAG_SAME_UUID)) {
			memcpy(b + off, w->uuid, 16);
			off += 16;
		}
		put_jblock(w, jblk, d);
	}
	set_tail(w, b);
	put_jblock(w, desc_jblk, b);
	if (commit) {
		memset(b, 0, w->bs);
		header(b, JBD2_COMMIT_BLOCK, seq);
		if (w->csum)
			jbd2_put32(b + JC_CHKSUM, crc(w->seed, b, w->bs));
		put_jblock(w, take_jblock(w), b);
	}
	free(b);
	free(d);
	return first_data;
}

/*
 * Opens a fresh image of `args`: journal features set to `incompat`, the
 * log to start at journal block `start` with transaction `seq`,
 * needs_recovery set, and NTARGET free blocks picked for the log to
 * write.
 */
static void jw_open(struct jw *w, const char *name, const char *args,
		    uint32_t incompat, uint32_t start, uint32_t seq)
{
	unsigned char *jsb;
	ext2_filsys e2;
	blk64_t b;
	uint32_t i;
	int k = 0;

	memset(w, 0, sizeof(*w));
	w->path = strdup(unit_mkfs(name, args, 65536));
	if (ext2fs_open(w->path, EXT2_FLAG_RW | EXT2_FLAG_64BITS, 0, 0,
			unix_io_manager, &e2) ||
	    ext2fs_read_bitmaps(e2)) {
		printf("FAIL open %s\n", w->path);
		exit(1);
	}
	w->bs = e2->blocksize;
	w->nblocks = ext2fs_blocks_count(e2->super);
	jsb = malloc(w->bs);
	w->map = calloc(1, sizeof(*w->map));
	if (ext2fs_bmap2(e2, EXT2_JOURNAL_INO, NULL, NULL, 0, 0, NULL,
			 &w->map[0]) ||
	    io_channel_read_blk64(e2->io, w->map[0], 1, jsb)) {
		printf("FAIL journal superblock of %s\n", w->path);
		exit(1);
	}
	w->first = jbd2_get32(jsb + JSB_FIRST);
	w->maxlen = jbd2_get32(jsb + JSB_MAXLEN);
	w->map = realloc(w->map, w->maxlen * sizeof(*w->map));
	for (i = 1; i < w->maxlen; i++)
		ext2fs_bmap2(e2, EXT2_JOURNAL_INO, NULL, NULL, 0, i, NULL,
			     &w->map[i]);
	for (b = w->nblocks - 1; b > 0 && k < NTARGET; b--)
		if (!ext2fs_test_block_bitmap2(e2->block_map, b))
			w->target[k++] = b;

	if (start == START_NEAR_END)
		start = w->maxlen - 2;
	w->incompat = incompat;
	w->csum = !!(incompat & (JBD2_FEATURE_INCOMPAT_CSUM_V2 |
				 JBD2_FEATURE_INCOMPAT_CSUM_V3));
	if (incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3)
		w->tag_bytes = 16;
	else
		w->tag_bytes =
			8 + (incompat & JBD2_FEATURE_INCOMPAT_CSUM_V2 ? 2 : 0) +
			(incompat & JBD2_FEATURE_INCOMPAT_64BIT ? 4 : 0);
	memcpy(w->uuid, jsb + JSB_UUID, 16);
	w->seed = crc(~0u, w->uuid, 16);
	jbd2_put32(jsb + JH_BLOCKTYPE, JBD2_SUPERBLOCK_V2);
	jbd2_put32(jsb + JSB_FEATURE_INCOMPAT, incompat);
	jbd2_put32(jsb + JSB_START, start);
	jbd2_put32(jsb + JSB_SEQUENCE, seq);
	jsb[JSB_CHECKSUM_TYPE] = w->csum ? JBD2_CRC32C_CHKSUM : 0;
	memset(jsb + JSB_CHECKSUM, 0, 4);
	if (w->csum)
		jbd2_put32(jsb + JSB_CHECKSUM, crc(~0u, jsb, JSB_SIZE));
	io_channel_write_blk64(e2->io, w->map[0], 1, jsb);
	ext2fs_set_feature_journal_needs_recovery(e2->super);
	ext2fs_mark_super_dirty(e2);
	ext2fs_close_free(&e2);
	free(jsb);
	w->next = start;
	w->fd = open(w->path, O_RDWR);
	if (w->fd < 0 || k < NTARGET) {
		printf("FAIL set up %s\n", w->path);
		exit(1);
	}
}

static void jw_close(struct jw *w)
{
	close(w->fd);
	free(w->map);
	free((void *)w->path);
}

/* Does block b of the image hold `want` (bs bytes)? */
static int block_is(struct jw *w, blk64_t b, const unsigned char *want)
{
	unsigned char *buf = malloc(w->bs);
	int same = pread(w->fd, buf, w->bs, (off_t)b * w->bs) == w->bs &&
		   !memcmp(buf, want, w->bs);

	free(buf);
	return same;
}

static int needs_recovery(struct jw *w)
{
	return unit_run("dumpe2fs -h %s 2>/dev/null | grep -q needs_recovery",
			w->path) == 0;
}

static int try_open(struct jw *w, int readonly, struct fs **fsp,
		    const char **msg)
{
	struct fs_options o = {.device = w->path, .readonly = readonly};

	*fsp = NULL;
	*msg = NULL;
	return fs_open(&o, fsp, msg);
}

/*
 * T1: X -> t0, Y -> t1, a block that starts with the journal's magic ->
 * t2; T2 revokes t1 and writes Z -> t3; T3 (no commit) writes W -> t0.
 */
static void write_standard_log(struct jw *w, unsigned char **data, uint32_t seq)
{
	unsigned char *t1[3] = {data[0], data[1], data[2]};
	blk64_t b1[3] = {w->target[0], w->target[1], w->target[2]};

	write_trans(w, seq, NULL, 0, b1, t1, 3, 1);
	write_trans(w, seq + 1, &w->target[1], 1, &w->target[3], &data[3], 1,
		    1);
	write_trans(w, seq + 2, NULL, 0, &w->target[0], &data[4], 1, 0);
}

static void check_standard_result(struct jw *w, unsigned char **data,
				  unsigned char *zero)
{
	CHECK(block_is(w, w->target[0], data[0]));
	CHECK(block_is(w, w->target[1], zero));	   /* revoked */
	CHECK(block_is(w, w->target[2], data[2])); /* magic restored */
	CHECK(block_is(w, w->target[3], data[3]));
}

static void test_variant(const char *label, const char *args, uint32_t incompat)
{
	unsigned char *data[5], *zero;
	struct jw w;
	struct fs *fs;
	const char *msg;
	char name[64];
	int i, ret;

	printf("== %s\n", label);
	snprintf(name, sizeof(name), "%s.img", label);

	/* Replay read-write: three transactions, the third uncommitted. */
	jw_open(&w, name, args, incompat, 5, 1000);
	zero = calloc(1, w.bs);
	for (i = 0; i < 5; i++) {
		data[i] = malloc(w.bs);
		fill(data[i], w.bs, 'a' + i);
	}
	jbd2_put32(data[2], JBD2_MAGIC);
	write_standard_log(&w, data, 1000);
	ret = try_open(&w, 0, &fs, &msg);
	CHECK_EQ(ret, 0);
	if (fs) {
		CHECK(!ext2fs_has_feature_journal_needs_recovery(
			fs->e2->super));
		fs_close(fs);
	}
	check_standard_result(&w, data, zero);
	CHECK(!needs_recovery(&w));
	CHECK(unit_run(
		      "dumpe2fs %s 2>/dev/null | grep -q '^Journal start: *0$'",
		      w.path) == 0);
	unit_fsck(w.path);
	jw_close(&w);

	/* Read-only: the replay is seen through the cache, never written. */
	jw_open(&w, name, args, incompat, 5, 1000);
	write_standard_log(&w, data, 1000);
	ret = try_open(&w, 1, &fs, &msg);
	CHECK_EQ(ret, 0);
	if (fs) {
		unsigned char *buf = malloc(w.bs);

		CHECK(!io_channel_read_blk64(fs->e2->io, w.target[0], 1, buf) &&
		      !memcmp(buf, data[0], w.bs));
		CHECK(!io_channel_read_blk64(fs->e2->io, w.target[2], 1, buf) &&
		      !memcmp(buf, data[2], w.bs));
		CHECK_EQ(fs->iomap_mode, FS_IOMAP_OFF);
		free(buf);
		fs_close(fs);
	}
	CHECK(block_is(&w, w.target[0], zero));
	CHECK(needs_recovery(&w));
	jw_close(&w);

	/* A log that wraps past the end of the journal. */
	jw_open(&w, name, args, incompat, START_NEAR_END, 7);
	write_standard_log(&w, data, 7);
	CHECK_EQ(try_open(&w, 0, &fs, &msg), 0);
	if (fs)
		fs_close(fs);
	check_standard_result(&w, data, zero);
	unit_fsck(w.path);
	jw_close(&w);

	/* A tag naming a block past the end of the filesystem. */
	jw_open(&w, name, args, incompat, 5, 1);
	{
		blk64_t bad = w.nblocks + 10;

		write_trans(&w, 1, NULL, 0, &bad, data, 1, 1);
	}
	CHECK_EQ(try_open(&w, 0, &fs, &msg), -EUCLEAN);
	CHECK(msg && strstr(msg, "corrupt transaction"));
	CHECK(needs_recovery(&w));
	jw_close(&w);

	/* Descriptors all the way round, never a commit: a log without end. */
	jw_open(&w, name, args, incompat, 1, 3);
	{
		unsigned char *d = calloc(1, w.bs);
		uint32_t j;

		/* Each one's single tag takes the next one as its data. */
		header(d, JBD2_DESCRIPTOR_BLOCK, 3);
		jbd2_put32(d + JH_SIZE + TAG_BLOCKNR, (uint32_t)w.target[0]);
		if (incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3)
			jbd2_put32(d + JH_SIZE + TAG3_FLAGS,
				   JBD2_FLAG_LAST_TAG);
		else
			d[JH_SIZE + TAG_FLAGS + 1] = JBD2_FLAG_LAST_TAG;
		set_tail(&w, d);
		for (j = w.first; j < w.maxlen; j++)
			put_jblock(&w, j, d);
		free(d);
	}
	CHECK_EQ(try_open(&w, 0, &fs, &msg), -EUCLEAN);
	CHECK(msg && strstr(msg, "does not end"));
	if (fs)
		fs_close(fs);
	CHECK(block_is(&w, w.target[0], zero));
	jw_close(&w);

	if (w.csum) {
		/* A damaged data block in a committed transaction. */
		uint32_t d;

		jw_open(&w, name, args, incompat, 5, 1);
		write_trans(&w, 1, NULL, 0, &w.target[3], &data[3], 1, 1);
		d = write_trans(&w, 2, NULL, 0, w.target, data, 2, 1);
		if (pwrite(w.fd, "!", 1, (off_t)w.map[d] * w.bs + 100) != 1)
			exit(1);
		for (i = 0; i < 2; i++) {
			CHECK_EQ(try_open(&w, i, &fs, &msg), -EUCLEAN);
			CHECK(msg && strstr(msg, "corrupt transaction"));
		}
		/* Nothing written, not even the good first transaction. */
		CHECK(block_is(&w, w.target[3], zero));
		CHECK(needs_recovery(&w));
		jw_close(&w);

		/* The same damage in the uncommitted tail is no damage. */
		jw_open(&w, name, args, incompat, 5, 1);
		write_trans(&w, 1, NULL, 0, &w.target[3], &data[3], 1, 1);
		d = write_trans(&w, 2, NULL, 0, w.target, data, 2, 0);
		if (pwrite(w.fd, "!", 1, (off_t)w.map[d] * w.bs + 100) != 1)
			exit(1);
		CHECK_EQ(try_open(&w, 0, &fs, &msg), 0);
		if (fs)
			fs_close(fs);
		CHECK(block_is(&w, w.target[3], data[3]));
		CHECK(block_is(&w, w.target[0], zero));
		jw_close(&w);
	}
	for (i = 0; i < 5; i++)
		free(data[i]);
	free(zero);
}

int main(void)
{
	test_variant("v3-64bit", "-t ext4 -b 4096",
		     JBD2_FEATURE_INCOMPAT_REVOKE |
			     JBD2_FEATURE_INCOMPAT_64BIT |
			     JBD2_FEATURE_INCOMPAT_CSUM_V3);
	test_variant("v2-64bit", "-t ext4 -b 4096",
		     JBD2_FEATURE_INCOMPAT_REVOKE |
			     JBD2_FEATURE_INCOMPAT_64BIT |
			     JBD2_FEATURE_INCOMPAT_CSUM_V2);
	test_variant("v2-32bit", "-t ext4 -b 1024 -O ^64bit",
		     JBD2_FEATURE_INCOMPAT_REVOKE |
			     JBD2_FEATURE_INCOMPAT_CSUM_V2);
	test_variant("nocsum-32bit", "-t ext3 -b 1024",
		     JBD2_FEATURE_INCOMPAT_REVOKE);
	return unit_done();
}
