/*
 * Unit tests of file.c, the legacy data path: reads, writes and truncates
 * checked against an in-memory model on ext4, ext4 with inline_data
 * (files growing out of the inode), block-mapped ext2 with 1 KiB blocks;
 * sparse files, size limits, a full filesystem, open rules, fallocate
 * and fsync. Every image must pass e2fsck -fn afterwards.
 */
#include <fcntl.h>

#include "unit.h"
#include "core/fs_internal.h"

static struct fs_cred root;
static const struct fs_cred user = { 1000, 1000, 022 };

/* Creates an empty regular file in the root directory. */
static ext2_ino_t mkfile(struct fs *fs, const char *name, int inline_data)
{
	unsigned isize = EXT2_INODE_SIZE(fs->e2->super);
	struct ext2_inode_large inode;
	ext2_ino_t ino = 0;
	errcode_t err;
	char *raw;

	fs_lock(fs);
	if (fsi_new(fs, EXT2_ROOT_INO, LINUX_S_IFREG | 0644, &root, &ino,
		    &inode))
		goto fail;
	if (inline_data) {
		memset(inode.i_block, 0, sizeof(inode.i_block));
		inode.i_flags &= ~EXT4_EXTENTS_FL;
		inode.i_flags |= EXT4_INLINE_DATA_FL;
	}
	/* A new inode: clear whatever the table held past our struct. */
	raw = calloc(1, isize);
	memcpy(raw, &inode, isize < sizeof(inode) ? isize : sizeof(inode));
	err = ext2fs_write_inode_full(fs->e2, ino, (void *)raw, isize);
	free(raw);
	if (!err && inline_data)
		err = ext2fs_inline_data_init(fs->e2, ino);
	if (!err)
		err = ext2fs_link(fs->e2, EXT2_ROOT_INO, name, ino,
				  EXT2_FT_REG_FILE);
	if (err == EXT2_ET_DIR_NO_SPACE) {
		err = ext2fs_expand_dir(fs->e2, EXT2_ROOT_INO);
		if (!err)
			err = ext2fs_link(fs->e2, EXT2_ROOT_INO, name, ino,
					  EXT2_FT_REG_FILE);
	}
	if (err)
		goto fail;
	fs_unlock(fs);
	return ino;
fail:
	fs_unlock(fs);
	printf("FAIL cannot create %s\n", name);
	exit(1);
}

static uint32_t iflags(struct fs *fs, ext2_ino_t ino)
{
	struct ext2_inode_large inode;

	fs_lock(fs);
	fsi_read(fs, ino, &inode);
	fs_unlock(fs);
	return inode.i_flags;
}

static uint64_t isize(struct fs *fs, ext2_ino_t ino)
{
	struct stat st;

	inode_getattr(fs, ino, &st);
	return st.st_size;
}

static int truncate_to(struct fs *fs, ext2_ino_t ino, off_t size)
{
	struct stat st = { .st_size = size };

	return inode_setattr(fs, ino, &st, FS_SET_SIZE, &root, NULL);
}

/* Does the whole file read back as model[0, len)? */
static int matches(struct fs *fs, ext2_ino_t ino, const char *model,
		   size_t len)
{
	char *buf = malloc(len + 1);
	ssize_t got = file_read(fs, ino, buf, len + 1, 0);
	int ok = got == (ssize_t)len && !memcmp(buf, model, len);

	if (!ok)
		printf("     read %zd of %zu bytes\n", got, len);
	free(buf);
	return ok;
}

static void fill(char *buf, size_t len, unsigned *seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (char)(rand_r(seed) >> 7);
}

/*
 * Random writes, truncates and reads against a model of at most maxlen
 * bytes; returns the number of mismatches.
 */
