/*
 * Unit test of directory indexing (htree.c, with dir.c and namei.c): a
 * directory that outgrows its first block becomes an htree as in ext4.
 * 40,000 creates timed by quarter, 100,000 names looked up and half of them
 * removed, the root's layout, every hash algorithm signed and unsigned and
 * the default seed (each checked by e2fsck and by the kernel's own hashed
 * lookups), inline and 1k-block directories, the depth limit with 1k
 * blocks, filesystems without dir_index, and listings that give each entry
 * once, across the conversion too.
 */
#include <errno.h>
#include <sys/stat.h>
#include <time.h>

#include "unit.h"
#include "core/fs_internal.h"

#define MAXN 100000

static struct fs_cred cred;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void name_of(char *buf, size_t size, const char *prefix, int i)
{
	snprintf(buf, size, "%s%d", prefix, i);
}

static int look(struct fs *fs, ext2_ino_t dir, const char *prefix, int i)
{
	char name[300];
	ext2_ino_t ino;

	name_of(name, sizeof(name), prefix, i);
	return namei_lookup(fs, dir, name, &ino, NULL);
}

/* Creates prefix<from..to-1>; returns how many failed. */
static int mkrange(struct fs *fs, ext2_ino_t dir, const char *prefix,
		   int from, int to)
{
	int i, bad = 0;

	for (i = from; i < to; i++)
		bad += unit_mkf(fs, dir, prefix, i) != 0;
	return bad;
}

/* Looks prefix<from..to-1, step> up; returns how many were not found. */
static int lookrange(struct fs *fs, ext2_ino_t dir, const char *prefix,
		     int from, int to, int step)
{
	int i, bad = 0;

	for (i = from; i < to; i += step)
		bad += look(fs, dir, prefix, i) != 0;
	return bad;
}

static struct unit_lister L;

/*
 * Lists d `budget` entries a call: each of prefix<0..n) must come exactly
 * once, and nothing else but "." and "..", in growing cookie order.
 */
static void check_listing(struct fs *fs, ext2_ino_t d, const char *prefix,
			  int n, int budget)
{
	unit_lister_init(&L, prefix, budget, 0);
	CHECK_EQ(unit_list_rest(fs, d, &L), 0);
	CHECK_EQ(unit_count_seen(&L, 0, n, 1), n);
	CHECK_EQ(L.dup + L.other + L.bad_order, 0);
}

struct dir_view {
	__u32 flags;
	uint64_t size;
	int root_ok;
	unsigned hash_version, info_length, levels, limit, count;
};

/* The directory's flags and size, and its index root if it has one. */
static struct dir_view view(struct fs *fs, ext2_ino_t dir)
{
	struct dir_view v = { 0 };
	struct ext2_inode_large in;
	blk64_t pblk = 0;
	char *buf = NULL;

	fs_lock(fs);
	if (fsi_read(fs, dir, &in))
		goto out;
	v.flags = in.i_flags;
	v.size = fsi_size(&in);
	if (!(in.i_flags & EXT2_INDEX_FL) ||
	    ext2fs_get_mem(fs->e2->blocksize, &buf) ||
	    ext2fs_bmap2(fs->e2, dir, (struct ext2_inode *)&in, NULL, 0, 0,
			 NULL, &pblk) ||
	    ext2fs_read_dir_block4(fs->e2, pblk, buf, 0, dir))
		goto out;
	{
		struct ext2_dx_root_info *ri = (void *)(buf + 24);
		struct ext2_dx_countlimit *cl = (void *)(buf + 32);

		v.root_ok = !ri->reserved_zero && !ri->unused_flags;
		v.hash_version = ri->hash_version;
		v.info_length = ri->info_length;
		v.levels = ri->indirect_levels;
		v.limit = ext2fs_le16_to_cpu(cl->limit);
		v.count = ext2fs_le16_to_cpu(cl->count);
	}
out:
	ext2fs_free_mem(&buf);
	fs_unlock(fs);
	return v;
}

/* What a root of this fs must say in its limit field. */
static unsigned root_limit(struct fs *fs)
{
	unsigned room = fs_blocksize(fs) - 32;

	if (ext2fs_has_feature_metadata_csum(fs->e2->super))
		room -= sizeof(struct ext2_dx_tail);
	return room / sizeof(struct ext2_dx_entry);
}

