/*
 * Unit tests of fallocate COLLAPSE_RANGE and INSERT_RANGE (iomap_shift.c),
 * with the kernel's ext4 as the reference: every operation runs through
 * the core on one image and through a loop mount of a copy, and the
 * return codes, sizes and bytes must be the same. Bad arguments of every
 * kind, extent- and block-mapped files, a file of 1500 extents (a tree two
 * levels below the inode), unwritten extents (which must stay unwritten),
 * and seeded random runs of writes, truncates and every fallocate mode;
 * in the iomap and the legacy path. Skipped (77) where no loop mount can
 * be made.
 */
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>

#include "unit.h"
#include "core/iomap.h"

#define FILE_MAX (4u << 20)
#define REPORT_MAX 5

/* The same file twice: through the core, and on a kernel ext4 mount. */
struct pair {
	struct fs *fs;
	ext2_ino_t ino;
	int fd;
	char img[512], kimg[520], mnt[512];
	unsigned long mismatches;
};

static unsigned char core_buf[FILE_MAX], kern_buf[FILE_MAX], data[FILE_MAX];
/* The kernel mount in use, for the exit handler: none is left behind. */
static char mounted[512];

static void umount_left(void)
{
	if (mounted[0])
		unit_run("umount -l '%s'", mounted);
}

