/*
 * Unit test of directory reading (dir.c) and of namei on big directories:
 * resumable listings with a tiny reply buffer on ext4, inline_data, ext2
 * (1k blocks) and 64bit+metadata_csum images, cookies that survive inserts,
 * removals and the inline-to-block conversion, an htree directory built by
 * the kernel read and changed through the core (then checked by e2fsck and
 * by the kernel's own hashed lookups), and damaged directory blocks.
 */
#include <errno.h>
#include <dirent.h>
#include <sys/stat.h>

#include "unit.h"
#include "core/fs_internal.h"

static struct fs_cred cred;

static struct unit_lister L;

static __u32 inode_flags(struct fs *fs, ext2_ino_t ino)
{
	struct ext2_inode_large in;
	__u32 flags = 0;

	fs_lock(fs);
	if (!fsi_read(fs, ino, &in))
		flags = in.i_flags;
	fs_unlock(fs);
	return flags;
}

/* 5000 entries, listed 7 at a time, each exactly once. */
static void test_big_listing(struct fs *fs)
{
	const char *p = "entry_with_a_longish_name_";
	ext2_ino_t d = unit_mkd(fs, EXT2_ROOT_INO, "big");
	int i, bad = 0, ret;

	CHECK(d != 0);
	for (i = 0; i < 5000; i++)
		bad += unit_mkf(fs, d, p, i) != 0;
	CHECK_EQ(bad, 0);

	unit_lister_init(&L, p, 7, 0);
	ret = unit_list_rest(fs, d, &L);
	CHECK_EQ(ret, 0);
	CHECK_EQ(unit_count_seen(&L, 0, 5000, 1), 5000);
	CHECK_EQ(L.dup, 0);
	CHECK_EQ(L.dot, 1);
	CHECK_EQ(L.dotdot, 1);
	CHECK_EQ(L.other, 0);
	CHECK_EQ(L.bad_order, 0);
	CHECK_EQ(L.bad_dtype, 0);
	CHECK(L.calls >= 5002 / 7 && L.calls <= 5002 / 7 + 2);

	unit_lister_init(&L, p, 100, 1);
	CHECK_EQ(unit_list_rest(fs, d, &L), 0);
	CHECK_EQ(unit_count_seen(&L, 0, 5000, 1), 5000);
	CHECK_EQ(L.bad_attr, 0);

	/* A listing resumed across unrelated inserts and removals. */
	unit_lister_init(&L, p, 7, 0);
	for (i = 0; i < 300; i++)
		CHECK_EQ(unit_list_step(fs, d, &L), 7);
	for (i = 0; i < 5000; i++) {
		/* Remove what was not listed yet among the odd ones. */
		if ((i & 1) && !L.seen[i])
			bad += unit_rmf(fs, d, p, i) != 0;
	}
	for (i = 5000; i < 5500; i++)
		bad += unit_mkf(fs, d, p, i) != 0;
	CHECK_EQ(bad, 0);
	{
		int before[5000];

		memcpy(before, L.seen, sizeof(before));
		CHECK_EQ(unit_list_rest(fs, d, &L), 0);
		CHECK_EQ(L.dup, 0);
		for (i = 0; i < 5000; i++) {
			int expect = before[i] || !(i & 1);

			if (L.seen[i] != expect)
				bad++;
		}
		CHECK_EQ(bad, 0);
	}

	/* dir_read past the end and from a cookie inside an entry. */
	L.taken = 0;
	L.budget = 10;
	CHECK_EQ(dir_read(fs, d, (off_t)1 << 40, 0, unit_list_fill, &L), 0);
	CHECK_EQ(L.taken, 0);
	unit_lister_init(&L, p, 3, 0);
	L.next = 5;
	CHECK_EQ(unit_list_step(fs, d, &L), 3);
	CHECK_EQ(L.dot, 0);
	CHECK_EQ(L.dotdot, 1);

	for (i = 0; i < 5500; i++)
		unit_rmf(fs, d, p, i);
	unit_lister_init(&L, p, 7, 0);
	CHECK_EQ(unit_list_rest(fs, d, &L), 0);
	CHECK_EQ(L.dot + L.dotdot, 2);
	CHECK_EQ(unit_count_seen(&L, 0, UNIT_LIST_MAX, 1), 0);
	CHECK_EQ(namei_rmdir(fs, EXT2_ROOT_INO, "big"), 0);
}

