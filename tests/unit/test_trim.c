/*
 * Unit tests of lib/core/trim.c: -o discard punches blocks freed one at
 * a time once a flush has written the metadata, not before, and blocks
 * freed as a range too (libext2fs 1.47.0 calls that callback with the
 * end of the range and no length); FITRIM trims every free block of a
 * fresh filesystem, then nothing, and is root's only.
 */
#include <fcntl.h>

#include "unit.h"

#define RUN 64 /* blocks */

/* Whether bytes [off, off + len) of fd are all a hole. */
static int is_hole(int fd, off_t off, off_t len)
{
	off_t data = lseek(fd, off, SEEK_DATA);

	return (data < 0 && errno == ENXIO) || data >= off + len;
}

/* Allocates RUN free blocks from blk on and fills them with data. */
static blk64_t fill_run(struct fs *fs, blk64_t from)
{
	ext2_filsys e2 = fs->e2;
	size_t len = (size_t)RUN * e2->blocksize;
	char *buf = malloc(len);
	blk64_t blk;

	fs_lock(fs);
	CHECK_EQ(ext2fs_find_first_zero_block_bitmap2(e2->block_map, from,
						      from + 4 * RUN, &blk),
		 0);
	CHECK(ext2fs_test_block_bitmap_range2(e2->block_map, blk, RUN));
	ext2fs_block_alloc_stats_range(e2, blk, RUN, +1);
	fs_unlock(fs);
	memset(buf, 0xa5, len);
	CHECK_EQ(pwrite(fs->data_fd, buf, len, (off_t)blk * e2->blocksize),
		 (ssize_t)len);
	free(buf);
	CHECK_EQ(fs_sync(fs), 0);
	return blk;
}

static void test_discard(const char *img)
{
	struct fs_options o = { .device = img, .discard = 1,
				.iomap = unit_iomap };
	const char *msg = NULL;
	struct fs *fs = NULL;
	blk64_t a, b, i;
	off_t bs, half;

	CHECK_EQ(fs_open(&o, &fs, &msg), 0);
	if (!fs)
		return;
	bs = fs->e2->blocksize;
	half = ext2fs_blocks_count(fs->e2->super) / 2;
	a = fill_run(fs, half);
	b = fill_run(fs, a + 2 * RUN);
	CHECK(!is_hole(fs->data_fd, a * bs, RUN * bs));
	CHECK(!is_hole(fs->data_fd, b * bs, RUN * bs));

	/* One block at a time: the metadata is not written yet. */
	fs_lock(fs);
	for (i = b; i < b + RUN; i++)
		ext2fs_block_alloc_stats2(fs->e2, i, -1);
	fs_unlock(fs);
	CHECK(!is_hole(fs->data_fd, b * bs, RUN * bs));
	/*
	 * A range: taken to start where the free run before it starts, the
	 * batch may be due now (a flush, then the punches).
	 */
	fs_lock(fs);
	ext2fs_block_alloc_stats_range(fs->e2, a, RUN, -1);
	fs_unlock(fs);
	CHECK_EQ(fs_sync(fs), 0);
	CHECK(is_hole(fs->data_fd, a * bs, RUN * bs));
	CHECK(is_hole(fs->data_fd, b * bs, RUN * bs));
	CHECK_EQ(fs_close(fs), 0);
	unit_fsck(img);
}

static void test_fitrim(const char *img)
{
	struct fs *fs = unit_open(img, 0);
	struct fs_cred user = { 1000, 1000, 022 };
	struct fs_cred root = unit_root();
	uint64_t len = ~0ULL, bfree;
	blk64_t a;

	CHECK_EQ(ioctl_fitrim(fs, 0, &len, 0, &user), -EPERM);
	a = fill_run(fs, ext2fs_blocks_count(fs->e2->super) / 2);
	bfree = ext2fs_free_blocks_count(fs->e2->super) * fs->e2->blocksize;
	CHECK_EQ(ioctl_fitrim(fs, 0, &len, 0, &root), 0);
	CHECK_EQ(len, bfree);
	len = ~0ULL;
	CHECK_EQ(ioctl_fitrim(fs, 0, &len, 0, &root), 0);
	CHECK_EQ(len, 0);
	len = 1024;
	CHECK_EQ(ioctl_fitrim(fs, 0, &len, 0, &root), -EINVAL);
	CHECK(!is_hole(fs->data_fd, a * fs->e2->blocksize,
		       RUN * fs->e2->blocksize));
	fs_lock(fs);
	ext2fs_block_alloc_stats_range(fs->e2, a, RUN, -1);
	fs_unlock(fs);
	CHECK_EQ(fs_close(fs), 0);
	unit_fsck(img);
}

int main(void)
{
	const char *img = unit_mkfs("trim.img", "-t ext4 -b 4096", 32 * 1024);

	test_discard(img);
	test_fitrim(img);
	return unit_done();
}
