/*
 * Unit tests of iomap_uncache.c: data moved by the executor does not stay
 * in the image file's page cache as well (the FUSE page cache has it).
 * Pages are counted with mincore(2) on a mapping of the image.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "unit.h"

#define MIB	 (1u << 20)
#define FILE_MIB 48

static const struct fs_cred root = {0, 0, 022, NULL, NULL};

/* MiB of the image file in the page cache, in [from, to) if to > 0. */
static unsigned resident_in(const char *img, uint64_t from, uint64_t to)
{
	long page = sysconf(_SC_PAGESIZE);
	unsigned char *vec = NULL;
	unsigned long n = 0, i, pages;
	void *map = MAP_FAILED;
	struct stat st;
	int fd;

	fd = open(img, O_RDONLY);
	if (fd < 0 || fstat(fd, &st))
		goto out;
	pages = (st.st_size + page - 1) / page;
	map = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	vec = malloc(pages);
	if (map == MAP_FAILED || !vec || mincore(map, st.st_size, vec))
		goto out;
	for (i = from / page; i < pages && (!to || i < to / page); i++)
		n += vec[i] & 1;
out:
	if (map != MAP_FAILED)
		munmap(map, st.st_size);
	free(vec);
	if (fd >= 0)
		close(fd);
	return n * page / MIB;
}

static unsigned resident_mib(const char *img)
{
	return resident_in(img, 0, 0);
}

/* Starts from an image with nothing cached, as after a cold boot. */
static void drop_image_cache(const char *img)
{
	int fd = open(img, O_RDONLY);

	CHECK(fd >= 0);
	fdatasync(fd);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
}

static ext2_ino_t new_file(struct fs *fs, const char *name)
{
	struct stat st;

	CHECK_EQ(namei_mknod(fs, EXT2_ROOT_INO, name, S_IFREG | 0644, 0, &root,
			     &st),
		 0);
	return st.st_ino;
}

/*
 * Streaming writes keep at most the lag behind them cached, an fsync
 * drops the rest, and reads (copied or pinned) leave nothing behind.
 */
static void test_streaming(void)
{
	const char *img = unit_mkfs("stream.img", "-t ext4 -b 4096", 128 << 10);
	struct fs_data_seg segs[16];
	struct fs_data_pin *pin;
	static char buf[MIB];
	uint64_t lo, hi;
	struct fs *fs;
	ext2_ino_t ino;
	unsigned i, n;
	int same = 1;

	fs = unit_open(img, 0);
	ino = new_file(fs, "big");
	CHECK_EQ(fs_sync(fs), 0);
	drop_image_cache(img);
	for (i = 0; i < FILE_MIB; i++) {
		memset(buf, 'a' + i % 26, MIB);
		CHECK_EQ(
			file_write(fs, ino, buf, MIB, (off_t)i * MIB, 0, &root),
			MIB);
	}
	printf("after writes: %u MiB cached\n", resident_mib(img));
	CHECK(resident_mib(img) <= 24);
	CHECK_EQ(fs_sync(fs), 0);
	printf("after fsync: %u MiB cached\n", resident_mib(img));
	CHECK(resident_mib(img) <= 4);

	/*
	 * Where the file's data is: the host reads ahead of the reader (8 MiB
	 * and more), past the file's end, so only this range must be clear.
	 */
	CHECK_EQ(file_read_pin(fs, ino, 0, FILE_MIB * MIB, segs, 16, &n, &pin),
		 FILE_MIB * MIB);
	lo = ~0ULL;
	hi = 0;
	for (i = 0; i < n; i++) {
		lo = segs[i].addr < lo ? segs[i].addr : lo;
		if (segs[i].addr + segs[i].len > hi)
			hi = segs[i].addr + segs[i].len;
	}
	fs_data_unpin(fs, pin, segs, n);
	CHECK(hi - lo < 2 * FILE_MIB * MIB);

	for (i = 0; i < FILE_MIB; i++) {
		CHECK_EQ(file_read(fs, ino, buf, MIB, (off_t)i * MIB), MIB);
		same &= buf[0] == 'a' + i % 26 && buf[MIB - 1] == buf[0];
	}
	CHECK(same);
	printf("after copied reads: %u MiB cached, %u of them the file's\n",
	       resident_mib(img), resident_in(img, lo, hi));
	CHECK(resident_in(img, lo, hi) <= 2);

	drop_image_cache(img);
	for (i = 0; i < FILE_MIB; i++) {
		ssize_t got = file_read_pin(fs, ino, (off_t)i * MIB, MIB, segs,
					    16, &n, &pin);

		CHECK_EQ(got, MIB);
		CHECK(n == 1 && !segs[0].zero &&
		      pread(fs_data_fd(fs), buf, MIB, segs[0].addr) == MIB);
		same &= buf[0] == 'a' + i % 26 && buf[MIB - 1] == buf[0];
		fs_data_unpin(fs, pin, segs, n);
	}
	CHECK(same);
	printf("after pinned reads: %u MiB cached, %u of them the file's\n",
	       resident_mib(img), resident_in(img, lo, hi));
	CHECK(resident_in(img, lo, hi) <= 2);
	CHECK_EQ(fs_close(fs), 0);
	unit_fsck(img);
}