/* An inline directory that turns into a block one in mid-listing. */
static void test_inline_growth(struct fs *fs, int inline_fs)
{
	const char *p = "n";
	ext2_ino_t d = unit_mkd(fs, EXT2_ROOT_INO, "small");
	int i, bad = 0;

	for (i = 0; i < 4; i++)
		bad += unit_mkf(fs, d, p, i) != 0;
	CHECK_EQ(bad, 0);
	if (inline_fs)
		CHECK(inode_flags(fs, d) & EXT4_INLINE_DATA_FL);
	unit_lister_init(&L, p, 3, 0);
	CHECK_EQ(unit_list_step(fs, d, &L), 3);
	for (i = 4; i < 200; i++)
		bad += unit_mkf(fs, d, p, i) != 0;
	CHECK_EQ(bad, 0);
	CHECK_EQ(unit_list_rest(fs, d, &L), 0);
	CHECK_EQ(L.dot, 1);
	CHECK_EQ(L.dotdot, 1);
	CHECK_EQ(L.dup, 0);
	CHECK_EQ(L.bad_dtype, 0);
	CHECK_EQ(unit_count_seen(&L, 0, 4, 1), 4);
	unit_lister_init(&L, p, 1000, 1);
	CHECK_EQ(unit_list_rest(fs, d, &L), 0);
	CHECK_EQ(unit_count_seen(&L, 0, 200, 1), 200);
	CHECK_EQ(L.bad_attr, 0);
	for (i = 0; i < 200; i++)
		bad += unit_rmf(fs, d, p, i) != 0;
	CHECK_EQ(bad, 0);
	CHECK_EQ(dir_is_empty(fs, d), 0);
	CHECK_EQ(namei_rmdir(fs, EXT2_ROOT_INO, "small"), 0);
	CHECK_EQ(dir_open(fs, EXT2_ROOT_INO), 0);
}

static void test_open(struct fs *fs)
{
	struct stat st;

	CHECK_EQ(namei_mknod(fs, EXT2_ROOT_INO, "plain", S_IFREG | 0644, 0,
			     &cred, &st), 0);
	CHECK_EQ(dir_open(fs, st.st_ino), -ENOTDIR);
	CHECK_EQ(dir_read(fs, st.st_ino, 0, 0, unit_list_fill, &L), -ENOTDIR);
	CHECK_EQ(dir_open(fs, EXT2_ROOT_INO), 0);
	CHECK_EQ(namei_unlink(fs, EXT2_ROOT_INO, "plain"), 0);
}

static void run(const char *name, const char *mkfs_args, int inline_fs)
{
	const char *img;
	struct fs *fs;

	printf("== %s (%s)\n", name, mkfs_args);
	img = unit_mkfs(name, mkfs_args, 65536);
	fs = unit_open(img, 0);
	test_open(fs);
	test_big_listing(fs);
	test_inline_growth(fs, inline_fs);
	CHECK_EQ(fs_close(fs), 0);
	unit_fsck(img);
}