static int exercise(struct fs *fs, ext2_ino_t ino, size_t maxlen, int ops,
		    unsigned seed)
{
	char *model = calloc(1, maxlen), *buf = malloc(maxlen);
	size_t len = 0;
	int bad = truncate_to(fs, ino, 0) != 0, i;

	for (i = 0; i < ops && !bad; i++) {
		size_t off = rand_r(&seed) % maxlen;
		size_t n = rand_r(&seed) % (maxlen - off) + 1;
		ssize_t got;

		if (rand_r(&seed) % 4 == 0)
			n = n % 97 + 1;
		switch (rand_r(&seed) % 8) {
		case 0: case 1: case 2: case 3:
			fill(buf, n, &seed);
			got = file_write(fs, ino, buf, n, off, 0, &root);
			if (got != (ssize_t)n) {
				printf("     op %d: write %zu@%zu: %zd\n", i, n,
				       off, got);
				bad++;
				break;
			}
			memcpy(model + off, buf, n);
			if (off + n > len)
				len = off + n;
			break;
		case 4:
			if (truncate_to(fs, ino, off)) {
				printf("     op %d: truncate %zu failed\n", i,
				       off);
				bad++;
				break;
			}
			if (off < len)
				memset(model + off, 0, len - off);
			len = off;
			break;
		default:
			got = file_read(fs, ino, buf, n, off);
			if (got != (ssize_t)(off >= len ? 0 :
					     (off + n > len ? len - off : n)) ||
			    (got > 0 && memcmp(buf, model + off, got))) {
				printf("     op %d: read %zu@%zu: %zd (len %zu)\n",
				       i, n, off, got, len);
				bad++;
			}
			break;
		}
	}
	if (!bad && (!matches(fs, ino, model, len) || isize(fs, ino) != len))
		bad++;
	free(model);
	free(buf);
	return bad;
}

static void test_basic(const char *name, const char *args)
{
	const char *path = unit_mkfs(name, args, 32768);
	char buf[8192], zero[8192] = { 0 };
	struct fs *fs = unit_open(path, 0);
	ext2_ino_t ino = mkfile(fs, "f", 0);
	ext2_ino_t other = mkfile(fs, "g", 0);
	struct stat st;

	printf("# basic IO on %s (%s)\n", name, args);
	CHECK_EQ(file_write(fs, ino, "hello", 5, 0, 0, &root), 5);
	CHECK_EQ(file_read(fs, ino, buf, sizeof(buf), 0), 5);
	CHECK(!memcmp(buf, "hello", 5));
	CHECK_EQ(file_read(fs, ino, buf, sizeof(buf), 5), 0);
	CHECK_EQ(file_read(fs, ino, buf, sizeof(buf), 1 << 20), 0);
	CHECK_EQ(file_read(fs, ino, buf, 3, 1), 3);
	CHECK(!memcmp(buf, "ell", 3));

	/* A write far past EOF leaves a hole that reads as zeros. */
	CHECK_EQ(file_write(fs, ino, "tail", 4, 3 << 20, 0, &root), 4);
	CHECK_EQ(isize(fs, ino), (3 << 20) + 4);
	CHECK_EQ(file_read(fs, ino, buf, sizeof(buf), 1 << 20),
		 sizeof(buf));
	CHECK(!memcmp(buf, zero, sizeof(buf)));
	CHECK_EQ(inode_getattr(fs, ino, &st), 0);
	CHECK(st.st_blocks * 512 < 64 * 1024);

	/* O_APPEND writes at EOF, whatever offset comes with them. */
	CHECK_EQ(file_write(fs, ino, "++", 2, 0, 1, &root), 2);
	CHECK_EQ(isize(fs, ino), (3 << 20) + 6);
	CHECK_EQ(file_read(fs, ino, buf, 16, 3 << 20), 6);
	CHECK(!memcmp(buf, "tail++", 6));

	/* Truncating into a block, then growing: the tail reads as zeros. */
	memset(buf, 'x', sizeof(buf));
	CHECK_EQ(file_write(fs, other, buf, sizeof(buf), 0, 0, &root),
		 sizeof(buf));
	CHECK_EQ(truncate_to(fs, other, 5000), 0);
	CHECK_EQ(file_write(fs, other, "y", 1, 8191, 0, &root), 1);
	CHECK_EQ(file_read(fs, other, buf, sizeof(buf), 0), sizeof(buf));
	CHECK(buf[4999] == 'x' && buf[8191] == 'y');
	CHECK(!memcmp(buf + 5000, zero, 8191 - 5000));

	/* Shrinking frees the blocks. */
	CHECK_EQ(truncate_to(fs, ino, 0), 0);
	CHECK_EQ(inode_getattr(fs, ino, &st), 0);
	CHECK_EQ(st.st_blocks, 0);

	CHECK_EQ(exercise(fs, ino, 300 * 1024, 1500, 1), 0);
	CHECK_EQ(exercise(fs, other, 20000, 1500, 2), 0);
	fs_close(fs);
	unit_fsck(path);
}

