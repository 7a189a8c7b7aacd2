/*
 * Unit tests of what the core gives the front-ends for their fast paths:
 * pinned reads by reference (iomap_splice.c), the allocation goal that
 * keeps out-of-order writes in file order (iomap_goal.c), and the
 * filesystem-wide answers of fs_info.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>

#include "unit.h"

static const struct fs_cred root = { 0, 0, 022, NULL, NULL };

static ext2_ino_t new_file(struct fs *fs, const char *name)
{
	struct stat st;
	int ret;

	ret = namei_mknod(fs, EXT2_ROOT_INO, name, S_IFREG | 0644, 0, &root,
			  &st);
	CHECK_EQ(ret, 0);
	return ret ? 0 : st.st_ino;
}

static void fill(char *buf, size_t len, unsigned seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (char)(seed + i * 7 + i / 4096);
}

/* The bytes a pinned read describes, gathered the way a splice would. */
static ssize_t gather(struct fs *fs, const struct fs_data_seg *segs,
		      unsigned n, char *out)
{
	size_t done = 0;
	unsigned i;

	for (i = 0; i < n; i++) {
		if (segs[i].zero) {
			memset(out + done, 0, segs[i].len);
		} else if (pread(fs_data_fd(fs), out + done, segs[i].len,
				 segs[i].addr) != (ssize_t)segs[i].len) {
			return -1;
		}
		done += segs[i].len;
	}
	return done;
}

/*
 * Pinned reads give what was written, and what file_read gives, holes and
 * unwritten ranges included.
 */
static void test_pin_equals_read(void)
{
	const char *img = unit_mkfs("pin.img", "-t ext4 -b 4096", 65536);
	static char data[1 << 20], a[1 << 20], b[1 << 20];
	static char model[(2 << 20) + 4096]; /* the file as written */
	const off_t size = 800000 + 123457;
	static const struct { off_t off, len; } reads[] = {
		{ 0, 1 << 20 }, { 4096, 65536 }, { 100000, 300000 },
		{ 700000, 1 << 20 }, { 900000, 4096 }, { 2 << 20, 4096 },
	};
	struct fs_data_seg segs[32];
	struct fs_data_pin *pin;
	struct fs *fs = unit_open(img, 0);
	ext2_ino_t ino = new_file(fs, "f");
	unsigned n, i;
	ssize_t got, want;

	fill(data, sizeof(data), 1);
	CHECK_EQ(file_write(fs, ino, data, 100000, 0, 0, &root), 100000);
	CHECK_EQ(file_write(fs, ino, data, 5000, 300000, 0, &root), 5000);
	CHECK_EQ(file_fallocate(fs, ino, FALLOC_FL_KEEP_SIZE, 500000, 200000),
		 0);
	CHECK_EQ(file_write(fs, ino, data, 123457, 800000, 0, &root), 123457);
	memcpy(model, data, 100000);
	memcpy(model + 300000, data, 5000);
	memcpy(model + 800000, data, 123457);
	for (i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
		off_t end = reads[i].off + reads[i].len;

		want = (end < size ? end : size) - reads[i].off;
		if (want < 0)
			want = 0;
		CHECK_EQ(file_read(fs, ino, a, reads[i].len, reads[i].off),
			 want);
		got = file_read_pin(fs, ino, reads[i].off, reads[i].len, segs,
				    32, &n, &pin);
		CHECK_EQ(got, want);
		if (got > 0 && got == want) {
			CHECK_EQ(gather(fs, segs, n, b), got);
			CHECK(!memcmp(b, model + reads[i].off, got));
			CHECK(!memcmp(a, b, got));
		}
		fs_data_unpin(fs, pin, segs, n);
	}
	/* One segment cannot cover data, a hole and data again. */
	CHECK_EQ(file_read_pin(fs, ino, 0, 400000, segs, 1, &n, &pin), -E2BIG);
	CHECK(pin == NULL);
	/* Pins are shared: a second reader is not shut out. */
	CHECK(file_read_pin(fs, ino, 0, 4096, segs, 32, &n, &pin) > 0);
	CHECK_EQ(file_read(fs, ino, a, 4096, 0), 4096);
	fs_data_unpin(fs, pin, segs, n);
	CHECK_EQ(fs_close(fs), 0);
	unit_fsck(img);
}

/* Files the executor does not serve are left to file_read. */
static void test_pin_declines(void)
{
	const char *img = unit_mkfs("inl.img", "-t ext4 -O inline_data",
				    16384);
	struct fs_data_seg segs[4];
	struct fs_data_pin *pin;
	struct fs *fs = unit_open(img, 0);
	ext2_ino_t ino = new_file(fs, "small");
	unsigned n;

	CHECK_EQ(file_write(fs, ino, "hello", 5, 0, 0, &root), 5);
	CHECK_EQ(file_read_pin(fs, ino, 0, 5, segs, 4, &n, &pin),
		 -EOPNOTSUPP);
	CHECK_EQ(file_read_pin(fs, EXT2_ROOT_INO, 0, 5, segs, 4, &n, &pin),
		 -EOPNOTSUPP);
	CHECK_EQ(fs_close(fs), 0);
	unit_fsck(img);
}

/* The physical block of logical block lblk of /name, through debugfs. */
static long long phys_block(const char *img, const char *name, long lblk)
{
	char cmd[1024], line[256];
	long long pblk = -1;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "debugfs -R 'bmap /%s %ld' '%s' 2>/dev/null",
		 name, lblk, img);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	if (fgets(line, sizeof(line), p))
		pblk = atoll(line);
	pclose(p);
	return pblk;
}

/* A later part of a file written first leaves room for the earlier one. */
static void test_goal_order(void)
{
	const char *img = unit_mkfs("goal.img", "-t ext4 -b 4096", 65536);
	static char buf[1 << 20];
	struct fs *fs = unit_open(img, 0);
	ext2_ino_t ino = new_file(fs, "f");
	long long p0, p256;

	fill(buf, sizeof(buf), 3);
	CHECK_EQ(file_write(fs, ino, buf, sizeof(buf), 1 << 20, 0, &root),
		 1 << 20);
	CHECK_EQ(file_write(fs, ino, buf, sizeof(buf), 0, 0, &root), 1 << 20);
	CHECK_EQ(fs_close(fs), 0);
	p0 = phys_block(img, "f", 0);
	p256 = phys_block(img, "f", 256);
	CHECK(p0 > 0);
	CHECK_EQ(p0 + 256, p256);
	unit_fsck(img);
}

static void test_info(void)
{
	char big[512], small[512];
	struct fs *fs;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	/* unit_mkfs returns a static buffer. */
	snprintf(big, sizeof(big), "%s",
		 unit_mkfs("big.img", "-t ext4 -I 256", 16384));
	snprintf(small, sizeof(small), "%s",
		 unit_mkfs("small.img", "-t ext4 -I 128", 16384));
	fs = unit_open(big, 0);
	CHECK_EQ(fs_time_gran(fs), 1);
	f = open_memstream(&text, &len);
	fs_print_stats(fs, f);
	fclose(f);
	CHECK(text && !strncmp(text, "cache: ", 7));
	free(text);
	CHECK_EQ(fs_close(fs), 0);
	fs = unit_open(small, 1);
	CHECK_EQ(fs_time_gran(fs), 1000000000);
	CHECK_EQ(fs_close(fs), 0);
	unit_fsck(big);
	unit_fsck(small);
}

int main(void)
{
	test_pin_equals_read();
	test_pin_declines();
	test_goal_order();
	test_info();
	return unit_done();
}