/* An htree directory made by the kernel, then changed through the core. */
static void test_kernel_htree(void)
{
	const char *p = "kfile_";
	const char *q = "core_added_name_";
	char mnt[512];
	const char *img;
	struct fs *fs;
	ext2_ino_t d;
	int i, bad = 0;

	printf("== kernel htree\n");
	img = unit_mkfs("htree.img", "-t ext4 -b 4096", 131072);
	snprintf(mnt, sizeof(mnt), "%s/mnt", unit_scratch());
	unit_run("mkdir -p %s", mnt);
	if (unit_run("mount -o loop '%s' %s 2>/dev/null", img, mnt)) {
		unit_skip("kernel htree: cannot loop-mount");
		return;
	}
	unit_run("mkdir %s/big && cd %s/big && seq -f '%s%%.0f' 0 19999 | "
		 "xargs touch", mnt, mnt, p);
	unit_run("umount %s", mnt);
	unit_fsck(img);

	fs = unit_open(img, 0);
	CHECK_EQ(namei_lookup(fs, EXT2_ROOT_INO, "big", &d, NULL), 0);
	CHECK(inode_flags(fs, d) & EXT2_INDEX_FL);

	unit_lister_init(&L, p, 7, 0);
	CHECK_EQ(unit_list_rest(fs, d, &L), 0);
	CHECK_EQ(unit_count_seen(&L, 0, 20000, 1), 20000);
	CHECK_EQ(L.dot + L.dotdot, 2);
	CHECK_EQ(L.other, 0);

	for (i = 0; i < 3000; i++)
		bad += unit_mkf(fs, d, q, i) != 0;
	CHECK_EQ(bad, 0);
	for (i = 0; i < 20000; i += 5)
		bad += unit_rmf(fs, d, p, i) != 0;
	CHECK_EQ(bad, 0);
	for (i = 1; i < 1000; i += 10) {
		char a[64], b[64];

		snprintf(a, sizeof(a), "%s%d", p, i);
		snprintf(b, sizeof(b), "%s%d", q, 10000 + i);
		bad += namei_rename(fs, d, a, d, b, 0) != 0;
	}
	CHECK_EQ(bad, 0);
	CHECK(inode_flags(fs, d) & EXT2_INDEX_FL);
	for (i = 0; i < 3000; i += 7) {
		char a[64];
		ext2_ino_t ino;

		snprintf(a, sizeof(a), "%s%d", q, i);
		bad += namei_lookup(fs, d, a, &ino, NULL) != 0;
	}
	CHECK_EQ(bad, 0);
	unit_lister_init(&L, q, 1000, 0);
	CHECK_EQ(unit_list_rest(fs, d, &L), 0);
	CHECK_EQ(unit_count_seen(&L, 0, 3000, 1), 3000);
	CHECK_EQ(unit_count_seen(&L, 10000, 11000, 1), 100);
	CHECK_EQ(L.other, 20000 - 4000 - 100);
	CHECK_EQ(fs_close(fs), 0);
	unit_fsck(img);

	/* The kernel's hashed lookups must find every name we added. */
	if (unit_run("mount -o loop '%s' %s", img, mnt)) {
		CHECK(!"remount by the kernel");
		return;
	}
	CHECK_EQ(unit_run("test $(ls %s/big | wc -l) = %d", mnt,
			  20000 - 4000 + 3000), 0);
	CHECK_EQ(unit_run("cd %s/big && for i in $(seq 0 2999); do "
			  "[ -e %s$i ] || echo missing %s$i; done | "
			  "(! grep -q .)", mnt, q, q), 0);
	CHECK_EQ(unit_run("cd %s/big && for i in $(seq 1 10 999); do "
			  "[ -e %s$((10000 + i)) ] && [ ! -e %s$i ] || "
			  "echo bad $i; done | (! grep -q .)", mnt, q, p), 0);
	CHECK_EQ(unit_run("cd %s/big && for i in $(seq 0 5 19999); do "
			  "[ ! -e %s$i ] || echo present %s$i; done | "
			  "(! grep -q .)", mnt, p, p), 0);
	unit_run("umount %s", mnt);
	unit_fsck(img);
}

/* Writes `len` bytes at byte `off` of block `blk` in the image. */
static void poke(const char *img, unsigned long long blk, unsigned bs,
		 unsigned off, const void *bytes, size_t len)
{
	FILE *f = fopen(img, "r+b");

	if (!f || fseeko(f, (off_t)blk * bs + off, SEEK_SET) ||
	    fwrite(bytes, 1, len, f) != len)
		printf("FAIL poke %s\n", img);
	if (f)
		fclose(f);
}

static unsigned long long dir_block(const char *img, const char *path)
{
	char cmd[1024];
	unsigned long long blk = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "debugfs -R 'bmap %s 0' '%s' 2>/dev/null",
		 path, img);
	p = popen(cmd, "r");
	if (p) {
		if (fscanf(p, "%llu", &blk) != 1)
			blk = 0;
		pclose(p);
	}
	return blk;
}

