/*
 * Unit tests of the iomap engine and the userspace executor: mappings of
 * holes, written and unwritten extents and block maps; writes into holes,
 * past EOF and into unwritten extents; truncates; and a random-operation
 * run checked against an in-memory model, on extent and block-mapped files.
 */
#include <fcntl.h>
#include <linux/falloc.h>

#include "unit.h"
#include "core/iomap.h"

#define MODEL_MAX (3u << 20)

static unsigned char model[MODEL_MAX], got[MODEL_MAX];

/* An empty regular file made by debugfs; returns its inode number. */
static ext2_ino_t make_file(const char *img, const char *name)
{
	char cmd[256];
	FILE *p;
	unsigned ino = 0;

	unit_run("debugfs -w -R 'write /dev/null %s' %s >/dev/null 2>&1", name,
		 img);
	snprintf(cmd, sizeof(cmd), "debugfs -R 'stat %s' %s 2>/dev/null", name,
		 img);
	p = popen(cmd, "r");
	if (!p || fscanf(p, "Inode: %u", &ino) != 1)
		ino = 0;
	if (p)
		pclose(p);
	return ino;
}

static int truncate_to(struct fs *fs, ext2_ino_t ino, uint64_t size)
{
	struct ext2_inode_large inode;
	int ret;

	fs_lock(fs);
	ret = fsi_read(fs, ino, &inode);
	if (!ret)
		ret = iomap_truncate_locked(fs, ino, &inode, size);
	fs_unlock(fs);
	return ret;
}

static uint64_t file_size(struct fs *fs, ext2_ino_t ino)
{
	struct ext2_inode_large inode;

	fs_lock(fs);
	fsi_read(fs, ino, &inode);
	fs_unlock(fs);
	return fsi_size(&inode);
}

/* The mapping at pos as iomap_begin reports it; returns 0 or -errno. */
static int report(struct fs *fs, ext2_ino_t ino, uint64_t pos, uint64_t len,
		  struct iomap *map)
{
	int ret;

	fs_lock(fs);
	ret = iomap_begin(fs, ino, pos, len, IOMAP_OP_REPORT, map);
	fs_unlock(fs);
	return ret;
}

/* Do the 4 KiB at off read back with c at both ends? */
static int block_reads_as(struct fs *fs, ext2_ino_t ino, uint64_t off, char c)
{
	char back[4096];

	return iomap_read(fs, ino, back, sizeof(back), off) == sizeof(back) &&
	       back[0] == c && back[sizeof(back) - 1] == c;
}

/* fallocate(PUNCH_HOLE | KEEP_SIZE), the only punch there is. */
static int punch(struct fs *fs, ext2_ino_t ino, uint64_t off, uint64_t len)
{
	return iomap_fallocate(fs, ino,
			       FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
			       len);
}

static void test_basic(const char *img_args, const char *name)
{
	const char *img = unit_mkfs(name, img_args, 65536);
	ext2_ino_t ino = make_file(img, "f");
	struct fs *fs;
	struct iomap map;
	char buf[8192];
	unsigned i;

	CHECK(ino != 0);
	fs = unit_open(img, 0);

	/* Empty file: a hole to infinity, nothing to read. */
	CHECK_EQ(report(fs, ino, 0, 4096, &map), 0);
	CHECK_EQ(map.type, IOMAP_HOLE);
	CHECK_EQ(iomap_read(fs, ino, buf, sizeof(buf), 0), 0);

	/* A write past EOF leaves a hole before it. */
	memset(buf, 'a', sizeof(buf));
	CHECK_EQ(iomap_write(fs, ino, buf, 100, 1 << 20, 0), 100);
	CHECK_EQ(file_size(fs, ino), (1 << 20) + 100);
	CHECK_EQ(iomap_read(fs, ino, buf, sizeof(buf), (1 << 20) - 4096), 4196);
	for (i = 0; i < 4096 && !buf[i]; i++)
		;
	CHECK_EQ(i, 4096);
	CHECK(buf[4096] == 'a' && buf[4195] == 'a');
	CHECK_EQ(report(fs, ino, 1 << 20, 1, &map), 0);
	CHECK_EQ(map.type, IOMAP_MAPPED);
	CHECK(map.addr != 0);

	/* Append mode writes at EOF. */
	CHECK_EQ(iomap_write(fs, ino, "xyz", 3, 0, 1), 3);
	CHECK_EQ(file_size(fs, ino), (1 << 20) + 103);

	/* Shrinking mid-block zeroes the tail: growing shows zeros. */
	CHECK_EQ(truncate_to(fs, ino, (1 << 20) + 10), 0);
	CHECK_EQ(truncate_to(fs, ino, (1 << 20) + 200), 0);
	memset(buf, 1, sizeof(buf));
	CHECK_EQ(iomap_read(fs, ino, buf, 200, 1 << 20), 200);
	CHECK(buf[9] == 'a' && buf[10] == 0 && buf[199] == 0);
	fs_close(fs);
	unit_fsck(img);
}