/* Inline-data files: written in the inode, then moved to blocks. */
static void test_inline(void)
{
	const char *path = unit_mkfs("inline.img",
				     "-t ext4 -I 256 -O inline_data", 32768);
	char buf[8192], model[16384] = { 0 };
	struct fs *fs = unit_open(path, 0);
	ext2_ino_t ino = mkfile(fs, "small", 1);
	ext2_ino_t ino2 = mkfile(fs, "grow", 1);
	ext2_ino_t ino3 = mkfile(fs, "trunc", 1);
	ext2_ino_t ino4 = mkfile(fs, "falloc", 1);
	ext2_ino_t ino5 = mkfile(fs, "model", 1);
	struct stat st;

	printf("# inline data\n");
	CHECK_EQ(file_write(fs, ino, "0123456789", 10, 0, 0, &root), 10);
	CHECK(iflags(fs, ino) & EXT4_INLINE_DATA_FL);
	/* Exactly i_size comes back, not the whole inline area. */
	CHECK_EQ(file_read(fs, ino, buf, sizeof(buf), 0), 10);
	CHECK(!memcmp(buf, "0123456789", 10));
	CHECK_EQ(file_read(fs, ino, buf, sizeof(buf), 4), 6);
	CHECK_EQ(file_read(fs, ino, buf, sizeof(buf), 10), 0);
	/* A write past EOF inside the inode: the gap reads as zeros. */
	CHECK_EQ(file_write(fs, ino, "ab", 2, 40, 0, &root), 2);
	CHECK_EQ(file_read(fs, ino, buf, sizeof(buf), 0), 42);
	CHECK(buf[10] == 0 && buf[39] == 0 && buf[40] == 'a');
	/* Past i_block's 60 bytes: the system.data attribute grows. */
	memset(model, 'm', 100);
	CHECK_EQ(file_write(fs, ino, model, 100, 0, 0, &root), 100);
	CHECK(iflags(fs, ino) & EXT4_INLINE_DATA_FL);
	CHECK(matches(fs, ino, model, 100));

	/* Too big for the inode: the data moves to a block, intact. */
	memset(model, 'a', 50);
	CHECK_EQ(file_write(fs, ino2, model, 50, 0, 0, &root), 50);
	fill(model + 50, 5000, &(unsigned){ 3 });
	CHECK_EQ(file_write(fs, ino2, model + 50, 5000, 50, 0, &root), 5000);
	CHECK(!(iflags(fs, ino2) & EXT4_INLINE_DATA_FL));
	CHECK(iflags(fs, ino2) & EXT4_EXTENTS_FL);
	CHECK(matches(fs, ino2, model, 5050));

	/* truncate: inside the inline area it stays there; beyond, moves. */
	CHECK_EQ(file_write(fs, ino3, "abcdefghij", 10, 0, 0, &root), 10);
	CHECK_EQ(truncate_to(fs, ino3, 4), 0);
	CHECK_EQ(truncate_to(fs, ino3, 50), 0);
	CHECK(iflags(fs, ino3) & EXT4_INLINE_DATA_FL);
	memset(model, 0, sizeof(model));
	memcpy(model, "abcd", 4);
	CHECK(matches(fs, ino3, model, 50));
	CHECK_EQ(truncate_to(fs, ino3, 3000), 0);
	CHECK(!(iflags(fs, ino3) & EXT4_INLINE_DATA_FL));
	CHECK(matches(fs, ino3, model, 3000));
	CHECK_EQ(inode_getattr(fs, ino3, &st), 0);
	CHECK_EQ(st.st_size, 3000);

	/* fallocate leaves the inode first, as ext4 does. */
	CHECK_EQ(file_write(fs, ino4, "xyz", 3, 0, 0, &root), 3);
	CHECK_EQ(file_fallocate(fs, ino4, 0, 0, 10000), 0);
	CHECK(!(iflags(fs, ino4) & EXT4_INLINE_DATA_FL));
	memset(model, 0, sizeof(model));
	memcpy(model, "xyz", 3);
	CHECK_EQ(isize(fs, ino4), 10000);
	CHECK(matches(fs, ino4, model, 10000));

	CHECK_EQ(exercise(fs, ino5, 400, 400, 4), 0);
	CHECK_EQ(exercise(fs, ino5, 30000, 800, 5), 0);
	fs_close(fs);
	unit_fsck(path);
}