/*
 * Small writes stay cached: the host merges them into larger device
 * writes. This also shows the counting sees cached pages at all.
 */
static void test_small_writes_stay(void)
{
	const char *img = unit_mkfs("small.img", "-t ext4 -b 4096", 64 << 10);
	static char buf[64 << 10];
	struct fs *fs;
	ext2_ino_t ino;
	unsigned i;

	fs = unit_open(img, 0);
	ino = new_file(fs, "small");
	CHECK_EQ(fs_sync(fs), 0);
	drop_image_cache(img);
	memset(buf, 'x', sizeof(buf));
	for (i = 0; i < 16 * MIB / sizeof(buf); i++)
		CHECK_EQ(file_write(fs, ino, buf, sizeof(buf),
				    (off_t)i * sizeof(buf), 0, &root),
			 sizeof(buf));
	printf("after small writes: %u MiB cached\n", resident_mib(img));
	CHECK(resident_mib(img) >= 16);
	CHECK_EQ(fs_close(fs), 0);
	unit_fsck(img);
}

/*
 * Where the image's filesystem refuses RWF_DONTCACHE (tmpfs does, as do
 * kernels before 6.14), copied reads fall back to pread and a drop of the
 * range: the bytes must come out the same, small reads and streaming ones.
 */
static void test_fallback_reads_right(void)
{
	const char *made = unit_mkfs("shm.img", "-t ext4 -b 4096", 32 << 10);
	static const size_t sizes[] = {4096, 1000, 128 << 10, MIB, 300 << 10};
	static char buf[MIB], want[MIB];
	char img[64];
	struct fs *fs;
	ext2_ino_t ino;
	unsigned i, bad = 0;
	off_t off;

	snprintf(img, sizeof(img), "/dev/shm/unit-uncache.%d.img", getpid());
	if (unit_run("cp %s %s 2>/dev/null", made, img)) {
		unit_skip("fallback reads: no /dev/shm");
		return;
	}
	fs = unit_open(img, 0);
	ino = new_file(fs, "f");
	for (i = 0; i < 4 * MIB; i += sizeof(want)) {
		unsigned j;

		for (j = 0; j < sizeof(want); j++)
			want[j] = (char)((i + j) * 7 + (i + j) / 4096);
		CHECK_EQ(file_write(fs, ino, want, sizeof(want), i, 0, &root),
			 sizeof(want));
	}
	CHECK_EQ(fs_sync(fs), 0);
	for (i = 0, off = 0; off + MIB <= 4 * MIB; i++) {
		size_t len = sizes[i % 5], j;

		CHECK_EQ(file_read(fs, ino, buf, len, off), (ssize_t)len);
		for (j = 0; j < len; j++)
			bad += buf[j] !=
			       (char)((off + j) * 7 + (off + j) / 4096);
		off += len + 512;
	}
	printf("fallback reads on tmpfs: %u bytes wrong\n", bad);
	CHECK_EQ(bad, 0);
	CHECK_EQ(fs_close(fs), 0);
	unit_fsck(img);
	unlink(img);
}

int main(void)
{
	test_streaming();
	test_small_writes_stay();
	test_fallback_reads_right();
	return unit_done();
}