/* Unwritten extents read as zeros; partial writes zero the rest. */
static void test_unwritten(void)
{
	const char *img = unit_mkfs("unwritten.img", "-t ext4 -b 4096", 65536);
	ext2_ino_t ino = make_file(img, "f");
	struct ext2_inode_large inode;
	struct iomap map;
	char buf[16384];
	struct fs *fs = unit_open(img, 0);
	unsigned i;

	fs_lock(fs);
	fsi_read(fs, ino, &inode);
	CHECK_EQ(ext2fs_fallocate(fs->e2, EXT2_FALLOCATE_FORCE_UNINIT, ino,
				  (struct ext2_inode *)&inode, ~0ULL, 0, 4),
		 0);
	fsi_read(fs, ino, &inode);
	ext2fs_inode_size_set(fs->e2, (struct ext2_inode *)&inode, 16384);
	fsi_write(fs, ino, &inode);
	CHECK_EQ(iomap_begin(fs, ino, 0, 16384, IOMAP_OP_REPORT, &map), 0);
	fs_unlock(fs);
	CHECK_EQ(map.type, IOMAP_UNWRITTEN);
	CHECK_EQ(map.length, 16384);

	/* Stale bytes on disk under the extent must never show. */
	fs_lock(fs);
	fs_unlock(fs);
	{
		char junk[16384];

		memset(junk, 0x5a, sizeof(junk));
		CHECK_EQ(pwrite(fs->data_fd, junk, sizeof(junk), map.addr),
			 (ssize_t)sizeof(junk));
	}
	CHECK_EQ(iomap_read(fs, ino, buf, sizeof(buf), 0), 16384);
	for (i = 0; i < sizeof(buf) && !buf[i]; i++)
		;
	CHECK_EQ(i, sizeof(buf));

	CHECK_EQ(iomap_write(fs, ino, "hello", 5, 5000, 0), 5);
	CHECK_EQ(iomap_read(fs, ino, buf, sizeof(buf), 0), 16384);
	CHECK(memcmp(buf + 5000, "hello", 5) == 0);
	for (i = 0; i < sizeof(buf) && (!buf[i] || (i >= 5000 && i < 5005)); i++)
		;
	CHECK_EQ(i, sizeof(buf));
	CHECK_EQ(report(fs, ino, 4096, 1, &map), 0);
	CHECK_EQ(map.type, IOMAP_MAPPED);
	CHECK_EQ(report(fs, ino, 8192, 1, &map), 0);
	CHECK_EQ(map.type, IOMAP_UNWRITTEN);
	fs_close(fs);
	unit_fsck(img);
}

/* A small write into a big hole allocates what it covers, no more. */
static void test_sparse_alloc(const char *args, const char *name)
{
	const char *img = unit_mkfs(name, args, 65536);
	ext2_ino_t ino = make_file(img, "f");
	struct fs *fs = unit_open(img, 0);
	char buf[4096] = "x";
	struct stat st;

	CHECK_EQ(iomap_write(fs, ino, buf, 4096, 10 << 20, 0), 4096);
	CHECK_EQ(iomap_write(fs, ino, buf, 4096, 400 << 10, 0), 4096);
	CHECK_EQ(iomap_write(fs, ino, buf, 4096, 0, 0), 4096);
	CHECK_EQ(inode_getattr(fs, ino, &st), 0);
	/* Three 4 KiB pieces (plus an index block at most). */
	CHECK(st.st_blocks <= 3 * 8 + 8);
	CHECK_EQ(iomap_read(fs, ino, buf, 4096, 400 << 10), 4096);
	CHECK(buf[0] == 'x');
	fs_close(fs);
	unit_fsck(img);
}