/* An inline i_size beyond the inline area must fail, not crash. */
static void test_inline_corrupt(void)
{
	const char *path = unit_mkfs("badinline.img",
				     "-t ext4 -I 256 -O inline_data", 32768);
	struct ext2_inode_large inode;
	struct fs *fs = unit_open(path, 0);
	ext2_ino_t ino = mkfile(fs, "bad", 1);
	char buf[4096];

	printf("# inline data with a hostile i_size\n");
	CHECK_EQ(file_write(fs, ino, "abc", 3, 0, 0, &root), 3);
	fs_lock(fs);
	fsi_read(fs, ino, &inode);
	inode.i_size = 3000;
	fsi_write(fs, ino, &inode);
	fs_unlock(fs);
	CHECK_EQ(file_read(fs, ino, buf, sizeof(buf), 0), -EUCLEAN);
	CHECK_EQ(file_write(fs, ino, "d", 1, 3, 0, &root), -EUCLEAN);
	CHECK_EQ(file_write(fs, ino, buf, 4000, 0, 0, &root), -EUCLEAN);
	CHECK_EQ(truncate_to(fs, ino, 1), -EUCLEAN);
	CHECK(fs->e2->super->s_state & EXT2_ERROR_FS);
	fs_close(fs);
}

/* A block map pointing past the filesystem: errors, no stray writes. */
static void test_block_corrupt(void)
{
	const char *path = unit_mkfs("badblock.img", "-t ext2 -b 1024", 8192);
	struct ext2_inode_large inode;
	struct fs *fs = unit_open(path, 0);
	ext2_ino_t ino = mkfile(fs, "bad", 0);
	struct stat before, after;
	char buf[4096];

	printf("# block map pointing outside the filesystem\n");
	CHECK_EQ(file_write(fs, ino, "abc", 3, 0, 0, &root), 3);
	fs_lock(fs);
	fsi_read(fs, ino, &inode);
	inode.i_block[0] = ext2fs_blocks_count(fs->e2->super) + 1000;
	fsi_write(fs, ino, &inode);
	fs_unlock(fs);
	CHECK_EQ(stat(path, &before), 0);
	CHECK_EQ(file_read(fs, ino, buf, sizeof(buf), 0), -EUCLEAN);
	CHECK_EQ(file_write(fs, ino, "d", 1, 1, 0, &root), -EUCLEAN);
	/* The legacy path checks every block it passes; iomap only its own. */
	if (unit_iomap == FS_IOMAP_OFF)
		CHECK_EQ(file_write(fs, ino, buf, 100, 2000, 0, &root),
			 -EUCLEAN);
	CHECK_EQ(stat(path, &after), 0);
	CHECK_EQ(after.st_size, before.st_size);
	fs_close(fs);
}