/* Writes prefix<from..to-1, step> one a line to the scratch file `file`. */
static void write_names(const char *file, const char *prefix, int from,
			int to, int step)
{
	char path[512];
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "%s/%s", unit_scratch(), file);
	f = fopen(path, "w");
	if (!f) {
		printf("FAIL cannot write %s\n", path);
		exit(1);
	}
	for (i = from; i < to; i += step)
		fprintf(f, "%s%d\n", prefix, i);
	fclose(f);
}

static const char *mnt_dir(void)
{
	static char mnt[512];

	snprintf(mnt, sizeof(mnt), "%s/mnt", unit_scratch());
	unit_run("mkdir -p %s", mnt);
	return mnt;
}

/*
 * The kernel, mounting img read-only, must list `count` names in dir and
 * find every name in the scratch file `names` by its own hashed lookup.
 * Returns 0, or 1 (skip) if the image cannot be loop-mounted.
 */
static int kernel_check(const char *img, const char *dir, const char *names,
			int count)
{
	const char *mnt = mnt_dir();

	if (unit_run("mount -o loop,ro '%s' %s 2>/dev/null", img, mnt)) {
		unit_skip("kernel check: cannot loop-mount");
		return 1;
	}
	CHECK_EQ(unit_run("test $(ls -f %s/%s | wc -l) = %d", mnt, dir,
			  count + 2), 0);
	CHECK_EQ(unit_run("cd %s/%s && while read n; do [ -e \"$n\" ] || "
			  "echo \"missing $n\"; done < %s/%s | (! grep .)",
			  mnt, dir, unit_scratch(), names), 0);
	unit_run("umount %s", mnt);
	return 0;
}

/*
 * Closes fs and checks img: e2fsck, then the kernel lists the n entries of
 * /d and finds every step-th of prefix<0..n) by its own hashed lookup.
 */
static void close_and_check(struct fs *fs, const char *img,
			    const char *prefix, int n, int step)
{
	CHECK_EQ(fs_close(fs), 0);
	unit_fsck(img);
	write_names("d.names", prefix, 0, n, step);
	kernel_check(img, "d", "d.names", n);
}

/*
 * 40,000 creates timed by quarter, then 100,000 names (two index levels),
 * each looked up; half removed; listings; the kernel reads and changes the
 * result and the core reads what the kernel did.
 */