/* Sequential 4 KiB appends must end up as one extent, not thousands. */
static void test_extents_merge(void)
{
	const char *img = unit_mkfs("merge.img", "-t ext4 -b 4096", 65536);
	ext2_ino_t ino = make_file(img, "f");
	struct fs *fs = unit_open(img, 0);
	static char buf[4096];
	struct iomap map;
	unsigned i;

	for (i = 0; i < 512; i++) {
		memset(buf, i, sizeof(buf));
		if (iomap_write(fs, ino, buf, sizeof(buf), i * 4096ULL, 0) !=
		    4096)
			break;
	}
	CHECK_EQ(i, 512);
	CHECK_EQ(report(fs, ino, 0, 1, &map), 0);
	CHECK_EQ(map.type, IOMAP_MAPPED);
	CHECK_EQ(map.length, 512 * 4096);
	fs_close(fs);
	unit_fsck(img);
}

/* The "map cache: H hits, M misses" line of the server's counters. */
static void map_cache_counts(struct fs *fs, unsigned long long *hits,
			     unsigned long long *misses)
{
	char *text = NULL, *line;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	*hits = *misses = 0;
	fs_print_stats(fs, f);
	fclose(f);
	line = strstr(text, "map cache: ");
	if (line)
		sscanf(line, "map cache: %llu hits, %llu misses", hits, misses);
	free(text);
}

/*
 * Streaming over one extent walks the tree once; every change to the
 * block map (allocation, conversion, punch, truncate) is seen at once by
 * the next read, even though the old mapping was cached.
 */
static void test_map_cache(const char *img_args, const char *name,
			   int extents)
{
	const char *img = unit_mkfs(name, img_args, 65536);
	ext2_ino_t ino = make_file(img, "f");
	ext2_ino_t other = make_file(img, "g");
	struct fs *fs = unit_open(img, 0);
	unsigned long long hits, misses, hits0, misses0;
	static char buf[1 << 20], back[4096];
	unsigned i, bad = 0;

	memset(buf, 'a', sizeof(buf));
	CHECK_EQ(iomap_write(fs, ino, buf, sizeof(buf), 0, 0), sizeof(buf));
	map_cache_counts(fs, &hits0, &misses0);
	for (i = 0; i < 256; i++)
		bad += !block_reads_as(fs, ino, i * 4096ULL, 'a');
	CHECK_EQ(bad, 0);
	map_cache_counts(fs, &hits, &misses);
	printf("     256 reads of 4 KiB: %llu hits, %llu misses\n",
	       hits - hits0, misses - misses0);
	CHECK(hits - hits0 >= 250);

	/* Overwrites of written blocks need no conversion either. */
	for (i = 0; i < 64; i++)
		if (iomap_write(fs, ino, "b", 1, i * 4096ULL, 0) != 1)
			bad++;
	CHECK_EQ(bad, 0);

	/* Punch what is cached: reads give zeros, not the old blocks. */
	CHECK_EQ(punch(fs, ino, 65536, 65536), 0);
	CHECK(block_reads_as(fs, ino, 65536, 0));
	/* The freed blocks go to another file; ours still reads zeros. */
	memset(buf, 'z', 65536);
	CHECK_EQ(iomap_write(fs, other, buf, 65536, 0, 0), 65536);
	CHECK(block_reads_as(fs, ino, 65536 + 8192, 0));
	/* Fill the hole again: its new blocks are read, not zeros. */
	memset(buf, 'c', 65536);
	CHECK_EQ(iomap_write(fs, ino, buf, 65536, 65536, 0), 65536);
	CHECK(block_reads_as(fs, ino, 65536 + 4096, 'c'));
	/* Truncate down and up: the tail is a hole again. */
	CHECK_EQ(truncate_to(fs, ino, 4096), 0);
	CHECK_EQ(truncate_to(fs, ino, 1 << 20), 0);
	CHECK(block_reads_as(fs, ino, 8192, 0));
	/* ZERO_RANGE turns written blocks back into unwritten ones. */
	CHECK_EQ(iomap_read(fs, ino, back, 4096, 0), 4096);
	CHECK(back[0] == 'b' && back[1] == 'a');
	if (!extents) {
		/* As ext4: a block map cannot hold unwritten blocks. */
		CHECK_EQ(iomap_fallocate(fs, ino, FALLOC_FL_ZERO_RANGE, 0,
					 4096),
			 -EOPNOTSUPP);
		goto out;
	}
	CHECK_EQ(iomap_fallocate(fs, ino, FALLOC_FL_ZERO_RANGE, 0, 4096), 0);
	CHECK(block_reads_as(fs, ino, 0, 0));
out:
	fs_close(fs);
	unit_fsck(img);
}