/* ext2, 1 KiB blocks: direct, indirect, double and triple indirect. */
static void test_blockmap(void)
{
	const char *path = unit_mkfs("ext2.img", "-t ext2 -b 1024", 65536);
	/* 12 + 256 + 256^2 + 256^3 blocks of 1 KiB, as the kernel says. */
	const uint64_t max = 17247252480ULL;
	static const off_t offs[] = { 0, 11 * 1024 + 1000, 200 * 1024,
				      5 << 20, 100 << 20, 3ULL << 30 };
	struct fs *fs = unit_open(path, 0);
	ext2_ino_t ino = mkfile(fs, "sparse", 0);
	ext2_ino_t ino2 = mkfile(fs, "model", 0);
	ext2_ino_t ino3 = mkfile(fs, "falloc", 0);
	struct statvfs before, after;
	char buf[3000], zero[3000] = { 0 };
	static char blk[4096], zblk[4096];
	unsigned i;

	printf("# block-mapped files\n");
	CHECK(!(iflags(fs, ino) & EXT4_EXTENTS_FL));
	CHECK_EQ(fs_statfs(fs, &before), 0);
	for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		snprintf(buf, sizeof(buf), "block at %lld",
			 (long long)offs[i]);
		CHECK_EQ(file_write(fs, ino, buf, 3000, offs[i], 0, &root),
			 3000);
	}
	for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		char want[64];

		snprintf(want, sizeof(want), "block at %lld",
			 (long long)offs[i]);
		CHECK_EQ(file_read(fs, ino, buf, 3000, offs[i]), 3000);
		CHECK(!strcmp(buf, want));
	}
	CHECK_EQ(file_read(fs, ino, buf, 3000, 50 << 20), 3000);
	CHECK(!memcmp(buf, zero, 3000));
	CHECK_EQ(truncate_to(fs, ino, 0), 0);
	CHECK_EQ(fs_statfs(fs, &after), 0);
	CHECK_EQ(after.f_bfree, before.f_bfree);

	/* s_bitmap_maxbytes: the write is cut at the limit, then EFBIG. */
	CHECK_EQ(truncate_to(fs, ino, max), 0);
	CHECK_EQ(truncate_to(fs, ino, max + 1), -EFBIG);
	CHECK_EQ(file_write(fs, ino, buf, 100, max - 10, 0, &root), 10);
	CHECK_EQ(file_write(fs, ino, buf, 100, max, 0, &root), -EFBIG);
	CHECK_EQ(file_read(fs, ino, buf, 100, max - 10), 10);
	CHECK_EQ(truncate_to(fs, ino, 0), 0);

	/* As ext4: a block map cannot hold preallocated blocks. */
	CHECK_EQ(file_fallocate(fs, ino3, 0, 1000, 40000), -EOPNOTSUPP);
	CHECK_EQ(file_fallocate(fs, ino3, FALLOC_FL_KEEP_SIZE, 0, 41000),
		 -EOPNOTSUPP);
	CHECK_EQ(isize(fs, ino3), 0);
	/* ... but, as ext4, can have holes punched in it. */
	memset(blk, 'b', sizeof(blk));
	for (i = 0; i < 300; i++)
		CHECK_EQ(file_write(fs, ino3, blk, 4096, i * 4096ULL, 0, &root),
			 4096);
	CHECK_EQ(fs_statfs(fs, &before), 0);
	CHECK_EQ(file_fallocate(fs, ino3, FALLOC_FL_PUNCH_HOLE |
				FALLOC_FL_KEEP_SIZE, 1000, 1 << 20),
		 0);
	CHECK_EQ(fs_statfs(fs, &after), 0);
	CHECK(after.f_bfree > before.f_bfree);
	CHECK_EQ(file_read(fs, ino3, blk, 4096, 0), 4096);
	CHECK(blk[999] == 'b' && !memcmp(blk + 1000, zblk, 3096));
	CHECK_EQ(file_read(fs, ino3, blk, 4096, (1 << 20) + 1000 - 4096),
		 4096);
	CHECK(!memcmp(blk, zblk, 4096));
	CHECK_EQ(file_read(fs, ino3, blk, 4, (1 << 20) + 1000), 4);
	CHECK(!memcmp(blk, "bbbb", 4));
	CHECK_EQ(truncate_to(fs, ino3, 0), 0);

	CHECK_EQ(exercise(fs, ino2, 400 * 1024, 1500, 6), 0);
	fs_close(fs);
	unit_fsck(path);
}