/* Damaged directories give errors, never a crash or a loop. */
static void test_damage(const char *name, const char *mkfs_args)
{
	/* structural: the block cannot be parsed, so no insert either. */
	static const struct {
		const char *what;
		unsigned off;
		unsigned char bytes[4];
		size_t len;
		int structural;
	} cases[] = {
		{ "rec_len not a multiple of 4", 16, { 0x0e, 0x00 }, 2, 1 },
		{ "rec_len zero", 16, { 0x00, 0x00 }, 2, 1 },
		{ "rec_len past the block", 16, { 0xf0, 0xff }, 2, 1 },
		{ "name_len past rec_len", 24 + 6, { 0xff }, 1, 1 },
		{ "inode out of range", 24, { 0xf0, 0xff, 0xff, 0xff }, 4, 0 },
	};
	unsigned i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned long long blk;
		const char *img;
		struct fs *fs;
		ext2_ino_t d, ino;
		int ret, j;

		printf("== damage %s: %s\n", name, cases[i].what);
		img = unit_mkfs(name, mkfs_args, 8192);
		fs = unit_open(img, 0);
		d = unit_mkd(fs, EXT2_ROOT_INO, "d");
		for (j = 0; j < 5; j++)
			unit_mkf(fs, d, "x", j);
		fs_close(fs);
		blk = dir_block(img, "/d");
		CHECK(blk != 0);
		poke(img, blk, 1024, cases[i].off, cases[i].bytes,
		     cases[i].len);

		fs = unit_open(img, 0);
		unit_lister_init(&L, "x", 1000, 0);
		ret = unit_list_rest(fs, d, &L);
		CHECK(ret == -EFSCORRUPTED || ret == -EIO);
		/* x0 is the entry the damage hits. */
		ret = namei_lookup(fs, d, "x0", &ino, NULL);
		CHECK(ret == -EFSCORRUPTED || ret == -EIO);
		ret = unit_mkf(fs, d, "y", 0);
		CHECK(ret < 0 || !cases[i].structural);
		ret = namei_rmdir(fs, EXT2_ROOT_INO, "d");
		CHECK(ret < 0 && ret != -ENOENT);
		fs_close(fs);
	}
}

/*
 * A directory block changed behind the core's back while mounted (here
 * through the io channel, bypassing the checksum) is verified again: the
 * record of blocks known to be good holds their bytes, not just their
 * numbers.
 */
static void test_changed_block(void)
{
	const char *img;
	struct fs *fs;
	ext2_ino_t d, ino;
	blk64_t pblk = 0;
	char *buf, *hit;
	int j;

	printf("== checksummed block changed while mounted\n");
	img = unit_mkfs("changed.img", "-t ext4 -b 1024 -O metadata_csum",
			8192);
	fs = unit_open(img, 0);
	d = unit_mkd(fs, EXT2_ROOT_INO, "d");
	for (j = 0; j < 5; j++)
		unit_mkf(fs, d, "x", j);
	CHECK_EQ(namei_lookup(fs, d, "x1", &ino, NULL), 0);
	buf = malloc(1024);
	fs_lock(fs);
	CHECK_EQ(ext2fs_bmap2(fs->e2, d, NULL, NULL, 0, 0, NULL, &pblk), 0);
	CHECK_EQ(io_channel_read_blk64(fs->e2->io, pblk, 1, buf), 0);
	hit = memmem(buf, 1024, "x1", 2);
	CHECK(hit != NULL);
	if (hit)
		*hit = 'z';
	CHECK_EQ(io_channel_write_blk64(fs->e2->io, pblk, 1, buf), 0);
	fs_unlock(fs);
	free(buf);
	CHECK_EQ(namei_lookup(fs, d, "z1", &ino, NULL), -EFSCORRUPTED);
	CHECK_EQ(namei_lookup(fs, d, "x0", &ino, NULL), -EFSCORRUPTED);
	fs_close(fs);
}

/*
 * A damaged htree index (no checksums to catch it): lookups fall back to
 * scanning, as the kernel does, and nothing crashes.
 */