/*
 * A write whose data never reaches the device (here: a bad user buffer,
 * EFAULT from pwrite) gives back the blocks it allocated: no space lost,
 * and on block-mapped files no block with old contents left in the file.
 */
static void test_failed_write(const char *img_args, const char *name)
{
	const char *img = unit_mkfs(name, img_args, 65536);
	ext2_ino_t ino = make_file(img, "f");
	struct fs *fs = unit_open(img, 0);
	struct statvfs before, after;
	struct stat st;
	blkcnt_t blocks;
	char buf[8192];

	memset(buf, 'a', sizeof(buf));
	CHECK_EQ(iomap_write(fs, ino, buf, 4096, 0, 0), 4096);
	CHECK_EQ(inode_getattr(fs, ino, &st), 0);
	blocks = st.st_blocks;
	CHECK_EQ(fs_statfs(fs, &before), 0);
	CHECK_EQ(iomap_write(fs, ino, (const void *)8, 65536, 1 << 20, 0),
		 -EFAULT);
	CHECK_EQ(iomap_write(fs, ino, (const void *)8, 8192, 8192, 0),
		 -EFAULT);
	CHECK_EQ(fs_statfs(fs, &after), 0);
	CHECK_EQ(after.f_bfree, before.f_bfree);
	CHECK_EQ(file_size(fs, ino), 4096);
	CHECK_EQ(inode_getattr(fs, ino, &st), 0);
	CHECK_EQ(st.st_blocks, blocks);
	CHECK_EQ(iomap_seek(fs, ino, 0, SEEK_HOLE), 4096);
	fs_close(fs);
	unit_fsck(img);
}

/*
 * A file holding the filesystem's last block (where libext2fs 1.47.0
 * cannot free an extent by itself): a punch that splits an extent still
 * works, and truncating frees every block.
 */
static void test_last_block(void)
{
	const char *img = unit_mkfs("last.img",
				    "-t ext4 -b 1024 -m 0 -O ^has_journal", 4096);
	ext2_ino_t small = make_file(img, "small");
	ext2_ino_t big = make_file(img, "big");
	struct fs *fs = unit_open(img, 0);
	struct statvfs empty, sv;
	static char buf[65536];
	uint64_t size = 0;
	ssize_t got;

	CHECK_EQ(fs_statfs(fs, &empty), 0);
	memset(buf, 's', sizeof(buf));
	CHECK_EQ(iomap_write(fs, small, buf, 16384, 0, 0), 16384);
	memset(buf, 'b', sizeof(buf));
	while ((got = iomap_write(fs, big, buf, sizeof(buf), size, 0)) > 0)
		size += got;
	CHECK_EQ(got, -ENOSPC);
	CHECK_EQ(fs_statfs(fs, &sv), 0);
	CHECK_EQ(sv.f_bfree, 0);
	CHECK_EQ(truncate_to(fs, small, 0), 0);
	CHECK_EQ(punch(fs, big, 5120, 1024), 0);
	CHECK_EQ(iomap_read(fs, big, buf, 3072, 4096), 3072);
	CHECK(buf[1023] == 'b' && buf[1024] == 0 && buf[2047] == 0 &&
	      buf[2048] == 'b');
	CHECK_EQ(truncate_to(fs, big, 0), 0);
	CHECK_EQ(fs_statfs(fs, &sv), 0);
	CHECK_EQ(sv.f_bfree, empty.f_bfree);
	fs_close(fs);
	unit_fsck(img);
}