static void mismatch(struct pair *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void mismatch(struct pair *p, const char *fmt, ...)
{
	va_list ap;

	if (++p->mismatches > REPORT_MAX)
		return;
	printf("     ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/*
 * A fresh filesystem (mke2fs args), copied for the kernel and mounted;
 * the core opens the original. -1 if the kernel mount failed.
 */
static int pair_open(struct pair *p, const char *name, const char *args)
{
	struct fs_cred cred = unit_root();
	char path[600];
	struct stat st;

	memset(p, 0, sizeof(*p));
	snprintf(p->img, sizeof(p->img), "%s", unit_mkfs(name, args, 65536));
	snprintf(p->kimg, sizeof(p->kimg), "%s.kernel", p->img);
	snprintf(p->mnt, sizeof(p->mnt), "%s/mnt", unit_scratch());
	if (unit_run("cp --sparse=always '%s' '%s' && mkdir -p '%s' && "
		     "mount -t ext4 -o loop '%s' '%s' 2>/dev/null",
		     p->img, p->kimg, p->mnt, p->kimg, p->mnt))
		return -1;
	snprintf(mounted, sizeof(mounted), "%s", p->mnt);
	p->fs = unit_open(p->img, 0);
	if (namei_mknod(p->fs, EXT2_ROOT_INO, "f", S_IFREG | 0644, 0, &cred,
			&st)) {
		printf("FAIL namei_mknod f\n");
		exit(1);
	}
	p->ino = st.st_ino;
	snprintf(path, sizeof(path), "%s/f", p->mnt);
	p->fd = open(path, O_RDWR | O_CREAT, 0644);
	if (p->fd < 0) {
		printf("FAIL open %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return 0;
}

/* Unmounts, closes and checks both images with e2fsck. */
static void pair_close(struct pair *p)
{
	close(p->fd);
	CHECK_EQ(fs_close(p->fs), 0);
	CHECK_EQ(unit_run("umount '%s'", p->mnt), 0);
	mounted[0] = 0;
	unit_fsck(p->img);
	unit_fsck(p->kimg);
}

static int kret(int r)
{
	return r < 0 ? -errno : r;
}

static uint64_t core_size(struct pair *p)
{
	struct stat st;

	return inode_getattr(p->fs, p->ino, &st) ? ~0ULL : (uint64_t)st.st_size;
}

static uint64_t kern_size(struct pair *p)
{
	struct stat st;

	return fstat(p->fd, &st) ? ~0ULL : (uint64_t)st.st_size;
}

/* Bytes that depend on where and when they were written; never zero. */
static void fill(uint64_t off, uint64_t len, unsigned seed)
{
	uint64_t i;

	for (i = 0; i < len; i++)
		data[i] = (seed * 131 + off + i) % 251 + 1;
}

static void do_write(struct pair *p, uint64_t off, uint64_t len,
		     unsigned seed)
{
	struct fs_cred cred = unit_root();
	ssize_t c, k;

	fill(off, len, seed);
	c = file_write(p->fs, p->ino, data, len, off, 0, &cred);
	k = pwrite(p->fd, data, len, off);
	if (c != (ssize_t)len || k != (ssize_t)len)
		mismatch(p, "write %llu at %llu: core %zd, kernel %zd",
			 (unsigned long long)len, (unsigned long long)off, c,
			 k);
}

static void do_truncate(struct pair *p, uint64_t size)
{
	struct fs_cred cred = unit_root();
	struct stat st = { .st_size = size };
	int c, k;

	c = inode_setattr(p->fs, p->ino, &st, FS_SET_SIZE, &cred, NULL);
	k = kret(ftruncate(p->fd, size));
	if (c != k)
		mismatch(p, "truncate %llu: core %d, kernel %d",
			 (unsigned long long)size, c, k);
}

/* fallocate on both; a different result or size is a mismatch. */
static int do_falloc(struct pair *p, int mode, long long off, long long len)
{
	int c, k;

	c = file_fallocate(p->fs, p->ino, mode, off, len);
	k = kret(fallocate(p->fd, mode, off, len));
	if (c != k)
		mismatch(p, "fallocate mode %#x %lld at %lld: core %d (%s), kernel %d (%s)",
			 mode, len, off, c, strerror(-c), k, strerror(-k));
	if (core_size(p) != kern_size(p))
		mismatch(p, "fallocate mode %#x %lld at %lld: size core %llu, kernel %llu",
			 mode, len, off, (unsigned long long)core_size(p),
			 (unsigned long long)kern_size(p));
	return c;
}

/* The file from off to EOF, both ways, byte for byte. */
static void compare_from(struct pair *p, uint64_t off, const char *when)
{
	uint64_t size = core_size(p), len, done, i;
	ssize_t n;

	if (size != kern_size(p) || size > FILE_MAX || off > size) {
		mismatch(p, "%s: size core %llu, kernel %llu", when,
			 (unsigned long long)size,
			 (unsigned long long)kern_size(p));
		return;
	}
	len = size - off;
	for (done = 0; done < len; done += n) {
		n = file_read(p->fs, p->ino, core_buf + done, len - done,
			      off + done);
		if (n <= 0)
			break;
	}
	if (pread(p->fd, kern_buf, len, off) != (ssize_t)len || done != len) {
		mismatch(p, "%s: short read", when);
		return;
	}
	for (i = 0; i < len && core_buf[i] == kern_buf[i]; i++)
		;
	if (i < len)
		mismatch(p, "%s: byte %llu: core %#x, kernel %#x", when,
			 (unsigned long long)(off + i), core_buf[i],
			 kern_buf[i]);
}

static void compare(struct pair *p, const char *when)
{
	compare_from(p, 0, when);
}

/* Every kind of bad argument, on a 64 KiB file of 4 KiB blocks. */
static void test_errors(const char *name, const char *args)
{
	static const struct {
		int mode;
		long long off, len;
	} cases[] = {
		{ FALLOC_FL_COLLAPSE_RANGE, 1000, 4096 },
		{ FALLOC_FL_COLLAPSE_RANGE, 4096, 1000 },
		{ FALLOC_FL_COLLAPSE_RANGE, 4096, 61440 },   /* to EOF */
		{ FALLOC_FL_COLLAPSE_RANGE, 4096, 65536 },   /* past EOF */
		{ FALLOC_FL_COLLAPSE_RANGE, 131072, 4096 },
		{ FALLOC_FL_COLLAPSE_RANGE, 1000, 1 << 20 },
		{ FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_KEEP_SIZE, 4096, 4096 },
		{ FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_PUNCH_HOLE, 4096, 4096 },
		{ FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE, 4096, 4096 },
		{ FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_ZERO_RANGE, 4096, 4096 },
		{ FALLOC_FL_COLLAPSE_RANGE, 4096, 0 },
		{ FALLOC_FL_COLLAPSE_RANGE, -4096, 4096 },
		{ FALLOC_FL_INSERT_RANGE, 1000, 4096 },
		{ FALLOC_FL_INSERT_RANGE, 4096, 1000 },
		{ FALLOC_FL_INSERT_RANGE, 65536, 4096 },      /* at EOF */
		{ FALLOC_FL_INSERT_RANGE, 131072, 4096 },
		{ FALLOC_FL_INSERT_RANGE | FALLOC_FL_KEEP_SIZE, 4096, 4096 },
		{ FALLOC_FL_INSERT_RANGE, 4096, (1LL << 44) - 8192 },
		{ FALLOC_FL_INSERT_RANGE, 4096, 1LL << 44 },
		{ FALLOC_FL_INSERT_RANGE, 4096, 0 },
		{ FALLOC_FL_INSERT_RANGE, -4096, 4096 },
		{ FALLOC_FL_COLLAPSE_RANGE, 4096, 8192 },     /* good */
		{ FALLOC_FL_INSERT_RANGE, 8192, 12288 },      /* good */
		{ FALLOC_FL_COLLAPSE_RANGE, 0, 4096 },        /* good */
	};
	struct pair p;
	unsigned i;

	printf("== errors, %s\n", name);
	if (pair_open(&p, name, args) < 0) {
		printf("SKIP no loop mount of ext4\n");
		exit(77);
	}
	do_write(&p, 0, 65536, 1);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		do_falloc(&p, cases[i].mode, cases[i].off, cases[i].len);
	compare(&p, "after the error cases");
	/* A sparse 8 TiB: the size limit, not the last extent, says EFBIG. */
	do_truncate(&p, 1ULL << 43);
	do_falloc(&p, FALLOC_FL_INSERT_RANGE, 4096, 1ULL << 43);
	do_falloc(&p, FALLOC_FL_INSERT_RANGE, 4096, 1ULL << 42);
	do_falloc(&p, FALLOC_FL_COLLAPSE_RANGE, 8192, 3ULL << 42);
	do_truncate(&p, 65536);
	compare(&p, "after the sparse 8 TiB");
	CHECK_EQ(p.mismatches, 0);
	pair_close(&p);
}

/*
 * 1500 one-block extents (every other block written) on 1 KiB blocks: a
 * tree two index levels deep. Collapses and inserts across many leaves,
 * inside one extent, at block 0, over unwritten extents and with
 * preallocated blocks past EOF.
 */
static void test_deep(void)
{
	struct pair p;
	/* Where the unwritten extent made at 3100 KiB is after the shifts. */
	uint64_t unwritten = (3100 - 1000 + 3 + 9 - 1 - 5 + 700) * 1024;
	struct ext2_inode_large inode;
	struct iomap map, last;
	uint64_t i;

	printf("== deep extent tree, iomap=%s\n",
	       unit_iomap == FS_IOMAP_OFF ? "off" : "auto");
	if (pair_open(&p, "deep.img", "-t ext4 -b 1024") < 0)
		exit(77);
	for (i = 0; i < 1500; i++)
		do_write(&p, i * 2048, 1024, i);
	compare(&p, "fragmented");
	fs_lock(p.fs);
	CHECK_EQ(fsi_read(p.fs, p.ino, &inode), 0);
	fs_unlock(p.fs);
	CHECK_EQ(((struct ext3_extent_header *)inode.i_block)->eh_depth, 2);
	/*
	 * The mapping cache holds the last extents now (blocks 2991-2998).
	 * An insert inside the last leaf changes neither the inode's root
	 * nor i_blocks, so only forgetting the cached mappings keeps a read
	 * of the moved blocks right.
	 */
	do_falloc(&p, FALLOC_FL_INSERT_RANGE, 2991 * 1024, 1024);
	compare_from(&p, 2992 * 1024, "tail after an insert near EOF");
	/* A long written extent, an unwritten one, preallocation past EOF. */
	do_write(&p, 3000 * 1024, 64 * 1024, 7);
	do_falloc(&p, 0, 3100 * 1024, 32 * 1024);
	do_falloc(&p, FALLOC_FL_KEEP_SIZE, 3200 * 1024, 16 * 1024);
	do_falloc(&p, FALLOC_FL_COLLAPSE_RANGE, 100 * 1024, 1000 * 1024);
	compare(&p, "collapse across leaves");
	do_falloc(&p, FALLOC_FL_INSERT_RANGE, 501 * 1024, 3 * 1024);
	do_falloc(&p, FALLOC_FL_INSERT_RANGE, 2020 * 1024, 9 * 1024);
	compare(&p, "inserts");
	do_falloc(&p, FALLOC_FL_COLLAPSE_RANGE, 0, 1024);
	do_falloc(&p, FALLOC_FL_COLLAPSE_RANGE, 2011 * 1024, 5 * 1024);
	do_falloc(&p, FALLOC_FL_INSERT_RANGE, 0, 700 * 1024);
	compare(&p, "at block 0, inside one extent");

	/* The unwritten extent (was at 3100 KiB) moved and stayed unwritten. */
	fs_lock(p.fs);
	CHECK_EQ(iomap_begin(p.fs, p.ino, unwritten, 1024, IOMAP_OP_REPORT,
			     &map), 0);
	CHECK_EQ(iomap_begin(p.fs, p.ino, unwritten + 31 * 1024, 1024,
			     IOMAP_OP_REPORT, &last), 0);
	fs_unlock(p.fs);
	CHECK_EQ(map.type, IOMAP_UNWRITTEN);
	CHECK_EQ(last.type, IOMAP_UNWRITTEN);
	/* Written after the shifts: the moved mappings must be the new ones. */
	for (i = 0; i < 40; i++)
		do_write(&p, i * 50 * 1024 + 512, 1024, 100 + i);
	compare(&p, "writes after the shifts");
	do_falloc(&p, FALLOC_FL_COLLAPSE_RANGE, 10 * 1024,
		  core_size(&p) / 1024 * 1024 - 20 * 1024);
	compare(&p, "collapse of nearly all");
	CHECK_EQ(p.mismatches, 0);
	pair_close(&p);
}

static uint64_t rnd_state;

static uint64_t rnd_below(uint64_t n)
{
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return n ? rnd_state * 0x2545f4914f6cdd1dULL % n : 0;
}

/* A block-aligned offset below limit, now and then one that is not. */
static uint64_t shift_off(uint64_t limit, uint64_t bs)
{
	uint64_t off = rnd_below(limit / bs + 1) * bs;

	return rnd_below(10) ? off : off + rnd_below(bs);
}

/*
 * Seeded random operations, the result of each compared, the whole file
 * every 25 operations and at the end.
 */
static void test_random(const char *name, const char *args, uint64_t bs,
			unsigned seed, unsigned ops)
{
	static const int modes[] = {
		0,
		FALLOC_FL_KEEP_SIZE,
		FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		FALLOC_FL_ZERO_RANGE,
		FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
	};
	unsigned long shifts = 0;
	struct pair p;
	unsigned i;

	printf("== random, %s, seed %u, iomap=%s\n", name, seed,
	       unit_iomap == FS_IOMAP_OFF ? "off" : "auto");
	if (pair_open(&p, name, args) < 0)
		exit(77);
	rnd_state = seed * 0x9e3779b97f4a7c15ULL + 1;
	for (i = 0; i < ops; i++) {
		uint64_t size = core_size(&p), off, len;
		unsigned r = rnd_below(100);

		if (r < 35) {
			off = rnd_below(FILE_MAX / 2);
			len = rnd_below(4) ? rnd_below(3 * bs) + 1 :
					     rnd_below(64 * bs) + 1;
			do_write(&p, off, len, i);
		} else if (r < 45) {
			do_truncate(&p, rnd_below(FILE_MAX / 2));
		} else if (r < 60) {
			off = rnd_below(FILE_MAX / 2);
			len = rnd_below(32 * bs) + 1;
			do_falloc(&p, modes[rnd_below(5)], off, len);
		} else if (r < 80) {
			off = shift_off(size, bs);
			len = shift_off(size / 2 + bs, bs) ?: bs;
			shifts += !do_falloc(&p, FALLOC_FL_COLLAPSE_RANGE, off,
					     len);
		} else {
			off = shift_off(size, bs);
			len = shift_off(FILE_MAX / 2 - size / 2, bs) ?: bs;
			if (size + len < FILE_MAX)
				shifts += !do_falloc(&p, FALLOC_FL_INSERT_RANGE,
						     off, len);
		}
		if (i % 25 == 24)
			compare(&p, "random run");
	}
	compare(&p, "end of the random run");
	printf("     %lu collapses and inserts done\n", shifts);
	CHECK(shifts >= ops / 10);
	CHECK_EQ(p.mismatches, 0);
	pair_close(&p);
}

int main(void)
{
	static const enum fs_iomap_mode paths[] = { FS_IOMAP_AUTO,
						    FS_IOMAP_OFF };
	unsigned i;

	if (geteuid()) {
		printf("SKIP needs root for loop mounts\n");
		return 77;
	}
	atexit(umount_left);
	test_errors("ext4.img", "-t ext4 -b 4096");
	test_errors("ext3.img", "-t ext3 -b 4096");
	for (i = 0; i < 2; i++) {
		unit_iomap = paths[i];
		test_deep();
		test_random("ext4.img", "-t ext4 -b 4096", 4096, 1 + i, 400);
		test_random("ext4k.img", "-t ext4 -b 1024", 1024, 3 + i, 400);
	}
	return unit_done();
}