static void test_bad_htree(void)
{
	static const struct {
		const char *what;
		unsigned off;
		unsigned char bytes[4];
		size_t len;
	} cases[] = {
		{ "count zero", 34, { 0, 0 }, 2 },
		{ "count above limit", 34, { 0xff, 0x7f }, 2 },
		{ "too many levels", 30, { 7 }, 1 },
		{ "unknown hash", 28, { 9 }, 1 },
		{ "leaf beyond the end", 44, { 0xff, 0xff, 0xff, 0x0f }, 4 },
		{ "leaf is the root", 44, { 0, 0, 0, 0 }, 4 },
	};
	char mnt[512], base[600];
	const char *img;
	unsigned i;

	printf("== damaged htree\n");
	img = unit_mkfs("dx.img", "-t ext4 -b 4096 -O ^metadata_csum", 32768);
	snprintf(mnt, sizeof(mnt), "%s/mnt", unit_scratch());
	unit_run("mkdir -p %s", mnt);
	if (unit_run("mount -o loop '%s' %s 2>/dev/null", img, mnt)) {
		unit_skip("damaged htree: cannot loop-mount");
		return;
	}
	unit_run("mkdir %s/big && cd %s/big && seq -f 'k%%.0f' 0 2999 | "
		 "xargs touch", mnt, mnt);
	unit_run("umount %s", mnt);
	snprintf(base, sizeof(base), "%s.orig", img);
	unit_run("cp '%s' '%s'", img, base);

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned long long blk;
		struct fs *fs;
		ext2_ino_t d, ino;
		int j, bad = 0;

		printf("== damaged htree: %s\n", cases[i].what);
		unit_run("cp '%s' '%s'", base, img);
		blk = dir_block(img, "/big");
		CHECK(blk != 0);
		poke(img, blk, 4096, cases[i].off, cases[i].bytes,
		     cases[i].len);
		fs = unit_open(img, 0);
		CHECK_EQ(namei_lookup(fs, EXT2_ROOT_INO, "big", &d, NULL), 0);
		CHECK(inode_flags(fs, d) & EXT2_INDEX_FL);
		for (j = 0; j < 3000; j += 37) {
			char n[32];

			snprintf(n, sizeof(n), "k%d", j);
			bad += namei_lookup(fs, d, n, &ino, NULL) != 0;
		}
		CHECK_EQ(bad, 0);
		CHECK_EQ(namei_lookup(fs, d, "absent", &ino, NULL), -ENOENT);
		CHECK_EQ(namei_unlink(fs, d, "k5"), 0);
		unit_lister_init(&L, "k", 1000, 0);
		CHECK_EQ(unit_list_rest(fs, d, &L), 0);
		CHECK_EQ(unit_count_seen(&L, 0, 3000, 1), 2999);
		/* Inserting goes through libext2fs, which may refuse. */
		unit_mkf(fs, d, "new", 0);
		fs_close(fs);
	}
}

/* A directory whose size claims far more blocks than it holds. */
static void test_size_lie(void)
{
	const char *img;
	struct fs *fs;
	ext2_ino_t d;

	printf("== damage: directory size beyond its blocks\n");
	img = unit_mkfs("lie.img", "-t ext4 -b 1024 -O ^metadata_csum", 8192);
	fs = unit_open(img, 0);
	d = unit_mkd(fs, EXT2_ROOT_INO, "d");
	fs_close(fs);
	unit_run("debugfs -w -R 'sif /d size 0x7fffffff' '%s' >/dev/null 2>&1",
		 img);
	fs = unit_open(img, 0);
	unit_lister_init(&L, "x", 1000, 0);
	CHECK_EQ(unit_list_rest(fs, d, &L), -EFSCORRUPTED);
	fs_close(fs);
}

int main(void)
{
	cred = unit_root();
	run("ext4.img", "-t ext4", 0);
	run("inline.img", "-t ext4 -O inline_data -I 256", 1);
	run("ext2.img", "-t ext2 -b 1024", 0);
	run("csum.img", "-t ext4 -O 64bit,metadata_csum", 0);
	test_kernel_htree();
	test_damage("plain.img", "-t ext4 -b 1024 -O ^metadata_csum");
	test_damage("dcsum.img", "-t ext4 -b 1024 -O metadata_csum");
	test_size_lie();
	test_bad_htree();
	test_changed_block();
	return unit_done();
}