/* SEEK_DATA/SEEK_HOLE over data, holes and unwritten extents. */
static void test_seek_and_fallocate(void)
{
	const char *img = unit_mkfs("seek.img", "-t ext4 -b 4096", 65536);
	ext2_ino_t ino = make_file(img, "f");
	struct fs *fs = unit_open(img, 0);
	char buf[4096];

	memset(buf, 'd', sizeof(buf));
	/* data [0,4k) hole [4k,64k) unwritten [64k,128k) data [128k,132k) */
	CHECK_EQ(iomap_write(fs, ino, buf, 4096, 0, 0), 4096);
	CHECK_EQ(iomap_fallocate(fs, ino, 0, 65536, 65536), 0);
	CHECK_EQ(file_size(fs, ino), 131072);
	CHECK_EQ(iomap_write(fs, ino, buf, 4096, 131072, 0), 4096);
	CHECK_EQ(iomap_seek(fs, ino, 0, SEEK_DATA), 0);
	CHECK_EQ(iomap_seek(fs, ino, 0, SEEK_HOLE), 4096);
	CHECK_EQ(iomap_seek(fs, ino, 4096, SEEK_DATA), 131072);
	CHECK_EQ(iomap_seek(fs, ino, 131072, SEEK_HOLE), 135168);
	CHECK_EQ(iomap_seek(fs, ino, 135168, SEEK_DATA), -ENXIO);
	/* KEEP_SIZE past EOF does not change the size. */
	CHECK_EQ(iomap_fallocate(fs, ino, FALLOC_FL_KEEP_SIZE, 1 << 20, 8192), 0);
	CHECK_EQ(file_size(fs, ino), 135168);
	/* Punch needs KEEP_SIZE; collapse is not supported. */
	CHECK_EQ(iomap_fallocate(fs, ino, FALLOC_FL_PUNCH_HOLE, 0, 4096),
		 -EOPNOTSUPP);
	CHECK_EQ(iomap_fallocate(fs, ino, FALLOC_FL_COLLAPSE_RANGE, 0, 4096),
		 -EOPNOTSUPP);
	CHECK_EQ(punch(fs, ino, 100, 4096 * 3), 0);
	CHECK_EQ(iomap_read(fs, ino, buf, 4096, 0), 4096);
	CHECK(buf[99] == 'd' && buf[100] == 0 && buf[4095] == 0);
	fs_close(fs);
	unit_fsck(img);

	/* Block-mapped files cannot hold unwritten extents: EOPNOTSUPP. */
	img = unit_mkfs("seek2.img", "-t ext2", 65536);
	ino = make_file(img, "f");
	fs = unit_open(img, 0);
	CHECK_EQ(iomap_fallocate(fs, ino, 0, 0, 4096), -EOPNOTSUPP);
	fs_close(fs);
	unit_fsck(img);
}

/*
 * Punching a block map across indirect and doubly indirect blocks frees
 * exactly the blocks inside the range (libext2fs 1.47.0 alone does not).
 */
static void test_punch_blockmap(void)
{
	const char *img = unit_mkfs("punchind.img", "-t ext2 -b 1024", 65536);
	ext2_ino_t ino = make_file(img, "f");
	struct fs *fs = unit_open(img, 0);
	uint64_t size = 2080878, off = 569782, len = 550670, i, bad = 0;
	struct stat st;

	memset(model, 0x3b, size);
	CHECK_EQ(iomap_write(fs, ino, model, size, 0, 0), (ssize_t)size);
	CHECK_EQ(punch(fs, ino, off, len), 0);
	memset(model + off, 0, len);
	CHECK_EQ(iomap_read(fs, ino, got, size, 0), (ssize_t)size);
	for (i = 0; i < size; i++)
		bad += got[i] != model[i];
	CHECK_EQ(bad, 0);
	/* 1024-byte blocks: only the blocks wholly inside are freed. */
	CHECK_EQ(inode_getattr(fs, ino, &st), 0);
	CHECK(st.st_blocks * 512 <=
	      size + 1024 - ((off + len) / 1024 - (off + 1023) / 1024) * 1024 +
		      16 * 1024);
	fs_close(fs);
	unit_fsck(img);
}