/* Extent files: s_maxbytes, fallocate modes. */
static void test_extents(void)
{
	const char *path = unit_mkfs("ext4.img", "-t ext4 -b 4096", 65536);
	/* (2^32 - 1) blocks of 4 KiB, as the kernel says with huge_file. */
	const uint64_t max = 17592186040320ULL;
	struct fs *fs = unit_open(path, 0);
	ext2_ino_t ino = mkfile(fs, "big", 0);
	ext2_ino_t ino2 = mkfile(fs, "falloc", 0);
	char buf[8192], zero[8192] = { 0 };
	struct stat st;

	printf("# extent files\n");
	CHECK_EQ(truncate_to(fs, ino, max), 0);
	CHECK_EQ(truncate_to(fs, ino, max + 1), -EFBIG);
	CHECK_EQ(file_write(fs, ino, buf, 100, max - 10, 0, &root), 10);
	CHECK_EQ(file_write(fs, ino, buf, 1, max, 0, &root), -EFBIG);
	CHECK_EQ(truncate_to(fs, ino, 0), 0);

	CHECK_EQ(file_write(fs, ino2, "data", 4, 0, 0, &root), 4);
	CHECK_EQ(file_fallocate(fs, ino2, FALLOC_FL_KEEP_SIZE, 0, 1 << 20), 0);
	CHECK_EQ(inode_getattr(fs, ino2, &st), 0);
	CHECK_EQ(st.st_size, 4);
	CHECK_EQ(st.st_blocks, (1 << 20) / 512);
	CHECK_EQ(file_fallocate(fs, ino2, 0, 0, 2 << 20), 0);
	CHECK_EQ(isize(fs, ino2), 2 << 20);
	CHECK_EQ(file_read(fs, ino2, buf, sizeof(buf), 0), sizeof(buf));
	CHECK(!memcmp(buf, "data", 4) && !memcmp(buf + 4, zero, 4000));
	CHECK_EQ(file_read(fs, ino2, buf, sizeof(buf), 1 << 20), sizeof(buf));
	CHECK(!memcmp(buf, zero, sizeof(buf)));
	/* Writing into unwritten extents makes them real. */
	CHECK_EQ(file_write(fs, ino2, "mid", 3, 100000, 0, &root), 3);
	CHECK_EQ(file_read(fs, ino2, buf, 8, 99998), 8);
	CHECK(!memcmp(buf, "\0\0mid\0\0\0", 8));
	/* Punching: whole blocks freed, partial ones zeroed, size kept. */
	CHECK_EQ(file_write(fs, ino2, "xyz", 3, 8190, 0, &root), 3);
	CHECK_EQ(file_fallocate(fs, ino2, FALLOC_FL_PUNCH_HOLE |
				FALLOC_FL_KEEP_SIZE, 2, 8190),
		 0);
	CHECK_EQ(file_read(fs, ino2, buf, 8, 0), 8);
	CHECK(!memcmp(buf, "da\0\0\0\0\0\0", 8));
	CHECK_EQ(file_read(fs, ino2, buf, 4, 8190), 4);
	CHECK(!memcmp(buf, "\0\0z\0", 4));
	CHECK_EQ(file_read(fs, ino2, buf, 8, 99998), 8);
	CHECK(!memcmp(buf, "\0\0mid\0\0\0", 8));
	CHECK_EQ(isize(fs, ino2), 2 << 20);
	CHECK_EQ(file_fallocate(fs, ino2, FALLOC_FL_PUNCH_HOLE, 0, 4096),
		 -EOPNOTSUPP);
	CHECK_EQ(file_fallocate(fs, ino2, 0, -1, 4096), -EINVAL);
	CHECK_EQ(file_fallocate(fs, ino2, 0, 0, 0), -EINVAL);
	CHECK_EQ(file_fallocate(fs, ino2, 0, max, 4096), -EFBIG);
	CHECK_EQ(file_fallocate(fs, EXT2_ROOT_INO, 0, 0, 4096), -EISDIR);
	fs_close(fs);
	unit_fsck(path);
}

/* A full filesystem: short writes, ENOSPC, earlier data intact. */
static void test_enospc(void)
{
	char args[512];
	const char *path;
	struct fs *fs;
	ext2_ino_t a, b, c;
	size_t chunk = 64 * 1024, total = 0, alen = 256 * 1024;
	char *adata = malloc(alen), *bdata = malloc(8 << 20);
	ssize_t got = 0;
	struct statvfs sv;
	unsigned seed = 9;

	printf("# ENOSPC\n");
	/*
	 * libext2fs before 1.47.4 cannot free an extent that ends at the
	 * filesystem's last block (EXT2_ET_BAD_BLOCK_NUM): keep that block
	 * out of play here, this test is about running out of space.
	 */
	snprintf(args, sizeof(args), "%s/lastblock", unit_scratch());
	unit_run("echo 4095 > %s", args);
	snprintf(args, sizeof(args),
		 "-t ext4 -b 1024 -m 0 -O ^has_journal -l %s/lastblock",
		 unit_scratch());
	path = unit_mkfs("full.img", args, 4096);
	fs = unit_open(path, 0);
	a = mkfile(fs, "a", 0);
	b = mkfile(fs, "b", 0);
	c = mkfile(fs, "c", 0);
	fill(adata, alen, &seed);
	CHECK_EQ(file_write(fs, a, adata, alen, 0, 0, &root), alen);
	fill(bdata, 8 << 20, &seed);
	while (total < (8u << 20)) {
		got = file_write(fs, b, bdata + total, chunk, total, 0,
				 &root);
		if (got <= 0)
			break;
		total += got;
		if ((size_t)got < chunk)
			break;
	}
	CHECK(got > 0 || got == -ENOSPC);
	CHECK(total > 0 && total < (8u << 20));
	/* Once full, the next write fails cleanly. */
	CHECK_EQ(file_write(fs, b, bdata, chunk, total + chunk, 0, &root),
		 -ENOSPC);
	CHECK_EQ(isize(fs, b), total);
	CHECK(matches(fs, b, bdata, total));
	CHECK(matches(fs, a, adata, alen));
	CHECK_EQ(file_fallocate(fs, c, 0, 0, 1 << 20), -ENOSPC);
	CHECK_EQ(isize(fs, c), 0);
	CHECK_EQ(fs_statfs(fs, &sv), 0);
	CHECK(sv.f_bfree < 16);
	/* Freeing space makes writes work again. */
	CHECK_EQ(truncate_to(fs, b, 0), 0);
	CHECK_EQ(file_write(fs, c, adata, alen, 0, 0, &root), alen);
	CHECK(matches(fs, c, adata, alen));
	fs_close(fs);
	free(adata);
	free(bdata);
	unit_fsck(path);
}