static void test_big(void)
{
	const char *p = "file_", *k = "kern_";
	const char *img;
	double q[4], t, worst = 0;
	struct dir_view v;
	struct fs *fs;
	ext2_ino_t d;
	int i, bad;

	printf("== 100,000 entries, ext4 4k metadata_csum\n");
	img = unit_mkfs("big.img", "-t ext4 -b 4096 -N 131072", 1048576);
	fs = unit_open(img, 0);
	d = unit_mkd(fs, EXT2_ROOT_INO, "big");
	CHECK(d != 0);

	bad = 0;
	for (i = 0; i < 4; i++) {
		t = now();
		bad += mkrange(fs, d, p, i * 10000, (i + 1) * 10000);
		q[i] = now() - t;
		if (q[i] > worst)
			worst = q[i];
	}
	printf("40,000 creates by quarter: %.2f s %.2f s %.2f s %.2f s\n",
	       q[0], q[1], q[2], q[3]);
	CHECK_EQ(bad, 0);
	/* Flat, not growing with the directory (noise allowed for). */
	CHECK(worst <= 3 * q[0] + 0.2);

	v = view(fs, d);
	CHECK(v.flags & EXT2_INDEX_FL);
	CHECK(v.root_ok);
	CHECK_EQ(v.hash_version, fs->e2->super->s_def_hash_version);
	CHECK_EQ(v.info_length, 8);
	CHECK_EQ(v.levels, 0);
	CHECK_EQ(v.limit, root_limit(fs));
	CHECK_EQ(v.count, v.size / fs_blocksize(fs) - 1);

	check_listing(fs, d, p, 40000, 7);
	CHECK_EQ(L.dot + L.dotdot, 2);

	t = now();
	bad = mkrange(fs, d, p, 40000, MAXN);
	printf("60,000 more creates: %.2f s\n", now() - t);
	CHECK_EQ(bad, 0);
	v = view(fs, d);
	/* Past one root's worth of leaves: one level of index nodes. */
	CHECK_EQ(v.levels, 1);

	t = now();
	CHECK_EQ(lookrange(fs, d, p, 0, MAXN, 1), 0);
	printf("100,000 lookups: %.2f s\n", now() - t);
	bad = 0;
	for (i = 0; i < 1000; i++)
		bad += look(fs, d, "absent_", i) != -ENOENT;
	CHECK_EQ(bad, 0);
	CHECK_EQ(unit_mkf(fs, d, p, 777), -EEXIST);

	t = now();
	bad = 0;
	for (i = 0; i < MAXN; i += 2)
		bad += unit_rmf(fs, d, p, i) != 0;
	printf("50,000 unlinks: %.2f s\n", now() - t);
	CHECK_EQ(bad, 0);
	CHECK_EQ(lookrange(fs, d, p, 1, MAXN, 2), 0);
	bad = 0;
	for (i = 0; i < MAXN; i += 2)
		bad += look(fs, d, p, i) != -ENOENT;
	CHECK_EQ(bad, 0);
	CHECK_EQ(unit_rmf(fs, d, p, 0), -ENOENT);

	unit_lister_init(&L, p, 50, 0);
	CHECK_EQ(unit_list_rest(fs, d, &L), 0);
	CHECK_EQ(unit_count_seen(&L, 0, MAXN, 1), MAXN / 2);
	CHECK_EQ(L.dup + L.other + L.bad_order, 0);
	for (bad = 0, i = 0; i < MAXN; i += 2)
		bad += L.seen[i];
	CHECK_EQ(bad, 0);

	/* Renames and links inside the index, and out of it. */
	bad = 0;
	for (i = 1; i < 200; i += 2) {
		char a[64], b[64];

		name_of(a, sizeof(a), p, i);
		name_of(b, sizeof(b), p, i - 1);
		bad += namei_rename(fs, d, a, d, b, 0) != 0;
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(lookrange(fs, d, p, 0, 200, 2), 0);
	bad = 0;
	for (i = 1; i < 200; i += 2)
		bad += look(fs, d, p, i) != -ENOENT;
	CHECK_EQ(bad, 0);
	{
		struct stat st;
		ext2_ino_t ino;

		CHECK_EQ(namei_lookup(fs, d, "file_201", &ino, NULL), 0);
		CHECK_EQ(namei_link(fs, ino, d, "a_second_name", &st), 0);
		CHECK_EQ(namei_rename(fs, d, "a_second_name", EXT2_ROOT_INO,
				      "moved_out", 0), 0);
		CHECK_EQ(namei_lookup(fs, EXT2_ROOT_INO, "moved_out", &ino,
				      NULL), 0);
	}
	CHECK_EQ(fs_close(fs), 0);
	unit_fsck(img);

	/* The kernel finds every name by its hash, then changes the dir. */
	/* Odd names from 201 on, and the even ones up to 198 renamed into. */
	write_names("big.names", p, 201, MAXN, 2);
	if (kernel_check(img, "big", "big.names", MAXN / 2))
		return;
	if (unit_run("mount -o loop '%s' %s", img, mnt_dir())) {
		CHECK(!"rw mount by the kernel");
		return;
	}
	CHECK_EQ(unit_run("cd %s/big && for i in $(seq 0 1999); do "
			  ": > %s$i; done && for i in $(seq 1001 4 3999); do "
			  "rm %s$i; done", mnt_dir(), k, p), 0);
	unit_run("umount %s", mnt_dir());
	unit_fsck(img);

	fs = unit_open(img, 0);
	CHECK_EQ(namei_lookup(fs, EXT2_ROOT_INO, "big", &d, NULL), 0);
	CHECK_EQ(lookrange(fs, d, k, 0, 2000, 1), 0);
	CHECK_EQ(lookrange(fs, d, p, 1003, 4000, 4), 0);
	CHECK_EQ(lookrange(fs, d, p, 0, 200, 2), 0);
	CHECK_EQ(look(fs, d, p, 1001), -ENOENT);
	CHECK_EQ(mkrange(fs, d, "after_kernel_", 0, 1000), 0);
	unit_lister_init(&L, k, 100, 0);
	CHECK_EQ(unit_list_rest(fs, d, &L), 0);
	CHECK_EQ(unit_count_seen(&L, 0, 2000, 1), 2000);
	CHECK_EQ(L.other, MAXN / 2 - 750 + 1000);
	CHECK_EQ(L.dup, 0);
	CHECK_EQ(fs_close(fs), 0);
	unit_fsck(img);
	write_names("after.names", "after_kernel_", 0, 1000, 1);
	kernel_check(img, "big", "after.names", MAXN / 2 - 750 + 2000 + 1000);
}

/*
 * Each hash algorithm, signed and unsigned (names with bytes >= 0x80,
 * where the two differ), and an all-zero seed (ext4's default one).
 */
static void test_hashes(void)
{
	static const struct {
		const char *alg;
		unsigned raw;
		int flags; /* s_flags: 1 signed, 2 unsigned */
		int null_seed;
	} var[] = {
		{ "legacy", EXT2_HASH_LEGACY, 1, 0 },
		{ "legacy", EXT2_HASH_LEGACY, 2, 0 },
		{ "half_md4", EXT2_HASH_HALF_MD4, 1, 0 },
		{ "half_md4", EXT2_HASH_HALF_MD4, 2, 0 },
		{ "tea", EXT2_HASH_TEA, 1, 0 },
		{ "tea", EXT2_HASH_TEA, 2, 0 },
		{ "half_md4", EXT2_HASH_HALF_MD4, 2, 1 },
	};
	const char *p = "\xc3\xa9t\xc3\xa9_\xe5\x90\x8d\xe5\x89\x8d_";
	unsigned i;

	for (i = 0; i < sizeof(var) / sizeof(var[0]); i++) {
		const char *img;
		struct dir_view v;
		struct fs *fs;
		ext2_ino_t d;

		printf("== hash %s, %s%s\n", var[i].alg,
		       var[i].flags == 2 ? "unsigned" : "signed",
		       var[i].null_seed ? ", zero seed" : "");
		img = unit_mkfs("hash.img", "-t ext4 -b 4096", 32768);
		unit_run("debugfs -w -R 'ssv def_hash_version %s' '%s' "
			 ">/dev/null 2>&1", var[i].alg, img);
		unit_run("debugfs -w -R 'ssv flags %d' '%s' >/dev/null 2>&1",
			 var[i].flags, img);
		if (var[i].null_seed)
			unit_run("debugfs -w -R 'ssv hash_seed null' '%s' "
				 ">/dev/null 2>&1", img);
		fs = unit_open(img, 0);
		CHECK_EQ(fs->e2->super->s_def_hash_version, var[i].raw);
		d = unit_mkd(fs, EXT2_ROOT_INO, "d");
		CHECK_EQ(mkrange(fs, d, p, 0, 3000), 0);
		v = view(fs, d);
		CHECK(v.flags & EXT2_INDEX_FL);
		CHECK_EQ(v.hash_version, var[i].raw);
		CHECK(v.count > 10);
		CHECK_EQ(lookrange(fs, d, p, 0, 3000, 1), 0);
		CHECK_EQ(lookrange(fs, d, p, 0, 3000, 3), 0);
		check_listing(fs, d, p, 3000, 13);
		close_and_check(fs, img, p, 3000, 1);
	}
}

/* Listings that span the conversions keep giving each entry once. */
static void test_conversions(void)
{
	const char *p = "n";
	const char *img;
	struct fs *fs;
	ext2_ino_t d;

	printf("== inline -> block -> htree in mid-listing\n");
	img = unit_mkfs("inline.img", "-t ext4 -b 4096 -O inline_data -I 256",
			 65536);
	fs = unit_open(img, 0);
	d = unit_mkd(fs, EXT2_ROOT_INO, "d");
	CHECK_EQ(mkrange(fs, d, p, 0, 3), 0);
	CHECK(view(fs, d).flags & EXT4_INLINE_DATA_FL);
	unit_lister_init(&L, p, 3, 0);
	CHECK_EQ(unit_list_step(fs, d, &L), 3);
	CHECK_EQ(mkrange(fs, d, p, 3, 60), 0);
	CHECK(!(view(fs, d).flags & EXT4_INLINE_DATA_FL));
	CHECK(!(view(fs, d).flags & EXT2_INDEX_FL));
	CHECK_EQ(unit_list_step(fs, d, &L), 3);
	CHECK_EQ(mkrange(fs, d, p, 60, 2000), 0);
	CHECK(view(fs, d).flags & EXT2_INDEX_FL);
	CHECK_EQ(unit_list_rest(fs, d, &L), 0);
	CHECK_EQ(L.dup + L.other + L.bad_order, 0);
	CHECK_EQ(unit_count_seen(&L, 0, 3, 1), 3);
	CHECK_EQ(L.dot + L.dotdot, 2);
	CHECK_EQ(lookrange(fs, d, p, 0, 2000, 1), 0);

	/* A one-block directory turning into an htree. */
	d = unit_mkd(fs, EXT2_ROOT_INO, "e");
	CHECK_EQ(mkrange(fs, d, p, 0, 150), 0);
	CHECK(!(view(fs, d).flags & EXT4_INLINE_DATA_FL));
	CHECK_EQ(view(fs, d).size, fs_blocksize(fs));
	unit_lister_init(&L, p, 20, 0);
	CHECK_EQ(unit_list_step(fs, d, &L), 20);
	CHECK_EQ(mkrange(fs, d, p, 150, 1500), 0);
	CHECK(view(fs, d).flags & EXT2_INDEX_FL);
	CHECK_EQ(unit_list_rest(fs, d, &L), 0);
	CHECK_EQ(L.dup + L.other + L.bad_order, 0);
	CHECK_EQ(unit_count_seen(&L, 0, 150, 1), 150);

	/* Emptied, an indexed directory can go. */
	CHECK_EQ(namei_rmdir(fs, EXT2_ROOT_INO, "e"), -ENOTEMPTY);
	{
		int i, bad = 0;

		for (i = 0; i < 1500; i++)
			bad += unit_rmf(fs, d, p, i) != 0;
		CHECK_EQ(bad, 0);
	}
	unit_lister_init(&L, p, 20, 0);
	CHECK_EQ(unit_list_rest(fs, d, &L), 0);
	CHECK_EQ(L.dot + L.dotdot, 2);
	CHECK_EQ(unit_count_seen(&L, 0, MAXN, 1), 0);
	CHECK_EQ(namei_rmdir(fs, EXT2_ROOT_INO, "e"), 0);
	CHECK_EQ(fs_close(fs), 0);
	unit_fsck(img);
}

/* Other layouts: 1k blocks with and without checksums, no dir_index. */
static void test_layouts(void)
{
	static const struct {
		const char *name, *args;
		int indexed;
	} lay[] = {
		{ "ext2 1k", "-t ext2 -b 1024", 1 },
		{ "ext4 1k metadata_csum", "-t ext4 -b 1024", 1 },
		{ "ext4 without dir_index", "-t ext4 -O ^dir_index", 0 },
	};
	const char *p = "entry_";
	unsigned i;

	for (i = 0; i < sizeof(lay) / sizeof(lay[0]); i++) {
		const char *img;
		struct dir_view v;
		struct fs *fs;
		ext2_ino_t d;

		printf("== %s\n", lay[i].name);
		img = unit_mkfs("layout.img", lay[i].args, 65536);
		fs = unit_open(img, 0);
		d = unit_mkd(fs, EXT2_ROOT_INO, "d");
		CHECK_EQ(mkrange(fs, d, p, 0, 4000), 0);
		v = view(fs, d);
		CHECK_EQ(!!(v.flags & EXT2_INDEX_FL), lay[i].indexed);
		CHECK(v.size > 4 * fs_blocksize(fs));
		if (lay[i].indexed) {
			CHECK_EQ(v.limit, root_limit(fs));
			CHECK_EQ(v.hash_version,
				 fs->e2->super->s_def_hash_version);
		}
		CHECK_EQ(lookrange(fs, d, p, 0, 4000, 1), 0);
		CHECK_EQ(look(fs, d, p, 4000), -ENOENT);
		check_listing(fs, d, p, 4000, 9);
		close_and_check(fs, img, p, 4000, 7);
	}
}

/*
 * 1k blocks and the longest names: two levels fill up (largedir is
 * needed for a third), and the create that finds no room gets ENOSPC
 * with the directory intact.
 */
static void test_depth_limit(void)
{
	const char *img;
	struct fs *fs;
	ext2_ino_t d, ino;
	char name[EXT2_NAME_LEN + 1];
	int i, ret = 0, bad = 0;

	printf("== depth limit, 1k blocks, 255-byte names\n");
	img = unit_mkfs("deep.img", "-t ext2 -b 1024 -N 40000", 131072);
	fs = unit_open(img, 0);
	d = unit_mkd(fs, EXT2_ROOT_INO, "d");
	memset(name, 'x', EXT2_NAME_LEN);
	name[EXT2_NAME_LEN] = '\0';
	for (i = 0; i < 40000; i++) {
		snprintf(name, sizeof(name), "%07d", i);
		name[7] = 'x';
		ret = namei_mknod(fs, d, name, S_IFREG | 0644, 0, &cred, NULL);
		if (ret)
			break;
	}
	printf("ENOSPC after %d entries of 255 bytes, index levels %u\n", i,
	       view(fs, d).levels + 1);
	CHECK_EQ(ret, -ENOSPC);
	CHECK(i > 15000);
	CHECK_EQ(view(fs, d).levels, 1);
	CHECK_EQ(namei_mknod(fs, d, name, S_IFREG | 0644, 0, &cred, NULL),
		 -ENOSPC);
	CHECK_EQ(namei_lookup(fs, d, name, &ino, NULL), -ENOENT);
	for (ret = 0; ret < i; ret++) {
		snprintf(name, sizeof(name), "%07d", ret);
		name[7] = 'x';
		bad += namei_lookup(fs, d, name, &ino, NULL) != 0;
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(fs_close(fs), 0);
	unit_fsck(img);
}

static blk64_t free_blocks(struct fs *fs)
{
	blk64_t n;

	fs_lock(fs);
	n = ext2fs_free_blocks_count(fs->e2->super);
	fs_unlock(fs);
	return n;
}

/*
 * A conversion that finds one free block where it needs two fails with
 * ENOSPC and leaves the directory linear, intact and holding no more
 * blocks; with two free it goes through.
 */
static void test_full(void)
{
	const char *p = "n";
	const char *img;
	struct fs *fs;
	ext2_ino_t d, f;
	unsigned fit;
	int i, last, bad = 0;
	char name[32];

	printf("== conversion on a full filesystem\n");
	img = unit_mkfs("full.img",
			"-t ext4 -b 4096 -O ^has_journal -m 0 -N 4096", 8192);
	fs = unit_open(img, 0);
	d = unit_mkd(fs, EXT2_ROOT_INO, "d");
	f = unit_mkd(fs, EXT2_ROOT_INO, "fill");
	/* 4-byte names: 12-byte entries after "." and ".." (and a tail). */
	fit = fs_blocksize(fs) - 24;
	if (ext2fs_has_feature_metadata_csum(fs->e2->super))
		fit -= sizeof(struct ext2_dir_entry_tail);
	fit /= 12;
	CHECK_EQ(mkrange(fs, d, p, 100, 100 + fit), 0);
	CHECK_EQ(view(fs, d).size, fs_blocksize(fs));
	for (last = 0; last < 4096; last++) {
		snprintf(name, sizeof(name), "s%d", last);
		if (!unit_mkd(fs, f, name))
			break;
	}
	CHECK(last > 1000);
	for (i = 0; i < last && free_blocks(fs) < 1; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		bad += namei_rmdir(fs, f, name) != 0;
	}
	CHECK_EQ(free_blocks(fs), 1);
	CHECK_EQ(unit_mkf(fs, d, p, 100 + fit), -ENOSPC);
	CHECK_EQ(free_blocks(fs), 1);
	CHECK(!(view(fs, d).flags & EXT2_INDEX_FL));
	CHECK_EQ(view(fs, d).size, fs_blocksize(fs));
	CHECK_EQ(lookrange(fs, d, p, 100, 100 + fit, 1), 0);
	snprintf(name, sizeof(name), "s%d", i);
	bad += namei_rmdir(fs, f, name) != 0;
	CHECK_EQ(bad, 0);
	CHECK_EQ(free_blocks(fs), 2);
	CHECK_EQ(unit_mkf(fs, d, p, 100 + fit), 0);
	CHECK(view(fs, d).flags & EXT2_INDEX_FL);
	CHECK_EQ(free_blocks(fs), 0);
	CHECK_EQ(lookrange(fs, d, p, 100, 101 + fit, 1), 0);
	CHECK_EQ(fs_close(fs), 0);
	unit_fsck(img);
}

int main(void)
{
	cred = unit_root();
	test_big();
	test_hashes();
	test_conversions();
	test_layouts();
	test_depth_limit();
	test_full();
	return unit_done();
}