/* Random writes, truncates and reads against a model of the file. */
static void test_random(const char *img_args, const char *name,
			unsigned seed, int extents)
{
	const char *img = unit_mkfs(name, img_args, 65536);
	ext2_ino_t ino = make_file(img, "f");
	struct fs *fs = unit_open(img, 0);
	uint64_t size = 0;
	unsigned op, bad = 0;

	srandom(seed);
	memset(model, 0, sizeof(model));
	for (op = 0; op < 2000 && !bad; op++) {
		unsigned kind = random() % (extents ? 13 : 10);
		uint64_t off = random() % (MODEL_MAX - 70000);
		size_t len = 1 + random() % 65536;

		if (kind < 5) {
			unsigned char *p = got;
			size_t i;

			for (i = 0; i < len; i++)
				p[i] = (unsigned char)random();
			if (iomap_write(fs, ino, p, len, off, 0) !=
			    (ssize_t)len) {
				printf("FAIL write op %u\n", op);
				bad++;
			}
			memcpy(model + off, p, len);
			if (off + len > size)
				size = off + len;
		} else if (kind < 7) {
			uint64_t nsize = random() % MODEL_MAX;

			if (truncate_to(fs, ino, nsize)) {
				printf("FAIL truncate op %u\n", op);
				bad++;
			}
			if (nsize < size)
				memset(model + nsize, 0, size - nsize);
			size = nsize;
		} else if (kind >= 10) {
			static const int modes[] = {
				FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				FALLOC_FL_ZERO_RANGE,
				FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
				FALLOC_FL_KEEP_SIZE,
				0,
			};
			int mode = modes[random() % 5];

			if (iomap_fallocate(fs, ino, mode, off, len)) {
				printf("FAIL fallocate op %u mode %x\n", op, mode);
				bad++;
			}
			if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
				memset(model + off, 0,
				       off >= size ? 0 :
				       size - off < len ? size - off : len);
			if (!(mode & (FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE)) &&
			    off + len > size)
				size = off + len;
		} else {
			ssize_t want = off >= size ? 0 :
				       (ssize_t)(size - off < len ? size - off : len);
			ssize_t n = iomap_read(fs, ino, got, len, off);

			if (n != want || memcmp(got, model + off, want)) {
				printf("FAIL read op %u off %llu len %zu: %zd/%zd\n",
				       op, (unsigned long long)off, len, n, want);
				bad++;
			}
		}
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(file_size(fs, ino), size);
	CHECK_EQ(iomap_read(fs, ino, got, MODEL_MAX, 0), (ssize_t)size);
	CHECK(memcmp(got, model, size) == 0);
	fs_close(fs);
	unit_fsck(img);
}

int main(void)
{
	test_basic("-t ext4 -b 4096", "ext4.img");
	test_basic("-t ext2 -b 1024", "ext2.img");
	test_basic("-t ext3", "ext3.img");
	test_unwritten();
	test_extents_merge();
	test_sparse_alloc("-t ext4 -b 4096", "sparse4.img");
	test_sparse_alloc("-t ext4 -b 1024", "sparse1.img");
	test_sparse_alloc("-t ext3", "sparse3.img");
	test_seek_and_fallocate();
	test_punch_blockmap();
	test_last_block();
	test_failed_write("-t ext4 -b 4096", "failed4.img");
	test_failed_write("-t ext3", "failed3.img");
	test_map_cache("-t ext4 -b 4096", "mapcache4.img", 1);
	test_map_cache("-t ext3", "mapcache3.img", 0);
	test_random("-t ext4 -b 4096", "rand4.img", 1, 1);
	test_random("-t ext4 -b 1024", "rand4k1.img", 2, 1);
	test_random("-t ext4 -b 4096", "rand4b.img", 5, 1);
	test_random("-t ext2 -b 1024", "rand2.img", 3, 0);
	test_random("-t ext3", "rand3.img", 4, 0);
	return unit_done();
}