#define set_iflags(fs, ino, f) unit_poke_flags(fs, ino, f, 0)
#define clear_iflags(fs, ino, f) unit_poke_flags(fs, ino, 0, f)

/* file_open's rules, O_TRUNC, setuid clearing, times, fsync, ro. */
static void test_open_rules(void)
{
	const char *path = unit_mkfs("open.img", "-t ext4", 32768);
	struct fs *fs = unit_open(path, 0);
	ext2_ino_t f = mkfile(fs, "f", 0), imm = mkfile(fs, "imm", 0);
	ext2_ino_t app = mkfile(fs, "app", 0), enc = mkfile(fs, "enc", 0);
	ext2_ino_t suid = mkfile(fs, "suid", 0);
	struct stat st = { 0 }, st2;
	char buf[64];

	printf("# open rules\n");
	CHECK_EQ(file_open(fs, EXT2_ROOT_INO, O_RDONLY, &root), 0);
	CHECK_EQ(file_open(fs, EXT2_ROOT_INO, O_WRONLY, &root), -EISDIR);
	CHECK_EQ(file_open(fs, EXT2_ROOT_INO, O_RDWR, &root), -EISDIR);

	set_iflags(fs, imm, EXT2_IMMUTABLE_FL);
	CHECK_EQ(file_open(fs, imm, O_RDONLY, &root), 0);
	CHECK_EQ(file_open(fs, imm, O_WRONLY, &root), -EPERM);
	CHECK_EQ(file_open(fs, imm, O_RDONLY | O_TRUNC, &root), -EPERM);
	CHECK_EQ(file_write(fs, imm, "x", 1, 0, 0, &root), -EPERM);
	CHECK_EQ(file_fallocate(fs, imm, 0, 0, 10), -EPERM);

	set_iflags(fs, app, EXT2_APPEND_FL);
	CHECK_EQ(file_open(fs, app, O_WRONLY, &root), -EPERM);
	CHECK_EQ(file_open(fs, app, O_WRONLY | O_APPEND, &root), 0);
	CHECK_EQ(file_open(fs, app, O_WRONLY | O_APPEND | O_TRUNC, &root),
		 -EPERM);
	CHECK_EQ(file_write(fs, app, "ab", 2, 0, 1, &root), 2);
	CHECK_EQ(file_write(fs, app, "cd", 2, 0, 0, &root), -EPERM);
	CHECK_EQ(file_write(fs, app, "cd", 2, 0, 1, &root), 2);
	CHECK(matches(fs, app, "abcd", 4));

	set_iflags(fs, enc, EXT4_ENCRYPT_FL);
	CHECK_EQ(file_open(fs, enc, O_RDONLY, &root), -EOPNOTSUPP);
	CHECK_EQ(file_read(fs, enc, buf, sizeof(buf), 0), -EOPNOTSUPP);
	clear_iflags(fs, enc, EXT4_ENCRYPT_FL);

	/* O_TRUNC empties the file and stamps mtime and ctime. */
	CHECK_EQ(file_write(fs, f, "content", 7, 0, 0, &root), 7);
	st.st_mtim.tv_sec = 1000;
	st.st_atim.tv_sec = 1000;
	CHECK_EQ(inode_setattr(fs, f, &st, FS_SET_MTIME | FS_SET_ATIME |
			       FS_SET_CTIME, &root, NULL), 0);
	CHECK_EQ(file_open(fs, f, O_WRONLY | O_TRUNC, &root), 0);
	CHECK_EQ(inode_getattr(fs, f, &st2), 0);
	CHECK_EQ(st2.st_size, 0);
	CHECK(st2.st_mtim.tv_sec > 1000 && st2.st_ctim.tv_sec > 1000);
	CHECK_EQ(st2.st_atim.tv_sec, 1000);

	/* A write stamps mtime and ctime. */
	CHECK_EQ(inode_setattr(fs, f, &st, FS_SET_MTIME | FS_SET_CTIME, &root,
			       NULL), 0);
	CHECK_EQ(file_write(fs, f, "new", 3, 0, 0, &root), 3);
	CHECK_EQ(inode_getattr(fs, f, &st2), 0);
	CHECK(st2.st_mtim.tv_sec > 1000 && st2.st_ctim.tv_sec > 1000);

	/* Writes by others clear setuid, and setgid with group exec. */
	st.st_mode = 06755;
	CHECK_EQ(inode_setattr(fs, suid, &st, FS_SET_MODE, &root, NULL), 0);
	CHECK_EQ(file_write(fs, suid, "r", 1, 0, 0, &root), 1);
	CHECK_EQ(inode_getattr(fs, suid, &st2), 0);
	CHECK_EQ(st2.st_mode & 07777, 06755);
	CHECK_EQ(file_write(fs, suid, "u", 1, 0, 0, &user), 1);
	CHECK_EQ(inode_getattr(fs, suid, &st2), 0);
	CHECK_EQ(st2.st_mode & 07777, 0755);
	/*
	 * setgid without group exec: kept for a writer in the file's group,
	 * cleared for one outside it (kernels since 6.2).
	 */
	st.st_mode = 02745;
	st.st_gid = user.gid;
	CHECK_EQ(inode_setattr(fs, suid, &st, FS_SET_MODE | FS_SET_GID, &root,
			       NULL), 0);
	CHECK_EQ(file_write(fs, suid, "u", 1, 0, 0, &user), 1);
	CHECK_EQ(inode_getattr(fs, suid, &st2), 0);
	CHECK_EQ(st2.st_mode & 07777, 02745);
	st.st_gid = 0;
	CHECK_EQ(inode_setattr(fs, suid, &st, FS_SET_MODE | FS_SET_GID, &root,
			       NULL), 0);
	CHECK_EQ(file_write(fs, suid, "u", 1, 0, 0, &user), 1);
	CHECK_EQ(inode_getattr(fs, suid, &st2), 0);
	CHECK_EQ(st2.st_mode & 07777, 0745);
	st.st_mode = 04755; /* O_TRUNC by others clears it too */
	CHECK_EQ(inode_setattr(fs, suid, &st, FS_SET_MODE, &root, NULL), 0);
	CHECK_EQ(file_open(fs, suid, O_WRONLY | O_TRUNC, &user), 0);
	CHECK_EQ(inode_getattr(fs, suid, &st2), 0);
	CHECK_EQ(st2.st_mode & 07777, 0755);

	/* fsync: another reader of the image sees the data at once. */
	CHECK_EQ(file_write(fs, f, "synced data", 11, 0, 0, &root), 11);
	CHECK_EQ(file_fsync(fs, f, 0), 0);
	CHECK_EQ(unit_run("debugfs -R 'cat /f' %s 2>/dev/null | "
			  "grep -q '^synced data$'", path), 0);
	fs_close(fs);
	unit_fsck(path);

	/* Read-only: reads work, changes are EROFS. */
	fs = unit_open(path, 1);
	CHECK_EQ(file_open(fs, f, O_RDONLY, &root), 0);
	CHECK_EQ(file_open(fs, f, O_RDWR, &root), -EROFS);
	CHECK_EQ(file_read(fs, f, buf, sizeof(buf), 0), 11);
	CHECK_EQ(file_write(fs, f, "x", 1, 0, 0, &root), -EROFS);
	CHECK_EQ(file_fallocate(fs, f, 0, 0, 10), -EROFS);
	CHECK_EQ(file_fsync(fs, f, 0), 0);
	fs_close(fs);
}

int main(void)
{
	static const enum fs_iomap_mode modes[] = { FS_IOMAP_OFF,
						    FS_IOMAP_AUTO };
	unsigned i;

	root = unit_root();
	for (i = 0; i < 2; i++) {
		unit_iomap = modes[i];
		printf("# iomap=%s\n", i ? "auto" : "off");
		test_basic("ext4.img", "-t ext4");
		test_basic("ext3.img", "-t ext3");
		test_inline();
		test_inline_corrupt();
		test_block_corrupt();
		test_blockmap();
		test_extents();
		test_enospc();
		test_open_rules();
	}
	return unit_done();
}
